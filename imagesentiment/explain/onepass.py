"""Prediction and Grad-CAM from one forward and one backward pass, as one compiled function.

This is what serving and batch scoring use (and what the SavedModel's
``explain`` signature holds). It computes the same map as tf-keras-vis's
``Gradcam`` on the model's logits: channel weights are the spatial mean of
the gradients, the weighted sum of feature maps goes through ReLU, is resized
to the input with corner-aligned bilinear interpolation (as ``scipy.ndimage.zoom``
with ``order=1``) and min-max normalised per image to [0, 1].
"""
from __future__ import annotations

from ..runtime import keras, tf
from ..models.build import LOGITS, ensemble_members, find_target_layer, rating_names
from ..models.views import model_views

EPSILON = 1e-7  # keras.backend.epsilon(), as tf-keras-vis's normalize uses


def normalize_maps(maps: tf.Tensor) -> tf.Tensor:
    """Min-max normalise each map of a batch ``(B, H, W)`` to [0, 1]; a constant map becomes zeros."""
    low = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    return (maps - low) / (high - low + EPSILON)


class GradCamPredictor:
    """``predictor(images)`` -> ``{"probabilities", "class_id", "heatmap"}`` (and a model's ratings, ``valence``
    and ``arousal``, from the same pass) for a float image batch.

    ``images`` are float32 ``(B, H, W, 3)`` in [0, 255] at the model's input size;
    ``target`` (int32 ``(B,)``, optional) names the output to explain per image: a class, or for a model
    that gives ratings ``C + k``, rating ``k`` (what raises its valence, say); -1 meaning the predicted class. The traced function is built once and reused.
    For an ensemble (:func:`imagesentiment.model.average_models`) the heat map is the mean of
    its members' maps for the class the ensemble predicts, renormalised. For a model with test-time
    views in its graph (:func:`imagesentiment.views.with_views`) the probabilities are the mean over its
    views, and the map is that of the whole image.
    """

    def __init__(self, model: keras.Model, layer: str | None = None) -> None:
        self.layer = layer or find_target_layer(model)
        self.graphs = []
        for member in ensemble_members(model):
            names = {l.name for l in member.layers}
            classes = member.outputs[0]  # a model that also gives ratings: its class probabilities come first
            score = member.get_layer(LOGITS).output if LOGITS in names else classes
            self.graphs.append(keras.Model(member.inputs, [member.get_layer(self.layer).output, score, classes,
                                                           *member.outputs[1:]]))  # and its ratings, if any
        self.ratings = rating_names(model)
        self.views = model_views(model)[1:]  # besides the whole image
        self.image_size = tuple(model.input_shape[1:3])
        spec = [tf.TensorSpec([None, *self.image_size, 3], tf.float32, name="images"),
                tf.TensorSpec([None], tf.int32, name="target")]
        self.function = tf.function(self.explain, input_signature=spec)

    def _other_views(self, images: tf.Tensor) -> tf.Tensor | float:
        """The sum over the views other than the whole image of the members' summed probabilities (0.0 for
        none); outside the gradient tape, which needs only the whole image's pass."""
        if not self.views:
            return 0.0
        stacked = tf.concat([view(images) for view in self.views], 0)
        probabilities = tf.add_n([graph(stacked, training=False)[2] for graph in self.graphs])
        return tf.reduce_sum(tf.reshape(probabilities, [len(self.views), tf.shape(images)[0], -1]), 0)

    @staticmethod
    def _side_by_side(logits: tf.Tensor, ratings: tf.Tensor) -> tf.Tensor:
        """``[logits, ratings]`` along the last axis, unstacked and stacked again: the gradients of a concatenation,
        a select or a product need ops that TFLite or its int8 runtime lack (``explain`` goes into the files)."""
        return tf.stack([*tf.unstack(logits, axis=1), *tf.unstack(ratings, axis=1)], axis=1)

    def explain(self, images: tf.Tensor, target: tf.Tensor) -> dict[str, tf.Tensor]:
        """What :attr:`function` compiles, for a caller that traces it into its own graph."""
        others = self._other_views(images)
        with tf.GradientTape() as tape:
            tape.watch(images)  # records every op to the score, whether or not the weights are variables it watches
            features, scores, probabilities, *rated = zip(*(graph(images, training=False) for graph in self.graphs))
            passes = len(probabilities) * (1 + len(self.views))
            probabilities = (tf.add_n(probabilities) + others) / passes  # as the predictions layer averages
            predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            chosen = tf.where(target >= 0, target, predicted)
            if self.ratings:  # output C + k is rating k (a rated model is no ensemble)
                scores = [self._side_by_side(scores[0], rated[0][0])]
            score = tf.add_n([tf.gather(s, chosen, batch_dims=1) for s in scores])  # a member's only its own
        cams = []
        for feature, grads in zip(features, tape.gradient(score, list(features))):
            weights = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
            cam = tf.nn.relu(tf.reduce_sum(feature * weights, axis=-1))
            cam = tf.raw_ops.ResizeBilinear(images=cam[..., None], size=self.image_size, align_corners=True)[..., 0]
            cams.append(normalize_maps(cam))
        heatmap = cams[0] if len(cams) == 1 else normalize_maps(tf.add_n(cams) / len(cams))
        ratings = {name: rated[0][0][:, k] for k, name in enumerate(self.ratings)}  # a rated model is no ensemble
        return {"probabilities": probabilities, "class_id": predicted, "heatmap": heatmap, **ratings}

    def __call__(self, images: tf.Tensor, target: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        images = tf.convert_to_tensor(images, tf.float32)
        if target is None:
            target = tf.fill(tf.shape(images)[:1], -1)
        return self.function(images, tf.cast(target, tf.int32))

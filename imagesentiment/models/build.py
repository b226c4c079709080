"""Models: a CNN and a depthwise-separable residual network trained from scratch, and a transfer model on a
Keras Applications backbone.

All are Keras 3 functional graphs that take float32 RGB images in [0, 255]
and scale them inside the graph, so an exported model takes the pipeline's
input as is. Each exposes the last convolutional feature map as a layer that
:func:`find_target_layer` finds, for Grad-CAM.
"""
from __future__ import annotations

import itertools
import os
from typing import Sequence

import numpy as np

from ..runtime import keras
from ..compat import layer_inputs
from ..contract import RATINGS, RATINGS_OUTPUT
from ..data import SENTIMENTS
from .backbones import BACKBONES, backbone_names, fusable, layer_choices

LAST_CONV = "last_conv"
LOGITS = "logits"
PREDICTIONS = "predictions"


def require_keras(model: object) -> keras.Model:
    """``model`` if it is a Keras model; else an error saying where one comes from (explanations and
    export work on the Keras graph, which :func:`imagesentiment.load` wraps in a predictor)."""
    if isinstance(model, keras.Model):
        return model
    inner = " (its .model is one)" if isinstance(getattr(model, "model", None), keras.Model) else ""
    raise TypeError(f"this needs a Keras model, not a {type(model).__name__}{inner}: "
                    "imagesentiment.inference.load_keras(RUN) gives one with its class names; a loaded SavedModel "
                    "or .tflite file makes heat maps with its .explainer()")


def class_names(model: keras.Model, classes: Sequence[str] | None = None) -> tuple[str, ...]:
    """The model's class names in output order: ``classes`` if given, else those the model carries
    (``model.class_names``, set by training and :func:`imagesentiment.inference.load_keras` from the run's
    ``classes.json``), else the sentiments for a three-output model, else ``"0"``, ``"1"``, ..."""
    count = int(require_keras(model).outputs[0].shape[-1])  # the class probabilities come first
    if classes is None:
        classes = getattr(model, "class_names", None)
    if classes is None:
        classes = SENTIMENTS if count == len(SENTIMENTS) else [str(i) for i in range(count)]
    if len(classes) != count:
        raise ValueError(f"{len(classes)} class names {list(classes)} for a model with {count} outputs")
    return tuple(str(c) for c in classes)


def _conv_block(x: keras.KerasTensor, width: int, convs: int, momentum: float, name: str,
                pool: bool = True, target: bool = True) -> keras.KerasTensor:
    """Conv-BN-ReLU ``convs`` times, then max pooling; unpooled, its last ReLU is ``last_conv`` if ``target``."""
    for i in range(convs):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv{i + 1}")(x)
        x = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn{i + 1}")(x)
        last = target and not pool and i == convs - 1
        x = keras.layers.ReLU(name=LAST_CONV if last else f"{name}_relu{i + 1}")(x)
    return keras.layers.MaxPooling2D(name=f"{name}_pool")(x) if pool else x


def _head(features: keras.KerasTensor, num_classes: int, dropout: float) -> keras.KerasTensor:
    """Dropout, then a linear ``logits`` layer and a ``predictions`` softmax (explanations use the logits)."""
    x = keras.layers.Dropout(dropout, name="dropout")(features)
    logits = keras.layers.Dense(num_classes, name=LOGITS)(x)
    return keras.layers.Softmax(name=PREDICTIONS)(logits)


def pooled_features(model: keras.Model) -> keras.KerasTensor:
    """The pooled feature vector the class head reads (the input of its ``dropout`` layer)."""
    try:
        return model.get_layer("dropout").input
    except ValueError:
        raise ValueError(f"{model.name}: no pooled features under a class head (a model this package built, not "
                         "an ensemble or a model with test-time views)") from None


def rating_names(model: keras.Model) -> tuple[str, ...]:
    """The ratings a model gives beside its classes (:data:`~imagesentiment.contract.RATINGS`), or none."""
    return RATINGS if any(layer.name == RATINGS_OUTPUT for layer in model.layers) else ()


def with_ratings(model: keras.Model, kernel: np.ndarray, bias: np.ndarray) -> keras.Model:
    """``model`` with a second output, ``ratings`` (valence and arousal): a linear layer on its pooled features
    with the given weights (one it had before is replaced). It keeps the class names it carries."""
    classes = model.outputs[0]
    dense = keras.layers.Dense(len(RATINGS), name=RATINGS_OUTPUT)
    rated = keras.Model(model.input, [classes, dense(pooled_features(model))], name=model.name)
    dense.set_weights([np.asarray(kernel, np.float32), np.asarray(bias, np.float32)])
    if hasattr(model, "class_names"):
        rated.class_names = model.class_names
    return rated


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """``model`` (changed in place) with its ``logits`` layer's weights divided by ``temperature``: its softmax is
    that of the logits divided by it (:func:`~imagesentiment.evaluation.metrics.fit_temperature`), in every form
    the model is exported to, with no layer added."""
    try:
        layer = model.get_layer(LOGITS)
    except ValueError:
        raise ValueError(f"{model.name}: no {LOGITS!r} layer to scale (a model this package built, not an "
                         "ensemble)") from None
    layer.set_weights([weight / np.float32(temperature) for weight in layer.get_weights()])
    return model


def score_model(model: keras.Model) -> keras.Model:
    """The same graph ending at what explanations differentiate: the pre-softmax ``logits`` layer, followed by
    the model's ratings where it gives them (output ``C + k`` is rating ``k`` of a model with ``C`` classes)."""
    logits = model.get_layer(LOGITS).output
    if rating_names(model):
        logits = keras.layers.Concatenate(name="scores")([logits, model.get_layer(RATINGS_OUTPUT).output])
    return keras.Model(model.inputs, logits, name=f"{model.name}_scores")


def build_cnn(num_classes: int = 3, input_shape: Sequence[int] = (96, 96, 3),
              widths: Sequence[int] = (32, 64, 128, 256), convs_per_block: int = 2,
              dropout: float = 0.5, bn_momentum: float = 0.9, name: str = "sentiment_cnn") -> keras.Model:
    """Conv-BN-ReLU blocks with max pooling, the last block unpooled (its ReLU is ``last_conv``),
    then global average pooling, dropout and a softmax classifier.

    ``bn_momentum`` defaults to 0.9: with few steps per epoch the Keras default
    0.99 lags and validation collapses to one class.
    """
    if not widths:
        raise ValueError("widths must name at least one block")
    inputs = keras.Input(tuple(input_shape), name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="preprocess")(inputs)
    for i, width in enumerate(widths):
        x = _conv_block(x, width, convs_per_block, bn_momentum, f"block{i + 1}", pool=i < len(widths) - 1)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, _head(x, num_classes, dropout), name=name)


def _separable_block(x: keras.KerasTensor, width: int, convs: int, momentum: float, name: str,
                     pool: bool) -> keras.KerasTensor:
    """Separable 3 x 3 convolutions with batch norm (ReLU between them), max pooling if ``pool``, and a
    shortcut added before the closing ReLU: when the shape changes, 2 x 2 average pooling if ``pool``, then a
    1 x 1 convolution. (Not a strided 1 x 1 convolution: its gradient crashes TensorFlow 2.21's oneDNN
    kernels on CPU, a native abort.)"""
    shortcut = x
    if pool:
        shortcut = keras.layers.AveragePooling2D(2, padding="same", name=f"{name}_skip_pool")(shortcut)
    if pool or int(x.shape[-1]) != width:
        shortcut = keras.layers.Conv2D(width, 1, use_bias=False, name=f"{name}_skip")(shortcut)
        shortcut = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_skip_bn")(shortcut)
    for i in range(convs):
        if i:
            x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
        x = keras.layers.SeparableConv2D(width, 3, padding="same", use_bias=False, name=f"{name}_sep{i + 1}")(x)
        x = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn{i + 1}")(x)
    if pool:
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return keras.layers.Add(name=f"{name}_add")([x, shortcut])


def build_sepnet(num_classes: int = 3, input_shape: Sequence[int] = (48, 48, 3),
                 widths: Sequence[int] = (16, 32, 64, 128, 256), convs_per_block: int = 2,
                 dropout: float = 0.3, bn_momentum: float = 0.9, name: str = "sentiment_sepnet") -> keras.Model:
    """A small residual network of depthwise-separable convolutions (after mini-Xception): a stem of two
    3 x 3 convolutions of ``widths[0]`` filters, then a residual block for each later width, each halving
    the resolution but the last (its closing ReLU is ``last_conv``); global average pooling, dropout and
    a softmax classifier as :func:`build_cnn`'s."""
    if len(widths) < 2:
        raise ValueError("widths must name the stem's filters and at least one block's")
    inputs = keras.Input(tuple(input_shape), name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="preprocess")(inputs)
    x = _conv_block(x, widths[0], 2, bn_momentum, "stem", pool=False, target=False)
    blocks = widths[1:]
    for i, width in enumerate(blocks):
        last = i == len(blocks) - 1
        x = _separable_block(x, width, convs_per_block, bn_momentum, f"block{i + 1}", pool=not last)
        x = keras.layers.ReLU(name=LAST_CONV if last else f"block{i + 1}_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, _head(x, num_classes, dropout), name=name)


@keras.saving.register_keras_serializable(package="imagesentiment")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy of class ids against predicted probabilities, the one-hot targets mixed with
    ``smoothing`` of a uniform one (label smoothing; Keras's sparse cross-entropy has none).
    Registered, so that a saved model compiled with it loads."""

    def __init__(self, smoothing: float = 0.0, name: str = "smoothed_crossentropy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)

    def call(self, y_true: keras.KerasTensor, y_pred: keras.KerasTensor) -> keras.KerasTensor:
        ids = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        targets = keras.ops.one_hot(ids, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(targets, y_pred, label_smoothing=self.smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "smoothing": self.smoothing}


Weights = str | os.PathLike | None


def _branch(inputs: keras.KerasTensor, backbone: str, weights: Weights, prefix: str = "",
            end: str | None = None) -> keras.KerasTensor:
    """``backbone`` (frozen) on ``inputs`` after its scaling; its last feature map, or layer ``end``'s."""
    spec = BACKBONES[backbone]
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise FileNotFoundError(f"backbone weights file {weights} not found; expected the weights of {backbone}")
    x = inputs
    if spec.scale is not None:
        x = keras.layers.Rescaling(spec.scale, offset=spec.offset, name=f"{prefix}preprocess")(x)
    options = {"prefix": prefix} if prefix else {}
    try:
        base = spec.build(input_tensor=x, include_top=False, weights=None if weights is None else str(weights),
                          **options)
    except Exception as exc:  # Keras raises a bare Exception when the download fails
        if weights != "imagenet" or "URL fetch failure" not in str(exc):
            raise
        raise ConnectionError(f"the ImageNet weights of {backbone} could not be downloaded ({exc}); without "
                              "internet, give a local weights file of the backbone without its top "
                              "(model.weights: PATH.weights.h5)") from None
    for layer in base.layers:
        layer.trainable = False
    if end is None:
        return base.output
    if end not in (names := [layer.name for layer in base.layers]):
        raise ValueError(f"model.backbone_end: {backbone} has no layer {end!r}; {layer_choices(names)}")
    return base.get_layer(end).output


@keras.saving.register_keras_serializable(package="imagesentiment")
class SideBySide(keras.layers.Layer):
    """Flat feature vectors concatenated on the last axis. Its gradient (Grad-CAM differentiates through
    it) splits at the vectors' static widths: a plain concatenation's gradient needs TensorFlow ops
    (ShapeN, ConcatOffset) that TFLite lacks, so the exported ``explain`` signature would not convert."""

    def call(self, vectors: list) -> keras.KerasTensor:
        widths = [int(v.shape[-1]) for v in vectors]

        @keras.ops.custom_gradient
        def join(*parts):
            def grad(*args, upstream=None):
                upstream = args[0] if upstream is None else upstream
                return tuple(keras.ops.split(upstream, list(itertools.accumulate(widths[:-1])), axis=-1))
            return keras.ops.concatenate(parts, axis=-1), grad

        return join(*vectors)

    def compute_output_shape(self, shapes: list) -> tuple:
        return (*shapes[0][:-1], sum(shape[-1] for shape in shapes))


def build_transfer(num_classes: int = 3, backbone: str | Sequence[str] = "mobilenet_v2", input_size: int = 160,
                   weights: Weights | Sequence[Weights] = None, dropout: float = 0.2,
                   name: str | None = None, end: str | None = None) -> keras.Model:
    """A backbone built into one functional graph with a new softmax head; the backbone starts frozen.

    ``weights`` is a local weights file of the backbone without its top (``.weights.h5``; ``.npz``
    for EfficientNet-Lite), ``"imagenet"`` (downloads; Keras Applications only) or ``None`` (random).
    A list of backbones (EfficientNet-Lite variants) fuses them: one input at ``input_size`` for the
    one of largest native size, each other resized inside the graph in proportion to its native size,
    their pooled features side by side (``avg_pool``) under one head; ``weights`` then lists a file each.
    ``end`` (one backbone only) names the backbone layer whose output is pooled: the layers above it are left
    out, a smaller model (default: the backbone's last layer).
    """
    names = backbone_names(backbone)
    unknown = [b for b in names if b not in BACKBONES]
    if unknown or not names:
        raise ValueError(f"unknown backbone {unknown[0] if unknown else backbone!r}; choose one of {sorted(BACKBONES)}")
    files = list(weights) if isinstance(weights, (list, tuple)) else [weights] * len(names)
    if len(files) != len(names):
        raise ValueError(f"{len(files)} weights files for the {len(names)} backbones {names}: give one each")
    inputs = keras.Input((input_size, input_size, 3), name="image")
    if end is not None and len(names) > 1:
        raise ValueError(f"model.backbone_end ends one backbone, not the fused {names}")
    if len(names) == 1:
        features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(_branch(inputs, names[0], files[0], end=end))
        return keras.Model(inputs, _head(features, num_classes, dropout), name=name or f"sentiment_{names[0]}")
    if not fusable(names):
        raise ValueError(f"a fused model takes distinct backbones among "
                         f"{sorted(b for b, s in BACKBONES.items() if s.fusable)}, got {names}")
    largest = max(BACKBONES[b].native_size for b in names)
    pooled = []
    for b, file in zip(names, files):
        size = round(input_size * BACKBONES[b].native_size / largest)
        x = inputs if size == input_size else keras.layers.Resizing(size, size, name=f"{b}_resize")(inputs)
        pooled.append(keras.layers.GlobalAveragePooling2D(name=f"{b}_avg_pool")(_branch(x, b, file, f"{b}_")))
    features = SideBySide(name="avg_pool")(pooled)
    return keras.Model(inputs, _head(features, num_classes, dropout), name=name or "sentiment_" + "_".join(names))


def unfreeze_top(model: keras.Model, layers: int) -> int:
    """Make the top ``layers`` backbone layers trainable, BatchNorm excepted (it stays in inference mode).

    Returns how many layers became trainable.
    """
    head = {"avg_pool", "dropout", LOGITS, PREDICTIONS}
    body = [l for l in model.layers if l.name not in head and l.weights]
    changed = 0
    for layer in body[-layers:] if layers > 0 else []:
        if not isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = True
            changed += 1
    return changed


def frozen_cut(model: keras.Model, layers: int) -> str | None:
    """The name of the last layer below every layer that ``unfreeze_top(model, layers)`` would train
    whose output alone feeds everything above it (no skip connection crosses it), or None.

    Everything up to that layer stays frozen in every phase, so its output for a given input
    never changes: a cheaper fine-tune computes it once and trains the layers above on it.
    """
    head = {"avg_pool", "dropout", LOGITS, PREDICTIONS}
    body = [l for l in model.layers if l.name not in head and l.weights]
    first = body[-layers] if 0 < layers <= len(body) else model.get_layer("avg_pool")
    order = {l.name: i for i, l in enumerate(model.layers)}
    inputs = layer_inputs(model)
    top = order[first.name] - (1 if first.weights else 0)  # pooling has nothing to train: it can be the cut
    for i in range(top, 0, -1):
        crossing = {d for l in model.layers[i + 1:] for d in inputs[l.name] if order[d] <= i}
        if crossing == {model.layers[i].name}:
            return model.layers[i].name
    return None


def average_models(models: Sequence[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model whose ``predictions`` are the mean of the members' probabilities; the members are
    nested in it (renamed member0, member1, ...). It has no top-level ``logits`` or 4-D layer:
    explanations average its members' maps (:func:`ensemble_members`)."""
    inputs = keras.Input(tuple(models[0].input_shape[1:]), name="image")
    for i, member in enumerate(models):
        member.name = f"member{i}"
    outputs = keras.layers.Average(name=PREDICTIONS)([member(inputs) for member in models])
    return keras.Model(inputs, outputs, name=name)


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The members of an :func:`average_models` ensemble; ``[model]`` for a single model."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested if nested and isinstance(model.layers[-1], keras.layers.Average) else [model]


def find_target_layer(model: keras.Model) -> str:
    """The name of the layer whose feature map explanations use (in each member, for an ensemble).

    The from-scratch CNN names it ``last_conv``; a transfer model uses its
    backbone's last 4-D layer. A model without a 4-D layer cannot be explained.
    """
    model = ensemble_members(model)[0]
    names = [layer.name for layer in model.layers]
    if LAST_CONV in names:
        return LAST_CONV
    known = {l.name: (l.output.shape[1] * l.output.shape[2], spec.native_size if l.name != spec.target_layer else 0)
             for l in model.layers for b, spec in BACKBONES.items()
             if l.name in (spec.target_layer, f"{b}_{spec.target_layer}")}
    if known:  # a fused model's finest map; at a tie, the branch of the largest native size (the input's own)
        return max(known, key=known.get)
    spatial = [l.name for l in model.layers if not isinstance(l, keras.layers.InputLayer)
               and len(l.output.shape) == 4]
    if not spatial:
        raise ValueError(f"model {model.name!r} has no convolution layer (no 4-D output) to explain; "
                         f"its layers are {names}")
    return spatial[-1]

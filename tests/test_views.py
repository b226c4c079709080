"""Test-time views: each view samples as ``tf.image.crop_and_resize`` does, and a model with its views in
its graph answers their mean in every form it is exported to, with the whole image's heat map."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from imagesentiment.explain import explain
from imagesentiment.explain.onepass import GradCamPredictor
from imagesentiment.cli import main
from imagesentiment.export import convert
from imagesentiment.inference import load
from imagesentiment.inference.predictors import TFLitePredictor
from imagesentiment.models import views
from imagesentiment.models.views import crop_boxes, with_views


def test_a_view_samples_the_crop_as_crop_and_resize_and_mirrors_it():
    images = np.random.default_rng(0).uniform(0, 255, (2, 37, 29, 3)).astype(np.float32)
    centre, top_left = crop_boxes()[:2]
    for box in (centre, top_left):
        expected = tf.image.crop_and_resize(images, [box] * 2, [0, 1], (37, 29)).numpy()
        np.testing.assert_allclose(views.TestTimeView(box)(images), expected, atol=1e-3)
        np.testing.assert_allclose(views.TestTimeView(box, flip=True)(images), expected[:, :, ::-1], atol=1e-3)
    right = views.TestTimeView(crop_boxes()[2])(images).numpy()  # its last column is the photo's last column, not
    np.testing.assert_allclose(right[:, 0, -1], images[:, 0, -1], atol=1e-3)  # crop_and_resize's extrapolated 0
    counts = [len(views.test_time_views(images, flip, crop)) for flip in (False, True) for crop in (False, True)]
    assert counts == [1, 6, 2, 12]
    names = [view.name for view in views.view_layers(flip_tta=True, crop_tta=True)]
    assert names[:2] == ["view_whole", "view_centre"] and names[6:8] == ["view_whole_mirrored", "view_centre_mirrored"]
    assert names[2] == "view_top_left" and names[-1] == "view_bottom_right_mirrored"
    corners = {view.name: tuple(np.round(view.box[:2], 6)) for view in views.view_layers(crop_tta=True)[2:]}
    assert corners == {"view_top_left": (0, 0), "view_top_right": (0, 0.15), "view_bottom_left": (0.15, 0),
                       "view_bottom_right": (0.15, 0.15)}


@pytest.fixture(scope="module")
def viewed(trained_cnn):
    """The trained CNN with its 12 views in one graph, a batch of its images, and the mean over the views."""
    model, images = trained_cnn
    pixels = np.stack([np.asarray(tf.io.decode_png(tf.io.read_file(p), 3), np.float32)
                       for p in images.frame["path"][::10]])
    mean = np.mean([model(view, training=False) for view in views.test_time_views(pixels, True, True)], axis=0)
    return model, with_views(model, flip_tta=True, crop_tta=True), pixels, mean


def test_a_model_with_views_predicts_their_mean_and_explains_the_whole_image(viewed):
    model, twelve, pixels, mean = viewed
    assert with_views(model) is model
    with pytest.raises(ValueError, match="already averages test-time views"):
        with_views(twelve, flip_tta=True)
    np.testing.assert_allclose(twelve(pixels, training=False), mean, atol=1e-6)
    classes = mean.argmax(-1)
    answer = GradCamPredictor(twelve)(pixels)
    np.testing.assert_allclose(answer["probabilities"], mean, atol=1e-6)
    np.testing.assert_allclose(answer["heatmap"], GradCamPredictor(model)(pixels, classes)["heatmap"], atol=1e-6)
    np.testing.assert_allclose(explain(twelve, pixels, "gradcam++"), explain(model, pixels, "gradcam++", classes),
                               atol=1e-5)


def test_an_exported_model_with_views_answers_their_mean_in_one_call(viewed, tmp_path):
    model, twelve, pixels, mean = viewed
    model.save(tmp_path / "cnn.keras")
    assert main(["export", str(tmp_path / "cnn.keras"), "--flip-tta", "--crop-tta", "--out", str(tmp_path)]) == 0
    served = load(tmp_path / "imagesentiment" / "1")
    np.testing.assert_allclose(served.probabilities(list(pixels)), mean, atol=1e-5)
    explained = served.explainer()(pixels)
    np.testing.assert_allclose(explained["heatmap"], GradCamPredictor(model)(pixels, mean.argmax(-1))["heatmap"],
                               atol=1e-5)
    lite = TFLitePredictor(convert(twelve, "float32"), verify=False)  # the views are TFLite built-in operations
    np.testing.assert_allclose(lite.probabilities(list(pixels)), mean, atol=1e-4)
    np.testing.assert_allclose(lite.explainer()(pixels)["probabilities"], mean, atol=1e-4)

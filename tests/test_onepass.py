import numpy as np
import tensorflow as tf
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.utils.scores import CategoricalScore

from imagesentiment.data import make_dataset
from imagesentiment.explain import GradCamPredictor
from imagesentiment.models.build import score_model


def test_one_pass_matches_tf_keras_vis_gradcam(trained_cnn):
    model, images = trained_cnn
    x, _ = next(iter(make_dataset(images.subset(range(0, 90, 6)), (48, 48), 32)))
    out = GradCamPredictor(model)(x)
    np.testing.assert_array_equal(out["class_id"].numpy(), np.argmax(model.predict(x, verbose=0), -1))
    reference = Gradcam(score_model(model), clone=False)(
        CategoricalScore(out["class_id"].numpy().tolist()), x.numpy(),
        penultimate_layer="last_conv", seek_penultimate_conv_layer=False)
    heatmap = out["heatmap"].numpy()
    assert heatmap.shape == reference.shape == (15, 48, 48)
    for ours, theirs in zip(heatmap, reference):
        assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] >= 0.99
    assert heatmap.min() >= 0 and heatmap.max() <= 1


def test_blank_image_gives_zeros_not_nan(trained_cnn):
    model, _ = trained_cnn
    out = GradCamPredictor(model)(tf.fill([2, 48, 48, 3], 128.0), target=tf.constant([0, 2]))
    heatmap = out["heatmap"].numpy()
    assert not np.isnan(heatmap).any()


def _ensemble(trained_cnn):
    """The trained CNN and an untrained one averaged (clones: average_models renames its members)."""
    import keras

    from imagesentiment.models.build import average_models, build_cnn

    model, _ = trained_cnn
    trained = keras.models.clone_model(model)
    trained.set_weights(model.get_weights())
    keras.utils.set_random_seed(1)
    other = build_cnn(3, (48, 48, 3), widths=(16, 32), dropout=0.2)
    return average_models([trained, other]), trained, other


def test_an_ensemble_is_explained_by_its_members_maps_for_its_own_class(trained_cnn):
    """Every method and the one-pass Grad-CAM: the members' maps for the class the ensemble predicts,
    each normalised, averaged and normalised again (an ensemble once could not be explained at all)."""
    from imagesentiment.explain import METHODS, clean_maps, explain

    ensemble, *members = _ensemble(trained_cnn)
    x, _ = next(iter(make_dataset(trained_cnn[1].subset(range(0, 90, 9)), (48, 48), 32)))
    x = x.numpy()
    predicted = ensemble.predict(x, verbose=0).argmax(-1)
    assert (predicted != members[1].predict(x, verbose=0).argmax(-1)).any(), "the members disagree somewhere"
    for method in set(METHODS) - {"scorecam", "smoothgrad"}:  # the slow one; the one with random noise
        expected = clean_maps(np.mean([explain(m, x, method, target=predicted.tolist()) for m in members], axis=0), x)
        np.testing.assert_allclose(explain(ensemble, x, method), expected, atol=1e-5, err_msg=method)
    out = GradCamPredictor(ensemble)(x)
    np.testing.assert_allclose(out["probabilities"].numpy(), ensemble.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_array_equal(out["class_id"].numpy(), predicted)
    expected = clean_maps(np.mean([GradCamPredictor(m)(x, predicted)["heatmap"].numpy() for m in members], axis=0), x)
    np.testing.assert_allclose(out["heatmap"].numpy(), expected, atol=1e-5)
    one = GradCamPredictor(members[0])(x)["heatmap"].numpy()
    for ours, reference in zip(one, explain(members[0], x, "gradcam")):  # one member alone: as before
        assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] >= 0.99

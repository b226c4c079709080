"""EfficientNet-Lite in Keras: the reference outputs, weights files refused by name, any input size,
and a fused Lite0 + Lite2 model through training, Grad-CAM, SavedModel and TFLite."""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from imagesentiment.models import efficientnet_lite
from imagesentiment.models.backbones import LITE_SIZES
from imagesentiment.training.config import ConfigError, load_config
from imagesentiment.models.build import build_transfer, find_target_layer, frozen_cut

from conftest import SHARED

WEIGHTS = SHARED / "weights"
needs_lite_weights = pytest.mark.skipif(
    not (WEIGHTS / "efficientnet_lite_reference.npz").is_file(),
    reason=f"EfficientNet-Lite weights not found in {WEIGHTS} (a user's clone has none)")
LITES = ["efficientnet_lite0", "efficientnet_lite2"]


def to_npz(model: keras.Model, variant: str, path: Path, prefix: str = "") -> Path:
    """Write ``model``'s backbone weights as the shared files hold them: PyTorch names and layout."""
    arrays = {}
    for source, name, kind in efficientnet_lite._tensor_names(variant):
        values = model.get_layer(prefix + name).get_weights()
        if kind == "bn":
            arrays.update(zip((f"{source}.{p}" for p in ("weight", "bias", "running_mean", "running_var")), values))
        else:
            arrays[f"{source}.weight"] = values[0].transpose((3, 2, 0, 1) if kind == "conv" else (2, 3, 0, 1))
    np.savez(path, **arrays)
    return path


def randomized(model: keras.Model) -> keras.Model:
    """``model`` with random BatchNorm statistics too (fresh ones are 0 and 1, which hides layout errors)."""
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    return model


@needs_lite_weights
@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_the_keras_port_reproduces_the_reference_outputs(variant):
    reference = np.load(WEIGHTS / "efficientnet_lite_reference.npz")
    model = efficientnet_lite.build(variant, input_shape=(None, None, 3),
                                    weights=WEIGHTS / f"efficientnet_{variant}_imagenet.npz")
    features = model(reference[f"{variant}_input"], training=False).numpy()
    np.testing.assert_allclose(features, reference[f"{variant}_feature_map"], atol=1e-4)
    np.testing.assert_allclose(features.mean(axis=(1, 2)), reference[f"{variant}_pooled"], atol=1e-4)
    arch = json.loads((WEIGHTS / "efficientnet_lite_arch.json").read_text())[variant]
    assert [{k: b[k] for k in ("kernel", "stride", "expand", "in", "out", "residual")}
            for b in efficientnet_lite.blocks(variant)] == arch["blocks"]
    assert model.output_shape[-1] == arch["head_filters"] and LITE_SIZES[variant] == arch["input_size"]


def test_any_input_size_and_keras_layer_names():
    model = efficientnet_lite.build("lite0", input_shape=(None, None, 3))
    assert model(np.zeros((1, 96, 130, 3), "float32")).shape == (1, 3, 5, 1280)
    assert model(np.zeros((1, 300, 300, 3), "float32")).shape == (1, 10, 10, 1280)
    names = [layer.name for layer in model.layers]
    assert names[-1] == "top_activation" and "block6d_add" in names and "block2a_expand_conv" in names


def test_weights_round_trip_and_files_of_another_variant_or_shape_are_refused_by_name(tmp_path):
    lite0 = randomized(efficientnet_lite.build("lite0", input_shape=(64, 64, 3)))
    path = to_npz(lite0, "lite0", tmp_path / "lite0.npz")
    again = efficientnet_lite.build("lite0", input_shape=(64, 64, 3), weights=path)
    x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(again(x).numpy(), lite0(x).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"lite0.npz: tensor _blocks.3._depthwise_conv.weight has shape "
                                         r"\(144, 1, 5, 5\), but layer block2c_dwconv of EfficientNet-Lite2 "
                                         r"needs \(144, 1, 3, 3\): not efficientnet_lite2 weights"):
        efficientnet_lite.build("lite2", input_shape=(64, 64, 3), weights=path)
    arrays = dict(np.load(path))
    arrays["_conv_head.weight"] = arrays["_conv_head.weight"][:640]
    np.savez(tmp_path / "narrow.npz", **arrays)
    with pytest.raises(ValueError, match=r"tensor _conv_head.weight has shape \(640, 320, 1, 1\).*\(1280, 320, 1, 1\)"):
        efficientnet_lite.build("lite0", input_shape=(64, 64, 3), weights=tmp_path / "narrow.npz")
    del arrays["_conv_head.weight"]
    np.savez(tmp_path / "missing.npz", **arrays, **{"_fc.weight": np.zeros((3, 1280), "float32")})
    with pytest.raises(ValueError, match="missing.npz: no tensor _conv_head.weight, which EfficientNet-Lite0 needs "
                                         "for layer top_conv"):
        efficientnet_lite.build("lite0", input_shape=(64, 64, 3), weights=tmp_path / "missing.npz")
    np.savez(tmp_path / "extra.npz", **dict(np.load(path)), **{"_fc.weight": np.zeros((3, 1280), "float32")})
    with pytest.raises(ValueError, match=r"extra.npz: tensor _fc.weight is not part of EfficientNet-Lite0"):
        efficientnet_lite.build("lite0", input_shape=(64, 64, 3), weights=tmp_path / "extra.npz")
    (tmp_path / "model.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n not an npz")
    with pytest.raises(ValueError, match=r"model.weights.h5: not a readable .npz weights file; expected "
                                         r"EfficientNet-Lite2 weights \(efficientnet_lite2_imagenet.npz\)"):
        efficientnet_lite.build("lite2", weights=tmp_path / "model.weights.h5")
    with pytest.raises(FileNotFoundError, match="weights file .*nope.npz not found; expected the weights of "
                                                "efficientnet_lite2"):
        build_transfer(3, "efficientnet_lite2", 64, tmp_path / "nope.npz")
    with pytest.raises(ValueError, match="give the efficientnet_lite0_imagenet.npz file"):
        build_transfer(3, "efficientnet_lite0", 64, "imagenet")


def config_text(folder: Path, images: Path, model: str, train: str = "epochs: 2, cached_views: 2") -> Path:
    path = folder / "fused.yaml"
    path.write_text(f"data: {{source: {{path: {images}}}}}\nsplit: {{validation: 0.2, test: 0.2}}\n"
                    f"model: {{kind: transfer, {model}, dropout: 0.2}}\n"
                    f"train: {{{train}, batch_size: 16, learning_rate: 0.003}}\n")
    return path


def test_a_fused_model_is_checked_by_key(tmp_path, synthetic_root):
    cases = {
        "backbone: [efficientnet_lite0, mobilenet_v2], input_size: 64": "model.backbone: expected one of",
        "backbone: [efficientnet_lite0, efficientnet_lite0], input_size: 64": "a list of distinct ones to fuse",
        f"backbone: [{', '.join(LITES)}], weights: [a.npz], input_size: 64": r"model.weights: expected one weights "
                                                                             r"file per backbone \(2\)",
        f"backbone: [{', '.join(LITES)}], weights: [a.npz, b.npz], input_size: 64": "model.weights: no such file",
    }
    for model, refusal in cases.items():
        with pytest.raises(ConfigError, match=refusal):
            load_config(config_text(tmp_path, synthetic_root, model))
    weights = [str(tmp_path / f"{n}.npz") for n in ("a", "b")]
    for w in weights:
        Path(w).touch()
    config = load_config(config_text(tmp_path, synthetic_root, f"backbone: [{', '.join(LITES)}], weights: [a.npz, "
                                                               "b.npz], input_size: 64"))
    assert config.model.backbone == LITES and config.model.weights == weights  # relative to the file


def test_a_fused_model_trains_explains_and_exports_in_one_graph(tmp_path, synthetic_root):
    from ai_edge_litert.interpreter import Interpreter

    from imagesentiment.cli import main
    from imagesentiment.explain import GradCamPredictor
    from imagesentiment.export import convert
    from imagesentiment.training.fit import train

    weights = [to_npz(randomized(efficientnet_lite.build(v, input_shape=(32, 32, 3))), v, tmp_path / f"{v}.npz")
               for v in ("lite0", "lite2")]
    model = build_transfer(3, LITES, 78, weights)
    assert model.get_layer("efficientnet_lite0_resize").output.shape[1:3] == (67, 67)  # 78 * 224 / 260
    assert find_target_layer(model) == "efficientnet_lite2_top_activation"  # the finer map
    assert frozen_cut(model, 0) == "avg_pool" and model.get_layer("avg_pool").output.shape[-1] == 2560
    np.testing.assert_allclose(  # each branch as the backbone alone computes it, on its own input size
        model.get_layer("efficientnet_lite2_top_activation").output.shape[1:3], (3, 3))

    config = config_text(tmp_path, synthetic_root, f"backbone: [{', '.join(LITES)}], weights: "
                                                   f"[{weights[0]}, {weights[1]}], input_size: 78")
    run = tmp_path / "run"
    metrics = train(load_config(config), run)
    assert 0 <= metrics["accuracy"] <= 1
    trained = keras.models.load_model(run / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(trained.get_layer("efficientnet_lite0_top_conv").get_weights()[0],
                                  model.get_layer("efficientnet_lite0_top_conv").get_weights()[0])  # frozen
    x = np.random.default_rng(0).uniform(0, 255, (3, 78, 78, 3)).astype("float32")
    p = trained(x, training=False).numpy()
    assert main(["export", str(run), "--out", str(tmp_path / "serving")]) == 0
    served = tf.saved_model.load(str(tmp_path / "serving" / "imagesentiment" / "1"))
    out = served.signatures["explain_images"](images=tf.constant(x))
    np.testing.assert_allclose(out["probabilities"].numpy(), p, atol=1e-5)
    np.testing.assert_allclose(out["heatmap"].numpy(), GradCamPredictor(trained)(x)["heatmap"].numpy(), atol=1e-5)
    interpreter = Interpreter(model_content=convert(trained, "float16"))  # the explain signature's gradient converts
    runner = interpreter.get_signature_runner("explain")
    answer = runner(images=x)
    np.testing.assert_allclose(answer["probabilities"], p, atol=2e-2)
    assert answer["heatmap"].shape == out["heatmap"].shape


def test_a_lite_backbone_fine_tunes_its_top_blocks_on_cached_views_and_every_method_explains_it(
        tmp_path, synthetic_root):
    from imagesentiment.explain import METHODS, explain
    from imagesentiment.training.fit import train

    weights = to_npz(randomized(efficientnet_lite.build("lite0", input_shape=(32, 32, 3))), "lite0",
                     tmp_path / "lite0.npz")
    config = config_text(tmp_path, synthetic_root, f"backbone: efficientnet_lite0, weights: {weights}, input_size: 64",
                         "epochs: 1, cached_views: 2, fine_tune: {epochs: 1, layers: 20, learning_rate: 0.001}")
    train(load_config(config), tmp_path / "run")
    trained = keras.models.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    fresh = build_transfer(3, "efficientnet_lite0", 64, weights)
    changed = {layer.name for layer in fresh.layers if layer.weights and not all(
        np.array_equal(a, b) for a, b in zip(layer.get_weights(), trained.get_layer(layer.name).get_weights()))}
    assert {"block7a_project_conv", "top_conv", "block6d_expand_conv"} <= changed  # the top blocks trained
    assert not any(name.startswith(("stem", "block1", "block5")) for name in changed)  # the rest as loaded
    assert not any(name.endswith("bn") for name in changed)  # BatchNorm stays in inference mode
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    for method in METHODS:
        maps = explain(trained, x, method)
        assert maps.shape == (2, 64, 64) and np.isfinite(maps).all(), method


def test_a_backbone_ended_at_a_block_is_smaller_and_keeps_its_weights(tmp_path, synthetic_root):
    from imagesentiment.training.fit import build_model

    lite0 = randomized(efficientnet_lite.build("lite0", input_shape=(32, 32, 3)))
    weights = to_npz(lite0, "lite0", tmp_path / "l0.npz")
    full = build_transfer(3, "efficientnet_lite0", 64, weights)
    ended = build_transfer(3, "efficientnet_lite0", 64, weights, end="block5c_add")
    assert ended.get_layer("avg_pool").input.shape[-1] == 112 and "top_conv" not in [l.name for l in ended.layers]
    assert ended.count_params() < full.count_params() / 3
    np.testing.assert_array_equal(ended.get_layer("block5c_project_conv").get_weights()[0],
                                  full.get_layer("block5c_project_conv").get_weights()[0])  # as loaded
    assert find_target_layer(ended) == "block5c_add"
    with pytest.raises(ValueError, match="no layer 'block9z_add'; its last residual blocks end at .*block6d_add"):
        build_transfer(3, "efficientnet_lite0", 64, weights, end="block9z_add")

    config = config_text(tmp_path, synthetic_root, f"backbone: efficientnet_lite0, weights: {weights}, input_size: 64, "
                         "backbone_end: block5c_add")
    assert build_model(load_config(config)).count_params() == ended.count_params()  # the key reaches the model
    for text, message in {"backbone_end: block9z_add": "its last residual blocks end at",
                          f"weights: [{weights}, {weights}], backbone_end: block5c_add": "model.backbone_end"}.items():
        backbone = f"[{', '.join(LITES)}]" if "[" in text else "efficientnet_lite0"
        with pytest.raises(ConfigError, match=message):
            load_config(config_text(tmp_path, synthetic_root, f"backbone: {backbone}, {text}, input_size: 64"))

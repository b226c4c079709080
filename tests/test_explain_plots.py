"""Pictures of explanations and the ``imagesentiment explain`` command."""
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imagesentiment.cli import main
from imagesentiment.explain.plots import PANEL_BAR, PANEL_TOP
from imagesentiment.explain import (explain, explanation_figure, explanation_panel, feature_maps_figure, filters_figure,
                                    grid_figure, load_images, overlay, resize_map, save_explanation, save_figure)


@pytest.fixture(scope="module")
def model_file(trained_cnn, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "cnn.keras"
    trained_cnn[0].save(path)
    return path


@pytest.fixture(scope="module")
def large_images(synthetic_root, tmp_path_factory):
    """Two synthetic images enlarged to 100x80 (width x height), larger than the model's 48x48 input."""
    folder = tmp_path_factory.mktemp("large")
    paths = []
    for label in ("positive", "negative"):
        path = folder / f"{label}.png"
        Image.open(synthetic_root / label / "0000.png").resize((100, 80), Image.NEAREST).save(path)
        paths.append(path)
    return paths


def hot_spot(size=48):
    heatmap = np.zeros((size, size), np.float32)
    heatmap[: size // 2, : size // 2] = 1.0  # the top-left quarter is relevant
    return heatmap


def test_overlay_is_drawn_at_the_original_resolution():
    image = np.full((80, 100, 3), 100, np.uint8)
    blended = overlay(image, hot_spot(), cmap="jet", alpha=0.5)
    assert blended.shape == (80, 100, 3) and blended.dtype == np.uint8
    red, blue = (np.array(matplotlib.colormaps["jet"](v)[:3]) * 255 for v in (1.0, 0.0))
    np.testing.assert_allclose(blended[10, 10], 0.5 * 100 + 0.5 * red, atol=1)  # hot corner: jet's red
    np.testing.assert_allclose(blended[70, 90], 0.5 * 100 + 0.5 * blue, atol=1)  # cold corner: jet's blue
    np.testing.assert_array_equal(overlay(image, hot_spot(), alpha=0.0), image)
    assert resize_map(hot_spot(), (80, 100)).shape == (80, 100)


def test_panel_shows_image_heat_map_and_overlay_under_a_caption(tmp_path):
    image = np.full((80, 100, 3), 100, np.uint8)
    panel = explanation_panel(image, hot_spot(), "positive", 0.87, cmap="jet", alpha=0.5, height=160)
    assert panel.shape == (PANEL_TOP + 160 + PANEL_BAR, 3 * 200 + 2 * 8, 3) and panel.dtype == np.uint8
    red, blue = (np.array(matplotlib.colormaps["jet"](v)[:3]) * 255 for v in (1.0, 0.0))
    body = panel[PANEL_TOP:PANEL_TOP + 160]
    np.testing.assert_allclose(body[20, 20], [100, 100, 100], atol=1)  # the image, scaled to 160 px high
    np.testing.assert_allclose(body[20, 208 + 20], red, atol=2)  # the heat map: the hot quarter
    np.testing.assert_allclose(body[140, 208 + 180], blue, atol=2)
    np.testing.assert_allclose(body[20, 416 + 20], 0.5 * 100 + 0.5 * red, atol=2)  # the overlay
    caption = panel[:PANEL_TOP]
    assert (caption < 128).any() and (caption == 255).mean() > 0.8  # dark caption text on white
    scale = panel[PANEL_TOP + 160 + 6, 208:408]  # under the heat map: its colour bar, blue to red
    np.testing.assert_allclose(scale[1], blue, atol=12) and np.testing.assert_allclose(scale[-2], red, atol=12)
    layercam = explanation_panel(image, hot_spot(), "positive", 0.87, cmap="jet", alpha=0.5, height=160,
                                 title="layercam")  # the method is named: only the caption differs
    assert (layercam[:30] != panel[:30]).any() and (layercam[30:] == panel[30:]).all()
    panel_path, overlay_path = save_explanation(tmp_path / "a" / "photo", image, hot_spot(), "positive", 0.87)
    with Image.open(panel_path) as written, Image.open(overlay_path) as jpeg:
        assert (written.format, written.size, jpeg.format, jpeg.size) == (
            "JPEG", (3 * 280 + 2 * 8, PANEL_TOP + 224 + PANEL_BAR), "JPEG", (100, 80))


def test_overlay_refuses_bad_opacity_and_colour_map():
    image = np.zeros((48, 48, 3), np.uint8)
    with pytest.raises(ValueError, match="between 0 and 1"):
        overlay(image, hot_spot(), alpha=1.5)
    # a short answer: the closest names and a few examples, not matplotlib's ~180 colour maps
    with pytest.raises(ValueError, match=r"unknown colour map 'jett'; closest: 'jet', 'jet_r'; \d+ in all, e.g. 'jet'"):
        overlay(image, hot_spot(), cmap="jett")


def test_figures_show_image_map_overlay_label_and_grid(tmp_path, trained_cnn, large_images):
    model, _ = trained_cnn
    batch, originals = load_images(large_images, (48, 48))
    assert batch.shape == (2, 48, 48, 3) and [o.shape for o in originals] == [(80, 100, 3)] * 2
    maps = explain(model, batch)
    figure = explanation_figure(originals[0], maps[0], "positive", 0.87)
    assert [a.get_title() for a in figure.axes] == ["image", "heat map", "overlay"]
    assert figure.texts[0].get_text() == "positive (0.87)"  # as predict prints it
    assert figure.axes[2].images[0].get_array().shape == (80, 100, 3)  # the overlay at full resolution
    grid = grid_figure(originals, maps, ["positive", "negative"], [0.9, 0.6], columns=4, title="gradcam")
    assert [a.get_title() for a in grid.axes[:2]] == ["positive (0.90)", "negative (0.60)"]
    assert grid.get_suptitle() == "gradcam" and grid.axes[-1].get_xlabel() == "heat map: low → high"  # colour bar
    for name, fig in (("figure.png", figure), ("grid.png", grid)):
        with Image.open(save_figure(fig, tmp_path / "pictures" / name)) as png:
            assert png.format == "PNG"
    with Image.open(tmp_path / "pictures" / "grid.png") as png:
        assert png.width >= 800, png.size  # was 221 px wide for one photo


def test_first_layer_filters_and_chosen_feature_maps(trained_cnn):
    model, _ = trained_cnn
    filters = filters_figure(model)
    assert len([a for a in filters.axes if a.images]) == 16  # block1_conv1 has 16 filters
    assert filters.axes[0].images[0].get_array().shape == (3, 3, 3)  # RGB kernels
    image = np.full((48, 48, 3), 128.0, np.float32)
    image[5:20, 5:20] = [230, 50, 40]
    maps = feature_maps_figure(model, image, ["block1_relu1", "last_conv"], channels=4)
    assert len([a for a in maps.axes if a.images]) == 8
    assert maps.axes[0].images[0].get_array().shape == (48, 48) and maps.axes[4].images[0].get_array().shape == (24, 24)
    with pytest.raises(ValueError, match="'avg_pool'.* in all, e.g. .*'last_conv'$"):
        feature_maps_figure(model, image, ["avg_pool"])


def test_cli_writes_figures_overlays_and_grid(tmp_path, model_file, large_images, capsys):
    out = tmp_path / "out"
    code = main(["explain", *map(str, large_images), "--model", str(model_file), "--out", str(out),
                 "--method", "gradcam", "--method", "layercam", "--filters", "--feature-maps", "last_conv",
                 "--batch-size", "1"])
    assert code == 0, capsys.readouterr().err
    for method in ("gradcam", "layercam"):
        assert (out / f"grid_{method}_000.png").is_file() and (out / f"grid_{method}_001.png").is_file()
        for stem in ("positive", "negative"):
            assert len(list(out.glob(f"{stem}-????????_{method}.jpg"))) == 1  # the stem and a hash of the path
            with Image.open(next(out.glob(f"{stem}-????????_{method}_overlay.jpg"))) as overlay_file:
                assert overlay_file.size == (100, 80)
    assert (out / "filters.png").is_file() and len(list(out.glob("positive-????????_features.png"))) == 1
    predictions = pd.read_csv(out / "predictions.csv")  # as predict writes it, the first method's overlays
    assert list(predictions["label"]) == ["positive", "negative"]
    for column, method in (("heatmap", "gradcam"), ("heatmap_layercam", "layercam")):
        assert [re.sub("-[0-9a-f]{8}_", "_", Path(p).name) for p in predictions[column]] == [
            f"positive_{method}_overlay.jpg", f"negative_{method}_overlay.jpg"]
    assert list(predictions["heatmap_gradcam"]) == list(predictions["heatmap"])
    # predict --explain names the same photo's pictures alike (it named them cat-fdeb0e59_overlay.jpg)
    assert main(["predict", str(large_images[0]), "--model", str(model_file), "--explain", str(tmp_path / "maps"),
                 "--out", str(tmp_path / "scores.csv")]) == 0
    overlay_name = Path(predictions["heatmap"][0]).name
    assert {p.name for p in (tmp_path / "maps").iterdir()} == {overlay_name, overlay_name.replace("_overlay", "")}
    np.testing.assert_allclose(predictions[["negative", "neutral", "positive"]].max(axis=1), predictions["confidence"])
    assert "2 images explained with gradcam, layercam" in capsys.readouterr().out
    assert main(["report", str(out / "predictions.csv"), "--out", str(tmp_path / "report.html")]) == 0
    assert (tmp_path / "report.html").read_text().count('alt="heat map"') == 2
    # the same folder again (the default runs/explain) for one of them: its table still lists both images
    assert main(["explain", str(large_images[1]), "--model", str(model_file), "--out", str(out)]) == 0
    again = pd.read_csv(out / "predictions.csv")
    assert sorted(again["path"]) == sorted(predictions["path"]) and again["path"].is_unique


def test_cli_evaluate_prints_a_faithfulness_table(tmp_path, model_file, synthetic_root, capsys):
    code = main(["explain", str(synthetic_root), "--evaluate", "--model", str(model_file), "--limit", "9",
                 "--steps", "5", "--method", "gradcam", "--method", "saliency", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "faithfulness on 9 images" in out
    table = pd.read_csv(tmp_path / "faithfulness.csv", index_col="method")
    assert list(table.index) == ["gradcam", "saliency", "random"]
    assert {"deletion_auc", "insertion_auc"} <= set(table.columns) and "random" in out


@pytest.mark.parametrize("args, message", [
    (["--method", "gradkam"], "unknown explanation method 'gradkam'; choose one of ['gradcam', 'gradcam++'"),
    (["--target", "happy"], "unknown class 'happy'; the model's classes are ['negative', 'neutral', 'positive']"),
    (["--limit", "5"], "--limit applies only with --evaluate"),  # would be ignored: refused instead
    (["--evaluate", "--cmap", "gray", "--filters"], "--cmap, --filters apply only without --evaluate"),
], ids=["method", "class", "evaluate only", "files only"])
def test_cli_errors_name_what_is_valid(tmp_path, model_file, large_images, capsys, args, message):
    code = main(["explain", str(large_images[0]), "--model", str(model_file), "--out", str(tmp_path), *args])
    assert code == 2 and message in capsys.readouterr().err

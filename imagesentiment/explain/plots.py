"""Pictures of explanations: matplotlib figures (Agg canvas, no display needed) to look at, and
:func:`explanation_panel`, the same three pictures drawn straight into pixels, to write one per
image fast (:func:`save_explanation`).

Overlays are drawn at the original image's resolution: the heat map, computed
at the model's input size, is resized up to the image.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..runtime import keras
from ..atomic import replacing
from ..models.build import ensemble_members
from .base import choices, feature_layers, layer_choices

if TYPE_CHECKING:
    from PIL import ImageFont


PANEL_TOP, PANEL_BAR = 52, 30  # a panel's caption and picture names above, its colour bar below


def _uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return image if image.dtype == np.uint8 else np.clip(image.astype(np.float32), 0, 255).round().astype(np.uint8)


def resize_map(heatmap: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """A ``(h, w)`` map resized bilinearly to ``size`` (pixel centres aligned, as ``tf.image.resize`` does; a
    map made smaller is averaged down) and kept in [0, 1]."""
    from PIL import Image

    resized = Image.fromarray(np.asarray(heatmap, np.float32), "F").resize((size[1], size[0]), Image.BILINEAR)
    return np.clip(np.asarray(resized), 0.0, 1.0)


def colour_map(name: str) -> matplotlib.colors.Colormap:
    """A matplotlib colour map by name."""
    if name not in matplotlib.colormaps:
        raise ValueError(f"unknown colour map {name!r}; "
                         + choices(name, sorted(matplotlib.colormaps), ["jet", "turbo", "viridis", "magma", "inferno"]))
    return matplotlib.colormaps[name]


def coloured(heatmap: np.ndarray, size: Sequence[int], cmap: str = "jet") -> np.ndarray:
    """The heat map resized to ``size`` in the colours of ``cmap``: uint8 RGB. The colour map's own table is
    looked up as matplotlib does (value x N, the top end in the last entry), once for the table rather
    than for each of a photo's pixels."""
    colours = colour_map(cmap)
    table = _uint8(colours(np.arange(colours.N))[:, :3] * 255.0)
    return np.take(table, np.minimum((resize_map(heatmap, size) * colours.N).astype(np.int32), colours.N - 1), 0)


def overlay(image: np.ndarray, heatmap: np.ndarray, cmap: str = "jet", alpha: float = 0.4,
            colours: np.ndarray | None = None) -> np.ndarray:
    """The heat map in colour blended over ``image`` (``(H, W, 3)``, any resolution) with opacity
    ``alpha``; a uint8 image at the image's resolution (``colours``: :func:`coloured`, if made already).
    Blended in 8 bits by Pillow, within 1 of the exact blend and several times faster on a photo.
    """
    from PIL import Image

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha (the heat map's opacity) must be between 0 and 1, not {alpha}")
    image = _uint8(image)
    colours = coloured(heatmap, image.shape[:2], cmap) if colours is None else colours
    return np.array(Image.blend(Image.fromarray(image), Image.fromarray(colours), alpha))  # writable


def explanation_pictures(image: np.ndarray, heatmap: np.ndarray, cmap: str = "jet",
                         alpha: float = 0.4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image, its heat map in colour and their overlay, uint8 at the image's resolution:
    the three pictures every explanation shows."""
    image = _uint8(image)
    colours = coloured(heatmap, image.shape[:2], cmap)
    return image, colours, overlay(image, heatmap, cmap, alpha, colours)


def _caption(label: str, confidence: float) -> str:
    """An answer as ``predict`` prints it: ``positive (0.97)``."""
    return f"{label} ({confidence:.2f})"


def _font(size: int) -> "ImageFont.FreeTypeFont":
    """Pillow's own font at ``size`` pixels (no font file needed)."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _panel(pictures: Sequence[np.ndarray], label: str, confidence: float, height: int = 224, cmap: str = "jet",
           title: str = "gradcam") -> np.ndarray:
    """:func:`explanation_pictures` side by side, ``height`` pixels high, each named above it, under a caption
    with the method and the answer, and a colour bar of the heat map's scale under the heat map."""
    from PIL import Image, ImageDraw

    width = max(1, round(pictures[0].shape[1] * height / pictures[0].shape[0]))
    gap, top, bar = 8, PANEL_TOP, PANEL_BAR
    canvas = Image.new("RGB", (len(pictures) * (width + gap) - gap, top + height + bar), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), f"{title}: {_caption(label, confidence)}", fill="black", font=_font(18))
    for i, (picture, name) in enumerate(zip(pictures, ("image", "heat map", "overlay"))):
        canvas.paste(Image.fromarray(picture).resize((width, height), Image.BILINEAR), (i * (width + gap), top))
        draw.text((i * (width + gap) + 2, top - 18), name, fill="#444444", font=_font(14))
    scale = coloured(np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (8, 1)), (8, width), cmap)
    canvas.paste(Image.fromarray(scale), (width + gap, top + height + 4))
    for text, x, anchor in (("low", width + gap, "la"), ("high", 2 * width + gap, "ra")):
        draw.text((x, top + height + 14), text, fill="#444444", font=_font(12), anchor=anchor)
    return np.asarray(canvas)


def explanation_panel(image: np.ndarray, heatmap: np.ndarray, label: str, confidence: float,
                      cmap: str = "jet", alpha: float = 0.4, height: int = 224, title: str = "gradcam") -> np.ndarray:
    """Image, heat map and overlay side by side, ``height`` pixels high, under a caption with the method
    (``title``), the label and its confidence, and the heat map's colour bar below: one uint8 RGB picture
    (:func:`explanation_figure` without matplotlib)."""
    return _panel(explanation_pictures(image, heatmap, cmap, alpha), label, confidence, height, cmap, title)


def save_explanation(stem: str | os.PathLike, image: np.ndarray, heatmap: np.ndarray, label: str,
                     confidence: float, cmap: str = "jet", alpha: float = 0.4, height: int = 224,
                     title: str = "gradcam") -> tuple[Path, Path]:
    """Write ``STEM.jpg`` (:func:`explanation_panel`, ``height`` pixels high, captioned with ``title``) and ``STEM_overlay.jpg`` (the
    overlay at the image's resolution), both JPEG at quality 90; returns both paths. The panel is drawn
    from the image scaled to its height: drawing at full size, or writing it as PNG (8 times the JPEG's
    time), took longer than scoring the image."""
    from PIL import Image

    panel, blended = Path(f"{stem}.jpg"), Path(f"{stem}_overlay.jpg")
    panel.parent.mkdir(parents=True, exist_ok=True)
    _save_jpeg(overlay(image, heatmap, cmap, alpha), blended)
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    small = np.asarray(Image.fromarray(_uint8(image)).resize((width, height), Image.BILINEAR))
    _save_jpeg(explanation_panel(small, heatmap, label, confidence, cmap, alpha, height, title), panel)
    return panel, blended


def _save_jpeg(picture: np.ndarray, path: Path) -> None:
    """``picture`` as a JPEG (quality 90) at ``path``, whole or not at all (a full disk leaves no half-written
    file); an error writing it names ``path``."""
    from PIL import Image

    with replacing(path) as partial:
        try:
            Image.fromarray(picture).save(partial, "JPEG", quality=90)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def explanation_figure(image: np.ndarray, heatmap: np.ndarray, label: str, confidence: float,
                       cmap: str = "jet", alpha: float = 0.4) -> Figure:
    """Image, heat map and overlay side by side, titled with the predicted label and its confidence."""
    figure = Figure(figsize=(9, 3.4))
    titles = ("image", "heat map", "overlay")
    for axis, title, picture in zip(figure.subplots(1, 3), titles, explanation_pictures(image, heatmap, cmap, alpha)):
        axis.imshow(picture)
        axis.set_title(title)
        axis.axis("off")
    figure.suptitle(_caption(label, confidence))
    return figure


def grid_figure(images: Sequence[np.ndarray], heatmaps: Sequence[np.ndarray], labels: Sequence[str],
                confidences: Sequence[float], columns: int = 4, cmap: str = "jet", alpha: float = 0.4,
                title: str | None = None) -> Figure:
    """Overlays of a batch in a grid, each titled with its predicted label and confidence, under ``title`` (the
    method) and over the heat map's colour bar; at least 8 inches (800 pixels at :func:`save_figure`'s
    resolution) wide."""
    from matplotlib.cm import ScalarMappable

    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    side, ratio = max(3.2, 8.6 / columns), max(image.shape[0] / image.shape[1] for image in images)
    figure = Figure(figsize=(side * columns, (side * ratio + 0.4) * rows + 1.2), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis in axes:
        axis.axis("off")
    for axis, image, heatmap, label, confidence in zip(axes, images, heatmaps, labels, confidences):
        axis.imshow(overlay(image, heatmap, cmap, alpha))
        axis.set_title(_caption(label, confidence), fontsize=13)
    if title:
        figure.suptitle(title, fontsize=15)
    figure.colorbar(ScalarMappable(cmap=colour_map(cmap)), ax=axes.tolist(), orientation="horizontal",
                    fraction=0.05, aspect=40, label="heat map: low → high")
    return figure


def filters_figure(model: keras.Model) -> Figure:
    """The kernels of the model's first 2-D convolution, one tile each (RGB where it reads the
    colour image, else the mean over its input channels), each scaled to its own range. An
    ensemble's are its first member's.
    """
    model = ensemble_members(model)[0]
    convolutions = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    if not convolutions:
        raise ValueError(f"model {model.name!r} has no Conv2D layer; its layers are {[l.name for l in model.layers]}")
    layer = convolutions[0]
    kernel = np.asarray(layer.kernel)  # (h, w, in, out)
    if kernel.shape[2] != 3:
        kernel = kernel.mean(axis=2, keepdims=True)
    low = kernel.min(axis=(0, 1, 2), keepdims=True)
    tiles = (kernel - low) / (kernel.max(axis=(0, 1, 2), keepdims=True) - low + 1e-7)
    count = tiles.shape[-1]
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(columns * 0.8, rows * 0.8 + 0.4))
    for index, axis in enumerate(figure.subplots(rows, columns, squeeze=False).ravel()):
        axis.axis("off")
        if index < count:
            tile = tiles[..., index]
            axis.imshow(tile if tile.shape[-1] == 3 else tile[..., 0], cmap="gray", interpolation="nearest")
    figure.suptitle(f"{layer.name}: {count} filters {kernel.shape[0]}x{kernel.shape[1]}")
    return figure


def feature_maps_figure(model: keras.Model, image: np.ndarray, layers: Sequence[str], channels: int = 8) -> Figure:
    """For one image at the model's input size, the ``channels`` most active feature maps of each chosen
    layer (an ensemble's first member's)."""
    model = ensemble_members(model)[0]
    valid = feature_layers(model)
    unknown = [name for name in layers if name not in valid]
    if unknown or not layers:
        raise ValueError(f"layers {unknown or list(layers)} have no feature map to show; "
                         + layer_choices((unknown or [""])[0], model))
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in layers])
    outputs = probe([np.asarray(image, np.float32)[None]], training=False)
    outputs = [np.asarray(o)[0] for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
    columns = min(channels, max(o.shape[-1] for o in outputs))
    figure = Figure(figsize=(1.6 * columns, 1.8 * len(layers)))
    axes = figure.subplots(len(layers), columns, squeeze=False)
    for row, (name, maps) in zip(axes, zip(layers, outputs)):
        strongest = np.argsort(-maps.mean(axis=(0, 1)))[:columns]
        for axis in row:
            axis.axis("off")
        for axis, channel in zip(row, strongest):
            axis.imshow(maps[..., channel], cmap="viridis")
            axis.set_title(f"{name}[{channel}]", fontsize=7)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write a figure as PNG (creating the folder) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    return path

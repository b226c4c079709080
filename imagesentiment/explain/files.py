"""Explain a list of image files into a folder: per image and method a panel and an overlay
(:func:`~imagesentiment.explain.plots.save_explanation`), a grid per batch, and a table of the
predictions. What ``imagesentiment explain`` runs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..runtime import keras
from ..data.pipeline import chunks
from ..models.build import rating_names
from ..table.columns import answers, path_key, picture_name
from .base import load_images
from .methods import get_explainer
from .plots import feature_maps_figure, filters_figure, grid_figure, save_explanation, save_figure


def explain_files(model: keras.Model, paths: Sequence[str], out: str | os.PathLike, classes: Sequence[str],
                  methods: Sequence[str] = ("gradcam",), target: int | str | None = None, batch_size: int = 16,
                  cmap: str = "jet", alpha: float = 0.4, filters: bool = False,
                  feature_maps: Sequence[str] = (), progress: bool = True) -> pd.DataFrame:
    """Write ``NAME_METHOD.jpg`` (the panel) and ``NAME_METHOD_overlay.jpg`` per image and method, named as
    ``predict --explain`` names them (:func:`~imagesentiment.table.columns.picture_name`: ``cat-a1d6a89f_gradcam``),
    ``grid_METHOD_NNN.png`` per batch (``filters.png``, ``NAME_features.png`` on request) and
    ``predictions.csv`` (kept with an earlier run's rows for other images); returns this run's predictions
    as ``imagesentiment predict`` writes them (path, label, confidence, one probability per class, the ratings
    where the model gives them, and ``heatmap``: the first method's overlay, with ``heatmap_METHOD`` for each
    of several methods), so that ``imagesentiment report`` shows them.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    explainers = {m: get_explainer(model, m, classes=classes) for m in methods}
    names = [path_key(p) for p in paths]  # each file's pictures named from its row's path: picture_name
    if filters:
        save_figure(filters_figure(model), out / "filters.png")
    rows = []
    with tqdm(total=len(paths) * len(methods), unit="map", disable=not progress) as bar:
        for number, (batch_paths, chunk) in enumerate(zip(chunks(paths, batch_size), chunks(names, batch_size))):
            batch, originals = load_images(batch_paths, model.input_shape[1:3])
            probabilities, *rated = keras.tree.flatten(model(batch, training=False))  # the classes, then ratings
            probabilities = np.asarray(probabilities)
            labels, confidences = [classes[i] for i in probabilities.argmax(-1)], probabilities.max(-1)
            overlays = {}  # per method, each image's overlay
            for method, explainer in explainers.items():
                maps = explainer(batch, target)
                overlays[method] = [path_key(save_explanation(out / picture_name(name, method), image, heatmap,
                                                              label, confidence, cmap, alpha, title=method)[1])
                                    for name, image, heatmap, label, confidence
                                    in zip(chunk, originals, maps, labels, confidences)]
                save_figure(grid_figure(originals, maps, labels, confidences, cmap=cmap, alpha=alpha, title=method),
                            out / f"grid_{method}_{number:03d}.png")
                bar.update(len(chunk))
            for name, image in zip(chunk, batch) if feature_maps else ():
                figure = feature_maps_figure(model, image, feature_maps)
                save_figure(figure, out / f"{picture_name(name, 'features')}.png")
            ratings = {name: np.asarray(rated[0])[:, k] for k, name in enumerate(rating_names(model))}
            rows.append(pd.DataFrame({"path": list(chunk)})  # the rows' paths: the keys the pictures are named by
                        .join(answers(probabilities, classes, ratings=ratings)).assign(**_heatmap_columns(overlays)))
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    _merge_into(out / "predictions.csv", table)
    return table


def _heatmap_columns(overlays: dict[str, list[str]]) -> dict[str, list[str]]:
    """The table's heat-map columns: ``heatmap``, the first method's overlays (what ``report`` shows), and with
    several methods ``heatmap_METHOD`` for each."""
    first = next(iter(overlays.values()))
    return {"heatmap": first, **({f"heatmap_{m}": o for m, o in overlays.items()} if len(overlays) > 1 else {})}


def _merge_into(path: Path, table: pd.DataFrame) -> None:
    """Write ``table`` to ``path`` beside the rows of an earlier run there for other images: a folder
    explained into twice (the default runs/explain) lists every image it holds pictures of."""
    try:
        earlier = pd.read_csv(path) if path.is_file() else None
    except (ValueError, UnicodeDecodeError):  # not a table of ours: replaced
        earlier = None
    same_model = earlier is not None and [c for c in earlier.columns if not c.startswith("heatmap")] == \
        [c for c in table.columns if not c.startswith("heatmap")]  # other methods' columns may come and go
    if same_model:
        kept = earlier[~earlier["path"].isin(table["path"])]
        table = pd.concat([kept, table], ignore_index=True)[[*table.columns, *(c for c in kept if c not in table)]]
    table.to_csv(path, index=False)

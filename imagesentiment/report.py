"""A self-contained HTML report of a predictions table, for analysts to open or send.

The page shows counts per sentiment and a confidence histogram over every image, a gallery of
thumbnails (and heat maps, when the table has a ``heatmap`` column) that filters and sorts in the
browser, and, where a ``true_label`` column is present, the metrics and confusion matrix with the
misclassified images first. A table of thousands keeps a gallery of ``gallery`` images (each one
is some 7 KB in the page): mistakes first, then each predicted class in turn.
"""
from __future__ import annotations

import base64
import html
import io
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from .metrics import classification_metrics

COLOURS = {"negative": "#c0392b", "neutral": "#7f8c8d", "positive": "#27ae60"}

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin-bottom:4px} .muted{color:#666} table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:right} th{background:#eee}
.bar{display:inline-block;height:14px;vertical-align:middle}
.controls{position:sticky;top:0;background:#fafafa;padding:8px 0;border-bottom:1px solid #ddd}
.controls label{margin-right:16px}
.gallery{display:flex;flex-wrap:wrap;gap:10px;margin-top:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px;width:332px}
.card.wrong{border:2px solid #c0392b} .card img{width:160px;height:160px;object-fit:contain;background:#eee}
.label{font-weight:bold} .path{font-size:11px;color:#666;word-break:break-all}
"""

SCRIPT = """
const cards = Array.from(document.querySelectorAll('.card'));
const gallery = document.getElementById('gallery');
function update() {
  const label = document.getElementById('label').value;
  const minConf = parseFloat(document.getElementById('confidence').value);
  const wrongOnly = document.getElementById('wrong') && document.getElementById('wrong').checked;
  const order = document.getElementById('sort').value;
  document.getElementById('confidence-value').textContent = minConf.toFixed(2);
  const key = c => order === 'name' ? c.dataset.name : parseFloat(c.dataset.confidence);
  cards.sort((a, b) => {
    if (order === 'default') return a.dataset.order - b.dataset.order;
    const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (order === 'confidence-desc' ? -1 : 1);
  });
  let shown = 0;
  for (const c of cards) {
    const visible = (label === 'all' || c.dataset.label === label) &&
      parseFloat(c.dataset.confidence) >= minConf && (!wrongOnly || c.dataset.correct === 'false');
    c.style.display = visible ? '' : 'none';
    shown += visible;
    gallery.appendChild(c);
  }
  document.getElementById('shown').textContent = shown;
}
document.querySelectorAll('.controls select, .controls input').forEach(e => e.addEventListener('input', update));
update();
"""


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """A predictions table from CSV, JSON Lines or Parquet (by the file's suffix)."""
    path = Path(path)
    readers = {".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True, dtype=False), ".parquet": pd.read_parquet}
    if path.suffix not in readers:
        raise ValueError(f"{path}: unknown predictions format; use .csv, .jsonl or .parquet")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such predictions file")
    try:
        frame = readers[path.suffix](path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:  # pyarrow's errors are ValueErrors
        raise ValueError(f"{path}: not a readable {path.suffix} table ({exc})") from None
    missing = {"path", "label", "confidence"} - set(frame.columns)
    if missing == {"path"} and {"frame", "time_s"} <= set(frame.columns):
        raise ValueError(f"{path}: is a video's per-frame table (imagesentiment video), which has no photos to "
                         "show; its report is the timeline.png and summary.json beside it")
    if missing:
        raise ValueError(f"{path}: a predictions table needs the columns {sorted(missing)}")
    return frame


def thumbnail(path: str | os.PathLike, size: int = 160) -> str | None:
    """A ``data:`` URI of a JPEG thumbnail, or None if the image cannot be read."""
    try:
        with Image.open(path) as image:
            image.thumbnail((size, size))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=80)
    except (OSError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _classes(frame: pd.DataFrame) -> list[str]:
    """The model's classes in output order: the probability columns that follow ``confidence`` (as
    ``predict`` and ``video`` write them), every class even one never predicted; else the labels seen."""
    columns = list(frame.columns)
    block = []
    for column in columns[columns.index("confidence") + 1:]:
        if column in ("heatmap", "error", "true_label") or not pd.api.types.is_numeric_dtype(frame[column]):
            break
        block.append(column)
    seen = set(frame["label"].dropna()) | (set(frame["true_label"].dropna()) if "true_label" in frame else set())
    return block or sorted(seen)


def _histogram(confidence: pd.Series, bins: int = 10) -> str:
    counts, edges = np.histogram(confidence.dropna(), bins=bins, range=(0, 1))
    top = max(counts.max(), 1)
    bars = "".join(
        f'<rect x="{i * 30}" y="{100 - 100 * c / top:.1f}" width="26" height="{100 * c / top:.1f}" fill="#3b7dd8">'
        f"<title>{edges[i]:.1f}–{edges[i + 1]:.1f}: {c}</title></rect>"
        f'<text x="{i * 30 + 13}" y="115" font-size="9" text-anchor="middle">{edges[i]:.1f}</text>'
        for i, c in enumerate(counts))
    return f'<svg id="histogram" width="{bins * 30}" height="120">{bars}</svg>'


def _summary(frame: pd.DataFrame, classes: Sequence[str]) -> str:
    counts = frame["label"].value_counts()
    rows = "".join(
        f'<tr><th>{html.escape(c)}</th><td class="count" data-label="{html.escape(c)}">{int(counts.get(c, 0))}</td>'
        f'<td style="text-align:left"><span class="bar" style="width:{300 * counts.get(c, 0) / max(len(frame), 1):.0f}px;'
        f'background:{COLOURS.get(c, "#3b7dd8")}"></span></td></tr>' for c in classes)
    return (f"<h2>Predictions</h2><table id='counts'><tr><th>sentiment</th><th>images</th><th></th></tr>{rows}"
            f"</table><h3>Confidence</h3>{_histogram(frame['confidence'])}")


def _metrics(frame: pd.DataFrame, classes: Sequence[str], scored: int) -> str:
    """The figures against the true labels of ``frame`` (the labelled rows of ``scored`` scored images)."""
    index = {c: i for i, c in enumerate(classes)}
    m = classification_metrics(frame["true_label"].map(index), frame["label"].map(index), classes)
    rows = "".join(f"<tr><th>{html.escape(n)}</th><td>{v['precision']:.3f}</td><td>{v['recall']:.3f}</td>"
                   f"<td>{v['f1']:.3f}</td><td>{v['support']}</td></tr>" for n, v in m["per_class"].items())
    header = "".join(f"<th>{html.escape(n)}</th>" for n in m["classes"])
    matrix = "".join(f"<tr><th>{html.escape(n)}</th>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
                     for n, row in zip(m["classes"], m["confusion_matrix"]))
    spread = {name: f" ({low:.3f}–{high:.3f})" for name, (low, high) in m["intervals_95"].items()}
    which = f"<p id='labelled'>on the {len(frame)} of {scored} scored images with a true label</p>" \
        if len(frame) < scored else ""
    return (f"<h2>Against the true labels</h2>{which}<p id='accuracy'>accuracy {m['accuracy']:.3f}{spread['accuracy']} · "
            f"macro-F1 {m['macro']['f1']:.3f}{spread['macro_f1']} · "
            f"{int((frame['true_label'] != frame['label']).sum())} misclassified</p>"
            "<p class='muted'>in brackets: 95 % interval, how far the figure could move on another draw of as "
            "many images (Wilson for accuracy, bootstrap for macro-F1)</p>"
            f"<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{rows}</table>"
            f"<h3>Confusion matrix (rows: true, columns: predicted)</h3>"
            f"<table id='confusion'><tr><th></th>{header}</tr>{matrix}</table>")


def _card(order: int, row: pd.Series, classes: Sequence[str], size: int) -> str:
    image = thumbnail(row["path"], size)
    heat = thumbnail(row["heatmap"], size) if isinstance(row.get("heatmap"), str) else None
    correct = not row.get("_wrong", False)
    probabilities = " · ".join(f"{c} {row[c]:.2f}" for c in classes if c in row and pd.notna(row[c]))
    truth = f"<div>true: {html.escape(str(row['true_label']))}</div>" if pd.notna(row.get("true_label")) else ""
    pictures = "".join(f'<img alt="{alt}" src="{src}">' for alt, src in (("image", image), ("heat map", heat)) if src)
    name = os.path.basename(str(row["path"]))
    return (f'<div class="card{"" if correct else " wrong"}" data-order="{order}" data-label="{html.escape(str(row["label"]))}" '
            f'data-confidence="{row["confidence"]:.6f}" data-correct="{str(bool(correct)).lower()}" '
            f'data-name="{html.escape(name)}">{pictures}<div class="label" style="color:{COLOURS.get(row["label"], "#222")}">'
            f'{html.escape(str(row["label"]))} {row["confidence"]:.2f}</div>{truth}<div>{probabilities}</div>'
            f'<div class="path">{html.escape(str(row["path"]))}</div></div>')


def gallery_rows(frame: pd.DataFrame, limit: int | None, seed: int = 0) -> pd.DataFrame:
    """At most ``limit`` rows of ``frame`` (all with ``None`` or 0), in its order: the rows flagged
    ``_wrong`` first, then the predicted classes in turn, a random draw within each, so that a rare
    class is shown as fully as a common one."""
    if not limit or len(frame) <= limit:
        return frame
    shuffled = frame.iloc[np.random.default_rng(seed).permutation(len(frame))]
    key = pd.DataFrame({"right": ~shuffled["_wrong"] if "_wrong" in shuffled else False,
                        "turn": shuffled.groupby("label").cumcount()})
    return frame.loc[sorted(key.sort_values(["right", "turn"], kind="stable").index[:limit])]


SOURCE = re.compile(r'<meta name="imagesentiment-predictions" content="([^"]*)">')


def check_out(out: str | os.PathLike, source: str | os.PathLike | None = None, overwrite: bool = False) -> None:
    """Refuses, unless ``overwrite``, to replace a file at ``out`` that is not a report of the table at
    ``source`` (a report of it is replaced: the same command run again): another table's report, or a
    file this tool did not write."""
    out = Path(out)
    if overwrite or not out.is_file():
        return
    with open(out, encoding="utf-8", errors="replace") as page:
        head = page.read(4096)
    earlier = SOURCE.search(head)
    if earlier is None and STYLE.strip() in head:  # a report of a release that did not record its table
        return
    if earlier is None:
        raise FileExistsError(f"{out}: exists and is not a report written by imagesentiment; pass overwrite=True "
                              "(--overwrite) to replace it, or give another --out")
    if html.unescape(earlier.group(1)) != _source_name(source):
        raise FileExistsError(f"{out}: holds the report on {html.unescape(earlier.group(1)) or 'another table'}; "
                              "pass overwrite=True (--overwrite) to replace it, or give another --out")


def _source_name(source: str | os.PathLike | None) -> str:
    return os.path.abspath(source) if source is not None else ""


def build_report(predictions: pd.DataFrame, out: str | os.PathLike, title: str = "Image sentiment report",
                 thumb_size: int = 160, gallery: int | None = 1000, source: str | os.PathLike | None = None,
                 overwrite: bool = False) -> Path:
    """Write the report for ``predictions`` (read from the file ``source``, if given) to ``out`` (one HTML
    file) and return its path; the gallery holds at most ``gallery`` images (``None`` or 0: all), the
    counts and metrics cover all. An existing ``out`` is replaced only as :func:`check_out` allows."""
    check_out(out, source, overwrite)
    frame = predictions.copy()
    failed = frame[frame["label"].isna()] if "label" in frame else frame.iloc[:0]
    frame = frame[frame["label"].notna()].reset_index(drop=True)
    if frame.empty:
        raise ValueError("the predictions table has no scored images to report")
    classes = _classes(frame)
    labelled = frame["true_label"].notna() if "true_label" in frame else pd.Series(False, frame.index)
    has_truth = bool(labelled.any())  # figures on the labelled rows: an analyst may label a sample
    unknown = sorted(set(frame["true_label"].dropna()) - set(classes)) if "true_label" in frame else []
    if unknown:
        raise ValueError(f"true_label values {unknown} are not among the model's classes {classes}")
    if has_truth:  # misclassified first, the least confident mistakes last
        frame = frame.assign(_wrong=labelled & (frame["true_label"] != frame["label"]))
        frame = frame.sort_values(["_wrong", "confidence"], ascending=[False, False], kind="stable").reset_index(drop=True)
    options = "".join(f'<option value="{html.escape(c)}">{html.escape(c)}</option>' for c in classes)
    wrong = '<label><input type="checkbox" id="wrong"> misclassified only</label>' if has_truth else ""
    shown = gallery_rows(frame, gallery)
    cards = "".join(_card(i, row, classes, thumb_size) for i, row in shown.iterrows())
    drawn = (f'<p class="muted" id="drawn">{len(shown)} of {len(frame)} images in the gallery: '
             f'{"the misclassified first, then " if has_truth else ""}each predicted class in turn, drawn at '
             f'random</p>' if len(shown) < len(frame) else "")
    errors = "".join(f"<li>{html.escape(str(r['path']))}: {html.escape(str(r.get('error', '')))}</li>"
                     for _, r in failed.iterrows())
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="imagesentiment-predictions" content="{html.escape(_source_name(source))}"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>
<p class="muted"><span id="total">{len(frame)}</span> images scored{f", {len(failed)} could not be read" if len(failed) else ""}</p>
{_summary(frame, classes)}{_metrics(frame[frame["true_label"].notna()], classes, len(frame)) if has_truth else ""}
<h2>Gallery</h2>{drawn}<div class="controls">
<label>sentiment <select id="label"><option value="all">all</option>{options}</select></label>
<label>confidence ≥ <input type="range" id="confidence" min="0" max="1" step="0.01" value="0"> <span id="confidence-value">0.00</span></label>
<label>sort <select id="sort"><option value="default">{"mistakes first" if has_truth else "as listed"}</option>
<option value="confidence-desc">most confident</option><option value="confidence-asc">least confident</option>
<option value="name">name</option></select></label>{wrong}<span><span id="shown"></span> shown</span></div>
<div class="gallery" id="gallery">{cards}</div>
{f"<h2>Unreadable images</h2><ul id='errors'>{errors}</ul>" if errors else ""}
<script>{SCRIPT}</script></body></html>"""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out

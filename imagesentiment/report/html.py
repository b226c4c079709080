"""A self-contained HTML report of a predictions table, for analysts to open or send.

The page shows counts per sentiment and a confidence histogram over every image, a gallery of
thumbnails (and heat maps, when the table has a ``heatmap`` column) that filters and sorts in the
browser, and, where a ``true_label`` column is present, the metrics and confusion matrix with the
misclassified images first. A table of thousands keeps a gallery of ``gallery`` images (each one
adds its thumbnails to the page): mistakes first, then each predicted class in turn. The header names
the model and the date of the scoring; a card opens large on a click; the heat maps have a colour legend.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ..data.imageset import read_input
from ..contract import RATINGS
from ..table.columns import BOX, FACE, key_path, model_record, photo_rows
from .charts import COLOURS, histogram, valence_arousal

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin-bottom:4px} .muted{color:#666} table{border-collapse:collapse;margin:8px 0;display:block;max-width:100%;overflow-x:auto}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:right} th{background:#eee}
.bar{display:inline-block;height:14px;vertical-align:middle}
.controls{position:sticky;top:0;background:#fafafa;padding:8px 0;border-bottom:1px solid #ddd}
.controls label{margin-right:16px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:10px;margin-top:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px;cursor:zoom-in}
.card.wrong{border:2px solid #c0392b} .pictures{display:flex;gap:4px}
.card img{width:calc(50% - 2px);aspect-ratio:1;object-fit:cover;align-self:flex-start}
.label{font-weight:bold} .path{font-size:11px;color:#666;word-break:break-all} .prob{white-space:nowrap}
.legend{display:flex;align-items:center;gap:8px;margin:6px 0} .ramp{width:240px;height:12px;border:1px solid #ccc}
dialog{border:none;border-radius:8px;max-width:96vw;padding:16px} dialog::backdrop{background:rgba(0,0,0,.6)}
dialog img{width:min(44vw,520px);height:auto} #viewer .pictures{gap:12px}
.faces{display:flex;flex-wrap:wrap;gap:6px;margin-top:4px} .face{margin:0;font-size:11px;text-align:center}
.card .face img,dialog .face img{width:72px;aspect-ratio:1;object-fit:cover}
.overview{display:flex;flex-wrap:wrap;gap:16px 56px;align-items:flex-start}
#ratings-map circle[data-card]{cursor:pointer} #peek{position:fixed;pointer-events:none;display:none;background:#fff;border:1px solid #ccc;border-radius:6px;padding:4px;font-size:12px;max-width:200px}
#peek img{width:190px;height:auto;display:block}
.overview svg{max-width:100%;height:auto} .overview>*{min-width:0;max-width:100%}
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
  const [field, direction] = order.split('-');
  const key = c => field === 'name' ? c.dataset.name : parseFloat(c.dataset[field]);
  cards.sort((a, b) => {
    if (order === 'default') return a.dataset.order - b.dataset.order;
    const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (direction === 'desc' ? -1 : 1);
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
const viewer = document.getElementById('viewer');
function open(c) {
  viewer.querySelector('.pictures').innerHTML = c.querySelector('.pictures').innerHTML;
  viewer.querySelector('.about').innerHTML = c.querySelector('.about').innerHTML;
  viewer.querySelector('.full').textContent = c.dataset.path;
  viewer.showModal();
}
for (const c of cards) c.addEventListener('click', () => open(c));
viewer.addEventListener('click', () => viewer.close());
const peek = document.getElementById('peek');
const cardOf = dot => cards.find(c => c.dataset.order === dot.dataset.card);
document.querySelectorAll('#ratings-map circle[data-card]').forEach(dot => {
  dot.addEventListener('mouseenter', e => {
    const c = cardOf(dot), img = c.querySelector('.pictures img');
    peek.innerHTML = (img ? `<img src="${img.src}">` : '') + c.querySelector('.label').outerHTML;
    peek.style.left = (e.clientX + 14) + 'px'; peek.style.top = (e.clientY + 14) + 'px';
    peek.style.display = 'block';
  });
  dot.addEventListener('mouseleave', () => { peek.style.display = 'none'; });
  dot.addEventListener('click', () => open(cardOf(dot)));
});
"""


def thumbnail(path: str | os.PathLike, size: int = 160, box: Sequence[int] | None = None) -> str | None:
    """A ``data:`` URI of a JPEG thumbnail (of the ``box``, left, top, width and height, where given), or None
    if the image cannot be read (or is not to be: a FIFO, a device, a file over 256 MiB; :func:`read_input`)."""
    try:
        with Image.open(io.BytesIO(read_input(path))) as image:
            if box is not None:
                left, top, width, height = box
                image = image.crop((left, top, left + width, top + height))
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
        if column in ("heatmap", "error", "true_label", *RATINGS) or not pd.api.types.is_numeric_dtype(frame[column]):
            break
        block.append(column)
    seen = set(frame["label"].dropna()) | (set(frame["true_label"].dropna()) if "true_label" in frame else set())
    return block or sorted(seen)


def heat_legend(cmap: str = "jet") -> str:
    """The heat maps' colour scale, as the overlays draw it (imagesentiment.explain.plots)."""
    from matplotlib import colormaps

    stops = ", ".join("#%02x%02x%02x" % tuple(int(255 * v) for v in colormaps[cmap](i / 8)[:3]) for i in range(9))
    return (f'<div class="legend" id="legend">heat map: <span>low</span><span class="ramp" style="background:'
            f'linear-gradient(to right, {stops})"></span><span>high</span><span class="muted">red: the regions that '
            "raised the score of the predicted class most; blue: little or none</span></div>")


def _summary(frame: pd.DataFrame, classes: Sequence[str]) -> str:
    counts = frame["label"].value_counts()
    rows = "".join(
        f'<tr><th>{html.escape(c)}</th><td class="count" data-label="{html.escape(c)}">{int(counts.get(c, 0))}</td>'
        f'<td style="text-align:left"><span class="bar" style="width:{300 * counts.get(c, 0) / max(len(frame), 1):.0f}px;'
        f'background:{COLOURS.get(c, "#3b7dd8")}"></span></td></tr>' for c in classes)
    return (f"<h2>Predictions</h2><table id='counts'><tr><th>sentiment</th><th>images</th><th></th></tr>{rows}"
            f"</table><h3>Confidence</h3>{histogram(frame['confidence'])}")


def _metrics(frame: pd.DataFrame, classes: Sequence[str], scored: int) -> str:
    """The figures against the true labels of ``frame`` (the labelled rows of ``scored`` scored images)."""
    from ..evaluation.metrics import classification_metrics  # scikit-learn: only for a table with true labels

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


def _faces(faces: pd.DataFrame | None) -> str:
    """The faces of one photo's card: each cut from the photo, its number, label and confidence."""
    if faces is None or faces.empty:
        return ""
    items = "".join(
        f'<figure class="face" data-face="{int(face[FACE])}"><img alt="face {int(face[FACE])}" '
        f'src="{thumbnail(key_path(face["path"]), 96, [int(face[c]) for c in BOX]) or ""}"><figcaption style="color:'
        f'{COLOURS.get(face["label"], "#222")}">{int(face[FACE])}: {html.escape(str(face["label"]))} '
        f'{face["confidence"]:.2f}</figcaption></figure>' for _, face in faces.iterrows())
    return f'<div class="faces" data-faces="{len(faces)}">{items}</div>'


def shade(label: str, confidence: float, classes: int) -> str:
    """The colour of ``label`` as sure as ``confidence`` is: the class's own colour for a certain answer, fading
    towards grey as the confidence falls to chance (one in ``classes``)."""
    colour = COLOURS.get(label, "#222222")
    sure = min(max((confidence - 1 / classes) / (1 - 1 / classes), 0.0), 1.0) if classes > 1 else 1.0
    weight = 0.3 + 0.7 * sure
    mixed = (round(weight * int(colour[i:i + 2], 16) + (1 - weight) * 0xAA) for i in (1, 3, 5))
    return "#" + "".join(f"{v:02x}" for v in mixed)


def _card(order: int, row: pd.Series, classes: Sequence[str], size: int, shown_path: str,
          faces: pd.DataFrame | None = None) -> str:
    image = thumbnail(key_path(row["path"]), size)
    heat = thumbnail(key_path(row["heatmap"]), size) if isinstance(row.get("heatmap"), str) else None
    correct = not row.get("_wrong", False)
    probabilities = " · ".join(f'<span class="prob">{html.escape(c)} {row[c]:.2f}</span>'
                               for c in classes if c in row and pd.notna(row[c]))
    truth = f"<div>true: {html.escape(str(row['true_label']))}</div>" if pd.notna(row.get("true_label")) else ""
    rated = " · ".join(f"{name} {row[name]:.1f}" for name in RATINGS if pd.notna(row.get(name)))
    probabilities += f'<div class="ratings">{rated} <span class="muted">(1–7)</span></div>' if rated else ""
    pictures = "".join(f'<img alt="{alt}" src="{src}">' for alt, src in (("image", image), ("heat map", heat)) if src)
    name, path = os.path.basename(str(row["path"])), html.escape(str(row["path"]))
    scores = "".join(f' data-{name}="{row[name]:.4f}"' for name in RATINGS if pd.notna(row.get(name)))
    return (f'<div class="card{"" if correct else " wrong"}" data-order="{order}" data-label="{html.escape(str(row["label"]))}" '
            f'data-confidence="{row["confidence"]:.6f}" data-correct="{str(bool(correct)).lower()}"{scores} '
            f'data-name="{html.escape(name)}" data-path="{path}"><div class="pictures">{pictures}</div><div class="about">'
            f'<div class="label" style="color:{shade(row["label"], row["confidence"], len(classes))}">'
            f'{html.escape(str(row["label"]))} {row["confidence"]:.2f}</div>{truth}<div>{probabilities}</div>'
            f'{_faces(faces)}</div><div class="path" title="{path}">{html.escape(shown_path)}</div></div>')


def short_paths(paths: Sequence[str]) -> list[str]:
    """Each path less the folders all of them share: what tells them apart."""
    paths = [str(p) for p in paths]
    try:
        common = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
    except ValueError:  # relative and absolute paths mixed
        return paths
    return [os.path.relpath(p, common) if common else p for p in paths]


def _model_name(record: dict) -> str:
    """The model of a scoring record as a reader knows it: its form and name (a SavedModel version with its
    model's folder, ``imagesentiment/5``), the whole path on hover."""
    if not record.get("source"):  # a record of a release that kept only the whole line
        return html.escape(str(record["model"]))
    path = Path(record["source"])
    name = f"{path.parent.name}/{path.name}" if path.name.isdigit() else path.name
    return (f'{html.escape(str(record.get("form", "")))} <span title="{html.escape(str(path))}">'
            f'{html.escape(name)}</span>')


def _scoring(source: str | os.PathLike | None, classes: Sequence[str]) -> str:
    """The header line on the model and the scoring: the record ``predict`` keeps beside the table
    (:func:`imagesentiment.table.model_record`) where there is one, and the table's date."""
    record: dict = {}
    if source is not None and model_record(Path(source)).is_file():
        try:
            record = json.loads(model_record(Path(source)).read_text())
        except (OSError, ValueError):
            record = {}
    parts = [f"model: {_model_name(record)}"] if record.get("model") else []
    parts.append("classes: " + ", ".join(html.escape(c) for c in classes))
    if record.get("image_size"):
        parts.append("input {}×{} px".format(*record["image_size"]))
    when = record.get("scored") or (time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(source)))
                                    if source is not None and os.path.exists(source) else None)
    if when:
        parts.append(f"scored {html.escape(str(when))}")
    return f'<p class="muted" id="model">{" · ".join(parts)}</p>'


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


def _controls(classes: Sequence[str], has_truth: bool, rated: bool) -> str:
    """The gallery's filters and sort orders (with true labels: mistakes first, and a filter for them; with
    valence and arousal: by each)."""
    options = "".join(f'<option value="{html.escape(c)}">{html.escape(c)}</option>' for c in classes)
    ratings = ('<option value="valence-desc">most pleasant (valence)</option><option value="valence-asc">least '
               'pleasant</option><option value="arousal-desc">most intense (arousal)</option><option '
               'value="arousal-asc">calmest</option>') if rated else ""
    wrong = '<label><input type="checkbox" id="wrong"> misclassified only</label>' if has_truth else ""
    return f"""<div class="controls">
<label>sentiment <select id="label"><option value="all">all</option>{options}</select></label>
<label>confidence ≥ <input type="range" id="confidence" min="0" max="1" step="0.01" value="0"> <span id="confidence-value">0.00</span></label>
<label>sort <select id="sort"><option value="default">{"mistakes first" if has_truth else "as listed"}</option>
<option value="confidence-desc">most confident</option><option value="confidence-asc">least confident</option>
{ratings}<option value="name">name</option></select></label>{wrong}<span><span id="shown"></span> shown</span></div>"""


def rated(frame: pd.DataFrame) -> bool:
    """Whether the table gives every scored photo its valence and arousal."""
    return set(RATINGS) <= set(frame.columns) and bool(frame[list(RATINGS)].notna().all(axis=None))


def _overview(frame: pd.DataFrame, shown: pd.DataFrame, classes: Sequence[str], has_truth: bool) -> str:
    """The figures above the gallery, side by side where the page is wide: the counts and the confidence
    histogram, the metrics against the true labels, and the valence-arousal map of the photos."""
    parts = [_summary(frame, classes)]
    if has_truth:
        parts.append(_metrics(frame[frame["true_label"].notna()], classes, len(frame)))
    if rated(frame):
        cards = pd.Series(shown.index, index=shown.index).reindex(frame.index)  # a card's number: its row's
        parts.append("<section><h2>Valence and arousal</h2><p class='muted'>as predicted, on the 1–7 scale; "
                     f"hover a dot for its photo, click it to open</p>{valence_arousal(frame, cards)}</section>")
    return '<div class="overview">' + "".join(f"<div>{part}</div>" for part in parts) + "</div>"


def build_report(predictions: pd.DataFrame, out: str | os.PathLike, title: str = "Image sentiment report",
                 thumb_size: int = 240, gallery: int | None = 1000, source: str | os.PathLike | None = None,
                 overwrite: bool = False) -> Path:
    """Write the report for ``predictions`` (read from the file ``source``, if given) to ``out`` (one HTML
    file) and return its path; the gallery holds at most ``gallery`` images (``None`` or 0: all), the
    counts and metrics cover all. An existing ``out`` is replaced only as :func:`check_out` allows."""
    check_out(out, source, overwrite)
    frame = predictions[photo_rows(predictions)].copy()  # the faces' rows (predict --faces) go on their photo's card
    faces = dict(list(predictions[~photo_rows(predictions)].groupby("path")))
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
    shown = gallery_rows(frame, gallery)
    cards = "".join(_card(i, row, classes, thumb_size, short, faces.get(row["path"])) for (i, row), short
                    in zip(shown.iterrows(), short_paths(shown["path"].tolist())))
    legend = heat_legend() if "heatmap" in shown and shown["heatmap"].notna().any() else ""
    drawn = (f'<p class="muted" id="drawn">{len(shown)} of {len(frame)} images in the gallery: '
             f'{"the misclassified first, then " if has_truth else ""}each predicted class in turn, drawn at '
             f'random</p>' if len(shown) < len(frame) else "")
    found = (f', <span id="faces">{sum(map(len, faces.values()))}</span> faces found in them, each on its photo&#39;s '
             'card' if faces else "")
    errors = "".join(f"<li>{html.escape(str(r['path']))}: {html.escape(str(r.get('error', '')))}</li>"
                     for _, r in failed.iterrows())
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="imagesentiment-predictions" content="{html.escape(_source_name(source))}"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{_scoring(source, classes)}
<p class="muted"><span id="total">{len(frame)}</span> images scored{f", {len(failed)} could not be read" if len(failed) else ""}{found}</p>
{_overview(frame, shown, classes, has_truth)}
<h2>Gallery</h2>{drawn}{legend}<p class="muted">click an image for a larger view</p>{_controls(classes, has_truth, rated(frame))}
<div class="gallery" id="gallery">{cards}</div>
<div id="peek"></div><dialog id="viewer"><div class="pictures"></div><div class="about"></div><div class="path full"></div></dialog>
{f"<h2>Unreadable images</h2><ul id='errors'>{errors}</ul>" if errors else ""}
<script>{SCRIPT}</script></body></html>"""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out

"""Scoring many image files: inputs collected from files, folders, globs or a CSV; decoding in
parallel; batches through the compiled model; rows written as they come, so an interrupted run
keeps what it did and ``resume`` skips it. Unreadable images get a row with the reason.
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from tqdm import tqdm

from ..runtime import DECODER_NOISE, filtered, tf, without
from ..data.constants import MAX_BYTES
from ..data.imageset import InputFileError, read_input
from ..data.magic import unreadable
from ..data.pipeline import MAX_PIXELS, check_batch_size, decode_or_reason
from ..faces.detect import Face
from ..faces.scorer import FaceAnswers, FaceScorer, draw_boxes, with_face_rows
from ..inference.predictors import Predictor
from ..table.columns import answers, columns as table_columns, path_key, photo_rows, picture_name
from ..table.formats import table_format
from ..table.journal import Journal, begin, finish, held, journal_of, writing


class Limits(NamedTuple):
    """The largest image decoded (pixels) and the largest file read (bytes)."""

    max_pixels: int
    max_bytes: int


def decode_pixels(data: bytes, size: Sequence[int], max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray | None, str]:
    """Float32 ``(H, W, 3)`` pixels of encoded bytes as the model takes them, and ``""``; or None
    and why they are not a readable image (one larger than ``max_pixels`` is not decoded)."""
    pixels, reason = decode_or_reason(data, size, max_pixels)
    return pixels, unreadable(reason) if pixels is None else ""


def _load(path: str, size: Sequence[int], max_pixels: int, max_bytes: int) -> tuple[np.ndarray | None, str]:
    """:func:`decode_pixels` of the file at ``path``, read only if it is a regular file of at most ``max_bytes``
    (:func:`~imagesentiment.data.imageset.read_input`); else None and why."""
    try:
        data = read_input(path, max_bytes)
    except InputFileError as exc:
        return None, exc.reason
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    return decode_pixels(data, size, max_pixels)


def _probe_images() -> np.ndarray:
    """Three fixed 64 x 64 patterns: a model's probabilities on them tell that model from another."""
    y, x, channel = np.indices((64, 64, 3))
    pattern = (y * 4 + x * 2 + channel * 85 + (x * y) % 37) % 256
    return np.stack([pattern, 255 - pattern[:, ::-1], (y + x) * 2 + channel * 3]).astype(np.uint8)


def model_stamp(predictor: Predictor) -> dict:
    """What identifies the model that writes a table: its classes, input size and probabilities on fixed images;
    with its form and file, and when the scoring began (a report's header shows them)."""
    return {"model": f"{predictor.form} {predictor.source}", "form": predictor.form, "source": str(predictor.source),
            "scored": time.strftime("%Y-%m-%d %H:%M"),
            "classes": predictor.class_names, "image_size": list(predictor.image_size),
            "probe_probabilities": [[round(float(p), 6) for p in row]
                                    for row in predictor.probabilities(list(_probe_images()))]}


def predict_files(predictor: Predictor, paths: Sequence[str], out: str | os.PathLike, batch_size: int = 32,
                  explain_dir: str | os.PathLike | None = None, resume: bool = False, overwrite: bool = False,
                  progress: bool = True, workers: int | None = None, max_pixels: int = MAX_PIXELS,
                  columns: Mapping[str, Mapping[str, Any]] | None = None, wait: bool = False,
                  faces: FaceScorer | None = None, max_bytes: int = MAX_BYTES) -> pd.DataFrame:
    """Score ``paths`` into ``out`` (a format of :data:`~imagesentiment.table.formats.FORMATS`) and return the whole table (``attrs["read_now"]``:
    how many of its rows this call wrote).

    Columns: path, label, confidence, one probability per class, ``heatmap`` (with ``explain_dir``:
    the overlay image; a panel per image, image | heat map | overlay, is written there too) and
    ``error`` (why an image could not be scored; one larger than ``max_pixels`` is not decoded, a file larger
    than ``max_bytes`` or not a regular file, a FIFO or a device, is not read), then
    ``columns`` carried by path (a CSV of inputs' other columns, :func:`~imagesentiment.scoring.inputs.collect_images`;
    one named as an output column gets a ``csv_`` prefix). With ``resume``, paths already scored in ``out`` are skipped
    (those with an error are tried again: a file replaced since), and ``out`` must have been begun by the same
    model (``OUT.model.json`` records it); with ``overwrite`` it is replaced; otherwise it is an error, so
    nothing done is lost by accident. One run writes ``out`` at a time (:func:`~imagesentiment.table.journal.held`; ``wait``: wait for the
    other). ``path`` is the file's name with a backslash doubled and a byte that is not UTF-8 escaped
    (:func:`~imagesentiment.table.columns.path_key`): one row per file, whatever its name. With ``faces``
    (:func:`~imagesentiment.faces.scorer.face_scorer`), a row per face found follows its photo's: ``face`` (0, 1, ...), its
    ``box_`` columns, the faces model's answers, with ``explain_dir`` its heat map (boxes drawn on the photo's);
    a face left out (too small) is said on stderr.
    """
    out = Path(out)
    whole = table_format(out).write  # a format written whole at the end (Parquet), its rows journaled till then
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    check_batch_size(batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    # libjpeg's lines on a damaged file, which gets its error row anyway, kept off stderr; the bar goes there
    with held(out, wait), filtered(without(DECODER_NOISE)) as stderr:
        begin(out, model_stamp(predictor), resume, overwrite)
        own = table_columns(predictor.class_names, faces is not None, predictor.ratings, explain_dir is not None)
        carried = _carried_names(columns or {}, own)
        journal = Journal(journal_of(out), [*own, *carried.values()])
        earlier = journal.read()
        finished = table_format(out).read(out) if whole and out.exists() else None
        todo, superseding = _left_to_score(out, journal, earlier, finished, paths)
        carry = {name: [(columns or {}).get(path, {}).get(key) for path in todo] for key, name in carried.items()}
        with ThreadPoolExecutor(workers or min(8, 2 * (os.cpu_count() or 1))) as pool, \
                tqdm(total=len(todo), unit="img", disable=not progress, file=stderr) as bar:
            _score_into(journal, predictor, todo, carry, pool, bar, batch_size, Limits(max_pixels, max_bytes),
                        explain_dir, faces)
        if superseding:
            journal.keep_last()
        table = journal.read()
        if whole:
            table = finish(out, finished, table)
        table.attrs["read_now"] = len(todo)  # the rest were in ``out`` already (a resumed run)
        return table


def _carried_names(columns: Mapping[str, Mapping[str, Any]], scores: Sequence[str]) -> dict[str, str]:
    """Each carried column's name in the table: distinct from the scores' and each other's (``csv_`` prefixed)."""
    carried: dict[str, str] = {}
    for key in dict.fromkeys(key for row in columns.values() for key in row):
        carried[key] = key
        while carried[key] in scores or list(carried.values()).count(carried[key]) > 1:
            carried[key] = f"csv_{carried[key]}"
    return carried


def _score_into(journal: Journal, predictor: Predictor, todo: Sequence[str], carry: Mapping[str, list],
                pool: ThreadPoolExecutor, bar: tqdm, batch_size: int, limits: Limits,
                explain_dir: str | os.PathLike | None, faces: FaceScorer | None) -> None:
    """Score ``todo`` a batch at a time (:func:`_score_chunk`), each batch's rows, with their ``carry`` columns
    (a value per path of ``todo``) and faces' rows, appended to ``journal`` at once."""
    pictures = _picture_writer(explain_dir, limits.max_bytes) if explain_dir else None
    explainer = predictor.explainer() if explain_dir else None
    start = time.perf_counter()
    for first in range(0, len(todo), batch_size):
        chunk = todo[first:first + batch_size]
        rows, found = _score_chunk(predictor, chunk, pool, limits, batch_size, explainer, pictures,
                                   faces and _face_finder(faces, chunk, pool, bar, limits.max_bytes))
        for name, values in carry.items():
            rows[name] = values[first:first + batch_size]
        journal.append(_with_face_rows(rows, chunk, found, pictures, pool, ["path", *carry]) if found else rows)
        bar.update(len(chunk))
        bar.set_postfix(images_per_s=f"{(first + len(chunk)) / (time.perf_counter() - start):.1f}")


def _left_to_score(out: Path, journal: Journal, earlier: pd.DataFrame, finished: pd.DataFrame | None,
                   paths: Sequence[str]) -> tuple[list[str], bool]:
    """The paths not yet scored in ``out`` and whether their rows will supersede others there. An image whose
    last row is an error is tried again (a photo still downloading then, a file replaced since); its new row
    supersedes that one once written (Journal.keep_last), so a stop loses neither."""
    begun = list((finished if finished is not None else earlier).columns)
    if [c for c in begun if c != "heatmap"] == journal.columns:  # begun with --explain, resumed without it: the
        journal.columns = begun                                  # column kept, empty on the rows scored now
    if begun != journal.columns:
        raise ValueError(f"{out} was begun with the columns {begun}; these inputs give {journal.columns}: "
                         "resume with the same inputs (and --faces and --explain, if they were given), or write to "
                         "another file")
    before = [t for t in (finished, earlier) if t is not None and len(t)]
    last = pd.concat(before) if before else earlier
    last = last[photo_rows(last)].drop_duplicates("path", keep="last")  # a photo's own row holds its error
    done = {path for path, error in zip(last["path"], last["error"]) if not (isinstance(error, str) and error)}
    todo = [p for p in paths if path_key(p) not in done]
    return todo, bool(earlier["path"][photo_rows(earlier)].duplicated().any()
                      or not set(map(path_key, todo)).isdisjoint(last["path"]))


def _original(path: str, max_bytes: int) -> np.ndarray:
    """The uint8 RGB pixels of a photo already read once (its size checked then), at its own size."""
    return tf.io.decode_image(read_input(path, max_bytes), 3, expand_animations=False).numpy()


Pictures = Callable[..., str]  # (path, heatmap, label, confidence, boxes=(), picture=None, suffix="") -> overlay


def _picture_writer(explain_dir: str | os.PathLike, max_bytes: int) -> Pictures:
    """A function writing one image's heat-map pictures into ``explain_dir``; it returns the overlay's path.
    They are drawn on the photo read again (``max_bytes`` at most), the ``boxes`` of its faces drawn in, or on
    ``picture`` where given (a face); ``suffix`` ends their names (a face's number)."""
    from ..explain.plots import save_explanation

    Path(explain_dir).mkdir(parents=True, exist_ok=True)

    def write(path: str, heatmap: np.ndarray, label: str, confidence: float, boxes: Sequence[Face] = (),
              picture: np.ndarray | None = None, suffix: str = "") -> str:
        if picture is None:
            picture = draw_boxes(_original(path, max_bytes), boxes) if boxes else _original(path, max_bytes)
        stem = Path(explain_dir) / picture_name(path_key(path), "gradcam", suffix)  # as unique as the row's path
        with writing(stem):  # a full disk: the picture named, none left half-written, --resume said
            return path_key(save_explanation(stem, picture, heatmap, label, confidence)[1])
    return write


Found = dict[int, FaceAnswers]  # the faces of a chunk's photos, by row


def _score_chunk(predictor: Predictor, chunk: Sequence[str], pool: ThreadPoolExecutor, limits: Limits,
                 batch_size: int, explainer: Callable | None, pictures: Pictures | None,
                 faces: Callable[[Sequence[int]], Found] | None = None) -> tuple[pd.DataFrame, Found]:
    """The rows of one chunk of paths: decoded in ``pool``, scored in one batch (with ``explainer``: heat maps
    from the same pass, their pictures written in ``pool``), an error row for each image that cannot be read;
    and ``faces`` of the rows scored (the photo's pictures then show their boxes)."""
    loaded = list(pool.map(lambda p: _load(p, predictor.image_size, *limits), chunk))
    good = [i for i, (pixels, _) in enumerate(loaded) if pixels is not None]
    scores = {"probabilities": np.full([len(chunk), len(predictor.class_names)], np.nan, np.float32),
              **{name: np.full(len(chunk), np.nan, np.float32) for name in predictor.ratings}}
    heatmaps = None
    if good:
        pixels = np.stack([loaded[i][0] for i in good])
        computed = predictor.scores(pixels, batch_size) if explainer is None else explainer(pixels)  # one pass
        heatmaps = computed.pop("heatmap", None)
        for key, values in computed.items():
            scores[key][good] = values
    rows = pd.DataFrame({"path": [path_key(p) for p in chunk]}).join(
        answers(scores["probabilities"], predictor.class_names, ratings={n: scores[n] for n in predictor.ratings}))
    rows["heatmap"] = pd.Series(np.nan, index=rows.index, dtype=object)
    found = faces(good) if faces is not None else {}
    if heatmaps is not None:  # the pictures written in parallel, a panel and an overlay each
        boxes = [found[i].faces if i in found else () for i in good]
        rows.loc[good, "heatmap"] = list(pool.map(pictures, [chunk[i] for i in good], heatmaps,
                                                  rows.loc[good, "label"], rows.loc[good, "confidence"].astype(float),
                                                  boxes))
    rows["error"] = [reason for _, reason in loaded]
    return rows, found


def _face_finder(faces: FaceScorer, chunk: Sequence[str], pool: ThreadPoolExecutor, bar: tqdm,
                 max_bytes: int) -> Callable[[Sequence[int]], Found]:
    """For :func:`_score_chunk`: the faces of the photos of ``chunk`` at the given rows, each read again at its
    own size (``max_bytes`` at most), searched and cropped in ``pool`` (a thread holds one photo at a time), then
    scored in one batch; a note on each face left out goes to ``bar``."""
    def find(good: Sequence[int]) -> Found:
        notes: list[str] = []
        crops = list(pool.map(lambda i: faces.crops(path_key(chunk[i]), _original(chunk[i], max_bytes), notes), good))
        for note in notes:
            bar.write(note, file=sys.stderr)
        return dict(zip(good, faces.score(crops)))
    return find


def _with_face_rows(rows: pd.DataFrame, chunk: Sequence[str], found: Found, pictures: Pictures | None,
                    pool: ThreadPoolExecutor, copied: Sequence[str]) -> pd.DataFrame:
    """``rows`` (one per photo) with each photo's faces' rows after its own (:func:`with_face_rows`), their
    ``copied`` columns (path, the carried ones) the photo's, never its answers (its ratings are not the face's);
    with ``pictures`` and heat maps, each face's pictures drawn in ``pool``."""
    for i, answered in found.items():
        faces = answered.table
        faces["error"] = ""
        faces["heatmap"] = np.nan if pictures is None or answered.heatmaps is None else list(pool.map(
            lambda k: pictures(chunk[i], answered.heatmaps[k], faces["label"].iloc[k], float(faces["confidence"].iloc[k]),
                               picture=answered.crops[k].astype(np.uint8), suffix=f"-face{k}"), range(len(faces))))
    return with_face_rows(rows, found, copied).reset_index(drop=True)

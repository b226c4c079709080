"""Scoring many image files: inputs collected from files, folders, globs or a CSV; decoding in
parallel; batches through the compiled model; rows written as they come, so an interrupted run
keeps what it did and ``resume`` skips it. Unreadable images get a row with the reason.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .native_stderr import quiet_start

quiet_start()  # before TensorFlow starts: its start-up lines left out, as the command line leaves them out
import tensorflow as tf  # noqa: E402
from tqdm import tqdm

from .data.pipeline import MAX_PIXELS, check_batch_size, chunks, decode_or_reason
from .inputs import shown
from .atomic import replacing, write_atomically
from .detect import Face
from .faces import FaceAnswers, FaceScorer, draw_boxes
from .predictor import Predictor
from .native_stderr import DECODER_NOISE, filtered, without
from .table import answers, columns as table_columns, latest, model_record, photo_rows

FORMATS = (".csv", ".jsonl", ".parquet")


class Journal:
    """An append-only table of whole rows (CSV or JSON Lines); a torn last line from a killed run
    is cut off when the journal is reopened."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path, self.columns = path, list(columns)
        self.json = path.suffix == ".jsonl"
        self._repair()

    def _repair(self) -> None:
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def read(self) -> pd.DataFrame:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return pd.DataFrame(columns=self.columns)
        if self.json:  # dtype=False: carried text ("00123", a date) is not turned into numbers or dates
            return pd.read_json(self.path, lines=True, dtype=False)
        return pd.read_csv(self.path, keep_default_na=False, na_values=[""])

    def keep_last(self) -> None:
        """Keep each path's last scoring only (an image tried again supersedes its error row; see
        :func:`~imagesentiment.table.latest`), the other rows as written; the file is replaced at once, and
        only where rows are superseded."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        if self.json:
            with open(self.path, encoding="utf-8") as handle:
                lines = handle.readlines()
            table = pd.DataFrame([json.loads(line) for line in lines])
        else:  # every cell read as text and written back as it was: a post id 00123 stays 00123
            table = pd.read_csv(self.path, dtype=str, keep_default_na=False, na_filter=False)
        keep = latest(table)
        if keep.all():
            return
        kept = np.flatnonzero(keep)
        text = "".join(lines[i] for i in kept) if self.json else table.iloc[kept].to_csv(index=False,
                                                                                          lineterminator="\n")
        with writing(self.path):
            write_atomically(self.path, text.encode("utf-8"))

    def append(self, rows: pd.DataFrame) -> None:
        rows = rows.reindex(columns=self.columns)
        if self.json:
            text = "".join(json.dumps({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()})
                           + "\n" for r in rows.to_dict("records"))
        else:
            new = not self.path.is_file() or self.path.stat().st_size == 0
            text = rows.to_csv(index=False, header=new, float_format="%.6f", lineterminator="\n")
        with writing(self.path), open(self.path, "a", encoding="utf-8") as handle:  # one write per batch, flushed
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """A full disk while writing ``path`` said with the file's name and what to do: the rows written
    before are kept (a torn last line is cut off on resuming)."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise OSError(errno.ENOSPC, "no space left on the device; the rows written before are kept: free some "
                      "space, then run the same command with --resume (resume=True) to continue", str(path)) from exc


class OutputInUseError(FileExistsError):
    """Another run is writing the same table; the message names its process."""


@contextlib.contextmanager
def held(out: Path, wait: bool = False) -> Iterator[None]:
    """Hold ``out`` for this run alone, through a lock file ``OUT.lock`` beside it that names this process; a
    second run on it is refused with :class:`OutputInUseError`, or with ``wait`` waits until the first ends.
    The lock goes with the process (also a killed one); the file is removed at the end."""
    lock = out.with_name(out.name + ".lock")
    while True:
        handle = open(lock, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = f"process {handle.read().strip() or '?'}"
            if not wait:
                handle.close()
                raise OutputInUseError(f"{out} is being written by another predict run ({holder}, see {lock}): two "
                                       "runs on one table lose or repeat rows; wait for it to end, or pass wait=True "
                                       "(--wait) to start once it has") from None
            print(f"{out} is being written by {holder}: waiting for it to end", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        there = os.stat(lock) if lock.exists() else None
        if there is not None and os.path.samestat(os.fstat(handle.fileno()), there):
            break
        handle.close()  # the run before removed the file as it ended: lock the one there now
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        lock.unlink(missing_ok=True)
        handle.close()


def decode_pixels(data: bytes, size: Sequence[int], max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray | None, str]:
    """Float32 ``(H, W, 3)`` pixels of encoded bytes as the model takes them, and ``""``; or None
    and why they are not a readable image (one larger than ``max_pixels`` is not decoded)."""
    pixels, reason = decode_or_reason(data, size, max_pixels)
    return pixels, f"not a readable image: {reason}" if pixels is None else ""


def _load(path: str, size: Sequence[int], max_pixels: int) -> tuple[np.ndarray | None, str]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    return decode_pixels(data, size, max_pixels)


def _figure_name(path: str) -> str:
    return f"{Path(path).stem}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


def _probe_images() -> np.ndarray:
    """Three fixed 64 x 64 patterns: a model's probabilities on them tell that model from another."""
    y, x, channel = np.indices((64, 64, 3))
    pattern = (y * 4 + x * 2 + channel * 85 + (x * y) % 37) % 256
    return np.stack([pattern, 255 - pattern[:, ::-1], (y + x) * 2 + channel * 3]).astype(np.uint8)


def model_stamp(predictor: Predictor) -> dict:
    """What identifies the model that writes a table: its classes, input size and probabilities on fixed images;
    with its form and file, and when the scoring began (a report's header shows them)."""
    return {"model": f"{predictor.form} {predictor.source}", "scored": time.strftime("%Y-%m-%d %H:%M"),
            "classes": predictor.class_names, "image_size": list(predictor.image_size),
            "probe_probabilities": [[round(float(p), 6) for p in row]
                                    for row in predictor.probabilities(list(_probe_images()))]}


def _continue_with(predictor: Predictor, stamp_path: Path, out: Path, resume: bool, begun: bool) -> None:
    """Record the model in ``stamp_path``; refuse to resume ``out`` (``begun``: it holds rows) with another
    model than the one that began it, or when the record of that model is gone."""
    stamp = model_stamp(predictor)
    if resume and begun and not stamp_path.is_file():
        raise ValueError(f"{out} holds rows but {stamp_path.name}, the record of the model that wrote them, is "
                         "gone: which model began it cannot be told; overwrite=True (--overwrite) starts again")
    if resume and stamp_path.is_file():
        before = json.loads(stamp_path.read_text())
        differ = [f"{what} {before[key]} then, {stamp[key]} now" for what, key in (("classes", "classes"),
                  ("input size", "image_size")) if before[key] != stamp[key]]
        if not differ and not np.allclose(before["probe_probabilities"], stamp["probe_probabilities"], atol=1e-3):
            differ = ["same classes and input size, other probabilities on fixed test images"]
        if differ:
            raise ValueError(f"{out} was begun by another model ({'; '.join(differ)}; see {stamp_path.name}): "
                             "resume it with that model, or write to another file")
        stamp["scored"] = before.get("scored", stamp["scored"])  # when the table was begun
    stamp_path.write_text(json.dumps(stamp) + "\n")


def predict_files(predictor: Predictor, paths: Sequence[str], out: str | os.PathLike, batch_size: int = 32,
                  explain_dir: str | os.PathLike | None = None, resume: bool = False, overwrite: bool = False,
                  progress: bool = True, workers: int | None = None, max_pixels: int = MAX_PIXELS,
                  columns: Mapping[str, Mapping[str, Any]] | None = None, wait: bool = False,
                  faces: FaceScorer | None = None) -> pd.DataFrame:
    """Score ``paths`` into ``out`` (.csv, .jsonl or .parquet) and return the whole table (``attrs["read_now"]``:
    how many of its rows this call wrote).

    Columns: path, label, confidence, one probability per class, ``heatmap`` (with ``explain_dir``:
    the overlay image; a panel per image, image | heat map | overlay, is written there too) and
    ``error`` (why an image could not be scored; one larger than ``max_pixels`` is not decoded), then
    ``columns`` carried by path (a CSV of inputs' other columns, :func:`~imagesentiment.inputs.collect_images`;
    one named as an output column gets a ``csv_`` prefix). With ``resume``, paths already scored in ``out`` are skipped
    (those with an error are tried again: a file replaced since), and ``out`` must have been begun by the same
    model (``OUT.model.json`` records it); with ``overwrite`` it is replaced; otherwise it is an error, so
    nothing done is lost by accident. One run writes ``out`` at a time (:func:`held`; ``wait``: wait for the
    other). A file name that is not UTF-8 is written with its bytes escaped (:func:`shown`). With ``faces``
    (:meth:`Predictor.face_scorer`), a row per face found follows its photo's: ``face`` (0, 1, ...), its
    ``box_`` columns, the faces model's answers, with ``explain_dir`` its heat map (boxes drawn on the photo's);
    a face left out (too small) is said on stderr.
    """
    out = Path(out)
    if out.suffix not in FORMATS:
        raise ValueError(f"{out}: the output must end in one of {FORMATS}")
    journal_path = out.with_name(out.name + ".partial.jsonl") if out.suffix == ".parquet" else out
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    check_batch_size(batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    # libjpeg's lines on a damaged file, which gets its error row anyway, kept off stderr; the bar goes there
    with held(out, wait), filtered(without(DECODER_NOISE)) as stderr:
        _begin(predictor, out, journal_path, resume, overwrite)
        own = table_columns(predictor.class_names, faces is not None)
        carried = _carried_names(columns or {}, own)
        journal = Journal(journal_path, [*own, *carried.values()])
        earlier = journal.read()
        finished = pd.read_parquet(out) if out.suffix == ".parquet" and out.exists() else None
        todo, superseding = _left_to_score(out, journal, earlier, finished, paths)
        pictures = _picture_writer(explain_dir) if explain_dir else None
        explainer = predictor.explainer() if explain_dir else None
        start, scored = time.perf_counter(), 0
        with ThreadPoolExecutor(workers or min(8, 2 * (os.cpu_count() or 1))) as pool, \
                tqdm(total=len(todo), unit="img", disable=not progress, file=stderr) as bar:
            for chunk in chunks(todo, batch_size):
                rows, found = _score_chunk(predictor, chunk, pool, max_pixels, batch_size, explainer, pictures,
                                           faces and _face_finder(faces, chunk, pool, bar))
                for key, name in carried.items():
                    rows[name] = [columns.get(path, {}).get(key) for path in chunk]
                rows = _with_face_rows(rows, chunk, found, pictures, pool) if found else rows
                journal.append(rows)
                scored += len(chunk)
                bar.update(len(chunk))
                bar.set_postfix(images_per_s=f"{scored / (time.perf_counter() - start):.1f}")
        if superseding:
            journal.keep_last()
        table = journal.read()
        if out.suffix == ".parquet":
            table = _finish_parquet(out, journal_path, finished, table)
        table.attrs["read_now"] = len(todo)  # the rest were in ``out`` already (a resumed run)
        return table


def _begin(predictor: Predictor, out: Path, journal_path: Path, resume: bool, overwrite: bool) -> None:
    """Clear ``out`` for a new table (``overwrite``), or refuse one that exists unless ``resume``; record the
    model (:func:`_continue_with`)."""
    stamp_path = model_record(out)
    if overwrite:
        for stale in {out, journal_path, stamp_path}:
            stale.unlink(missing_ok=True)
    if not resume and (out.exists() or journal_path.exists()):
        taken = f"{out} already exists" if out.exists() else f"{journal_path} holds the rows of a stopped run"
        raise FileExistsError(f"{taken}: resume=True (--resume) continues it, overwrite=True (--overwrite) "
                              "replaces it")
    _continue_with(predictor, stamp_path, out, resume,
                   begun=any(path.is_file() and path.stat().st_size > 0 for path in (out, journal_path)))


def _carried_names(columns: Mapping[str, Mapping[str, Any]], scores: Sequence[str]) -> dict[str, str]:
    """Each carried column's name in the table: distinct from the scores' and each other's (``csv_`` prefixed)."""
    carried: dict[str, str] = {}
    for key in dict.fromkeys(key for row in columns.values() for key in row):
        carried[key] = key
        while carried[key] in scores or list(carried.values()).count(carried[key]) > 1:
            carried[key] = f"csv_{carried[key]}"
    return carried


def _left_to_score(out: Path, journal: Journal, earlier: pd.DataFrame, finished: pd.DataFrame | None,
                   paths: Sequence[str]) -> tuple[list[str], bool]:
    """The paths not yet scored in ``out`` and whether their rows will supersede others there. An image whose
    last row is an error is tried again (a photo still downloading then, a file replaced since); its new row
    supersedes that one once written (Journal.keep_last), so a stop loses neither."""
    begun = list((finished if finished is not None else earlier).columns)
    if begun != journal.columns:
        raise ValueError(f"{out} was begun with the columns {begun}; these inputs give {journal.columns}: "
                         "resume with the same inputs (and --faces, if it was given), or write to another file")
    before = [t for t in (finished, earlier) if t is not None and len(t)]
    last = pd.concat(before) if before else earlier
    last = last[photo_rows(last)].drop_duplicates("path", keep="last")  # a photo's own row holds its error
    done = {path for path, error in zip(last["path"], last["error"]) if not (isinstance(error, str) and error)}
    todo = [p for p in paths if shown(p) not in done]
    return todo, bool(earlier["path"][photo_rows(earlier)].duplicated().any()
                      or not set(map(shown, todo)).isdisjoint(last["path"]))


def _original(path: str) -> np.ndarray:
    """The uint8 RGB pixels of a photo already read once (its size checked then), at its own size."""
    return tf.io.decode_image(Path(path).read_bytes(), 3, expand_animations=False).numpy()


Pictures = Callable[..., str]  # (path, heatmap, label, confidence, boxes=(), picture=None, suffix="") -> overlay


def _picture_writer(explain_dir: str | os.PathLike) -> Pictures:
    """A function writing one image's heat-map pictures into ``explain_dir``; it returns the overlay's path.
    They are drawn on the photo read again, the ``boxes`` of its faces drawn in, or on ``picture`` where
    given (a face); ``suffix`` ends their names (a face's number)."""
    from .explain.plots import save_explanation

    Path(explain_dir).mkdir(parents=True, exist_ok=True)

    def write(path: str, heatmap: np.ndarray, label: str, confidence: float, boxes: Sequence[Face] = (),
              picture: np.ndarray | None = None, suffix: str = "") -> str:
        picture = picture if picture is not None else draw_boxes(_original(path), boxes) if boxes else _original(path)
        return shown(save_explanation(Path(explain_dir) / (_figure_name(shown(path)) + suffix), picture, heatmap,
                                      label, confidence)[1])
    return write


Found = dict[int, FaceAnswers]  # the faces of a chunk's photos, by row


def _score_chunk(predictor: Predictor, chunk: Sequence[str], pool: ThreadPoolExecutor, max_pixels: int,
                 batch_size: int, explainer: Callable | None, pictures: Pictures | None,
                 faces: Callable[[Sequence[int]], Found] | None = None) -> tuple[pd.DataFrame, Found]:
    """The rows of one chunk of paths: decoded in ``pool``, scored in one batch (with ``explainer``: heat maps
    from the same pass, their pictures written in ``pool``), an error row for each image that cannot be read;
    and ``faces`` of the rows scored (the photo's pictures then show their boxes)."""
    loaded = list(pool.map(lambda p: _load(p, predictor.image_size, max_pixels), chunk))
    good = [i for i, (pixels, _) in enumerate(loaded) if pixels is not None]
    probabilities = np.full([len(chunk), len(predictor.class_names)], np.nan, np.float32)
    heatmaps = None
    if good:
        pixels = np.stack([loaded[i][0] for i in good])
        if explainer is not None:
            result = explainer(pixels)
            probabilities[good], heatmaps = result["probabilities"], result["heatmap"]
        else:
            probabilities[good] = predictor.probabilities(pixels, batch_size)
    rows = pd.DataFrame({"path": [shown(p) for p in chunk]}).join(answers(probabilities, predictor.class_names))
    rows["heatmap"] = pd.Series(np.nan, index=rows.index, dtype=object)
    found = faces(good) if faces is not None else {}
    if heatmaps is not None:  # the pictures written in parallel, a panel and an overlay each
        boxes = [found[i].faces if i in found else () for i in good]
        rows.loc[good, "heatmap"] = list(pool.map(pictures, [chunk[i] for i in good], heatmaps,
                                                  rows.loc[good, "label"], rows.loc[good, "confidence"].astype(float),
                                                  boxes))
    rows["error"] = [reason for _, reason in loaded]
    return rows, found


def _face_finder(faces: FaceScorer, chunk: Sequence[str], pool: ThreadPoolExecutor,
                 bar: tqdm) -> Callable[[Sequence[int]], Found]:
    """For :func:`_score_chunk`: the faces of the photos of ``chunk`` at the given rows, each read again at its
    own size, searched and cropped in ``pool`` (a thread holds one photo at a time), then scored in one batch;
    a note on each face left out goes to ``bar``."""
    def find(good: Sequence[int]) -> Found:
        notes: list[str] = []
        crops = list(pool.map(lambda i: faces.crops(shown(chunk[i]), _original(chunk[i]), notes), good))
        for note in notes:
            bar.write(note, file=sys.stderr)
        return dict(zip(good, faces.score(crops)))
    return find


def _with_face_rows(rows: pd.DataFrame, chunk: Sequence[str], found: Found, pictures: Pictures | None,
                    pool: ThreadPoolExecutor) -> pd.DataFrame:
    """``rows`` (one per photo) with each photo's faces' rows after its own, their other columns (path, the
    carried ones) the photo's; with ``pictures`` and heat maps, each face's pictures drawn in ``pool``."""
    blocks = []
    for i in range(len(rows)):
        blocks.append(rows.iloc[[i]])
        if i not in found:
            continue
        answered = found[i]
        block = answered.table.assign(**{c: rows.at[i, c] for c in rows if c not in answered.table and c != "error"},
                                       error="")
        if pictures is not None and answered.heatmaps is not None:
            block["heatmap"] = list(pool.map(
                lambda k: pictures(chunk[i], answered.heatmaps[k], block["label"].iloc[k],
                                   float(block["confidence"].iloc[k]), picture=answered.crops[k].astype(np.uint8),
                                   suffix=f"-face{k}"), range(len(block))))
        else:
            block["heatmap"] = np.nan
        blocks.append(block)
    return pd.concat(blocks, ignore_index=True)


def _finish_parquet(out: Path, journal_path: Path, finished: pd.DataFrame | None, table: pd.DataFrame) -> pd.DataFrame:
    """Write the Parquet table whole, an earlier run's rows (``finished``) superseded by this run's, and drop
    the journal that held this run's rows while it ran."""
    if finished is not None:
        table = pd.concat([finished, table], ignore_index=True)
        table = table[latest(table)].reset_index(drop=True)
    with writing(out), replacing(out) as partial:
        table.to_parquet(partial, index=False)
    journal_path.unlink(missing_ok=True)  # none where a resumed run had nothing left to score
    return table

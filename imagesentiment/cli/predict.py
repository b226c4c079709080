"""``predict``, ``score-beam`` and ``report``: photos scored here or on Apache Beam, and a page of the scores."""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from ..contract import RATINGS
from ..data.constants import MAX_PIXELS
from ..data.magic import file_header_problem, unreadable
from ..table.formats import NAMES as FORMAT_NAMES, SHARDED
from .shared import (COUNT, FACES_ONLY, NON_NEGATIVE, UsageError, add_command, add_faces, add_max_bytes, add_trust,
                     collect_images, count, names, not_an_input, scoped)

SHOWN_ROWS = 20  # predict prints each answer for at most this many photos


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict the sentiment of images (files, folders, globs or a CSV with a path column) with any model
    form (default: the shipped model); rows are written as they come, --resume continues a stopped run."""
    not_an_input(args.out, args.images)
    columns: dict[str, dict[str, Any]] = {}  # a CSV of inputs' other columns, carried into the table
    paths = collect_images(args.images, args.explain, columns)
    scoped(args, {"with --faces": (args.faces, FACES_ONLY)})
    refusals = []
    for path in paths:  # no model needed to tell; the first image stops it: the run reads and words the rest itself
        if not (why := file_header_problem(path)):
            break
        refusals.append(f"{path}: {unreadable(why)}")
    else:
        print(*refusals, sep="\n", file=sys.stderr)
        print(f"error: no input is an image: nothing was scored, and {args.out} was not written", file=sys.stderr)
        return 1
    args.start_tensorflow()  # the inputs are there: now the model
    from ..inference.loader import load
    from ..scoring.batch import predict_files
    from ..faces.scorer import face_scorer
    from ..table.columns import photo_rows

    predictor = load(args.model, args.classes, verify=not args.trust_unverified)
    faces = (face_scorer(predictor, load(args.faces_model, verify=not args.trust_unverified), bool(args.explain),
                         args.min_face_score)
             if args.faces else None)
    table = predict_files(predictor, paths, args.out, args.batch_size, args.explain,
                          args.resume, args.overwrite, progress=len(paths) > args.batch_size,
                          max_pixels=args.max_pixels, columns=columns, wait=args.wait, faces=faces,
                          max_bytes=args.max_bytes)
    photos, faces_found = table[photo_rows(table)], table[~photo_rows(table)]
    failed = photos[photos["error"].notna() & (photos["error"] != "")]
    for row in failed.itertuples():
        print(f"{row.path}: {row.error}", file=sys.stderr)
    if len(photos) <= SHOWN_ROWS:  # a few photos: the answers here, not only in the table
        for row in table.drop(failed.index).itertuples():
            face = f" face {int(row.face)}" if args.faces and row.Index in faces_found.index else ""
            rated = "".join(f", {name} {value:.1f}" for name in RATINGS
                            if isinstance(value := getattr(row, name, None), float) and not math.isnan(value))
            print(f"{row.path}{face}: {row.label} ({row.confidence:.2f}){rated}")
    counts = photos["label"].value_counts().to_dict()
    now = table.attrs["read_now"]
    before = f" ({len(photos) - now} of these rows from before, {now} now)" if now < len(photos) else ""
    found = f", {count(len(faces_found), 'face')} found {faces_found['label'].value_counts().to_dict()}" \
        if args.faces else ""
    print(f"{count(len(photos) - len(failed), 'image')} scored {counts}{found}, {len(failed)} unreadable{before}; "
          f"written to {args.out}")
    if len(failed) == len(photos):  # a script must not take a table of error rows for a result
        print(f"error: no input could be scored; {args.out} holds a row for each, with why", file=sys.stderr)
        return 1
    return 0


def add_predict(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "predict", cmd_predict, "the rows written so far are kept; run the same command with "
                    "--resume to continue", inputs_first=True)
    p.add_argument("images", nargs="+", help="image files, folders (searched recursively), globs, or CSV files "
                   "with a path column")
    p.add_argument("--model", help="a run directory, a .keras file, a SavedModel version folder or a .tflite "
                   "file (default: the shipped model)")
    p.add_argument("--classes", type=names, help="class names, comma-separated (default: those stored with the model)")
    p.add_argument("--out", default="predictions.csv", help=f"the table to write: {FORMAT_NAMES}")
    p.add_argument("--explain", metavar="DIR", help="also write a heat-map figure and overlay per image here")
    add_faces(p, "a row per face after the photo's")
    add_trust(p)
    continuing = p.add_mutually_exclusive_group()
    continuing.add_argument("--resume", action="store_true", help="continue a stopped run: skip the images in --out")
    continuing.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--wait", action="store_true", help="if another run is writing --out, wait for it to end "
                   "(default: refuse)")
    p.add_argument("--batch-size", type=COUNT, default=32, help="images per batch")
    p.add_argument("--max-pixels", type=COUNT, default=MAX_PIXELS, help="larger images get an error row, "
                   "not decoded")
    add_max_bytes(p, "gets an error row")


def cmd_score_beam(args: argparse.Namespace) -> int:
    """Score a large collection with an exported SavedModel on Apache Beam (RunInference), on the local
    runner or, with Beam's options after the others (--runner DataflowRunner ...), on a cluster;
    writes OUT-0000i-of-0000N.parquet (or .csv). Needs pip install imagesentiment[scale]."""
    try:
        from ..scoring.beam import score
    except ImportError as exc:
        raise UsageError(str(exc)) from None

    files = score(args.images, args.model, args.out, args.format, args.tfrecords, args.batch_size,
                  args.beam_args, args.overwrite)
    print(f"scores written to {', '.join(files)}")
    return 0


def add_score_beam(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "score-beam", cmd_score_beam)
    p.add_argument("images", nargs="+", help="file patterns (gs://bucket/photos/**.jpg) or folders; with "
                   "--tfrecords, patterns of shard files (PREFIX/test-*.tfrecord)")
    p.add_argument("--model", required=True, help="an exported SavedModel version folder (local or gs://...)")
    p.add_argument("--out", required=True, metavar="PREFIX", help="the output files' prefix")
    p.add_argument("--format", choices=SHARDED, default="parquet", help="the output files' format")
    p.add_argument("--tfrecords", action="store_true", help="the inputs are TFRecord shards (imagesentiment shard)")
    p.add_argument("--batch-size", type=COUNT, default=32, help="the largest batch RunInference forms")
    p.add_argument("--overwrite", action="store_true", help="replace scores already written at --out")
    p.epilog = ("Any other option goes to Beam, best written --name=value: --runner=DataflowRunner --project=P "
                "--region=R --temp_location=gs://... ; locally --direct_num_workers=2 "
                "--direct_running_mode=multi_processing")


def cmd_report(args: argparse.Namespace) -> int:
    """Write a self-contained HTML report of a predictions table (CSV, JSON Lines or Parquet)."""
    from ..table.formats import predictions_file, read_predictions

    not_an_input(args.out, [args.predictions])
    predictions_file(args.predictions)  # there, before pandas loads
    from ..report.html import build_report, check_out

    check_out(args.out, args.predictions, args.overwrite)
    predictions = read_predictions(args.predictions)
    try:
        out = build_report(predictions, args.out, args.title, gallery=args.gallery, source=args.predictions,
                           overwrite=args.overwrite)
    except ValueError as exc:  # the table's content: name the file
        raise UsageError(f"{args.predictions}: {exc}") from None
    print(f"report written to {out}")
    return 0


def add_report(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "report", cmd_report, inputs_first=True)
    p.add_argument("predictions", help=f"the output of imagesentiment predict ({FORMAT_NAMES})")
    p.add_argument("--out", default="report.html", help="the HTML file to write")
    p.add_argument("--title", default="Image sentiment report", help="the page's heading")
    p.add_argument("--gallery", type=NON_NEGATIVE, default=1000,
                   help="at most this many thumbnails, misclassified first, then each class in turn (0: all)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out even if it is another table's report or not a report")

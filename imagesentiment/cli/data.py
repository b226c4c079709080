"""``check`` and ``demo``: a data set's images checked, and a generated set run through the data flow."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..data.constants import MAX_PIXELS
from .shared import COUNT, NON_NEGATIVE, add_command, add_max_bytes, bounded, parse_options


def cmd_check(args: argparse.Namespace) -> int:
    """Check every image of a data set and list the files left out."""
    from ..data import check_set, load_source

    images = load_source(args.path, args.format, **parse_options(args.option))
    checked = check_set(images, args.max_pixels, args.max_bytes)
    print(checked.report())
    print("per class:", checked.images.counts())
    if args.out:
        print("skipped files written to", checked.write_skipped(args.out))
    return 0


def add_check(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "check", cmd_check)
    p.add_argument("path", help="a class-per-folder root, a CSV manifest, or a bundled data set's folder")
    p.add_argument("--format", help="the data set's format: folder, manifest, votes, twitter, oasis, fer2013 or "
                   "videos (guessed when left out)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="a source option, e.g. agreement=four, split=test, min_agreement=0.6")
    p.add_argument("--max-pixels", type=COUNT, default=MAX_PIXELS, help="refuse larger images")
    add_max_bytes(p, "is left out")
    p.add_argument("--out", help="where to list the skipped files: a .csv file, or a folder for skipped_files.csv")


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate a small image set and run it through checks, split and pipeline."""
    import time

    from ..data import check_set, make_dataset, make_synthetic_set, train_val_test_split

    out = Path(args.out)
    images = make_synthetic_set(out / "images", per_class=args.per_class, size=args.size, seed=args.seed)
    checked = check_set(images)
    checked.write_skipped(out)
    split = train_val_test_split(checked.images, seed=args.seed)
    print(checked.report())
    for name in ("train", "validation", "test"):
        print(f"{name:>10}: {getattr(split, name).counts()}")
    start, seen = time.perf_counter(), 0
    for batch, _ in make_dataset(split.train, (args.size, args.size), 32, training=True, seed=args.seed):
        seen += int(batch.shape[0])
    print(f"pipeline: {seen} training images in {time.perf_counter() - start:.2f} s")
    print(f"images written to {out / 'images'} (a folder per class); to train a small model on them:\n"
          f"  imagesentiment train pipelines/folder.yaml --set data.source.path={out / 'images'} "
          f"--out {out / 'run'}")
    return 0


def add_demo(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "demo", cmd_demo)
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--per-class", type=COUNT, default=40, help="images generated per class")
    p.add_argument("--size", type=bounded(int, 2), default=64, help="their width and height in pixels")
    p.add_argument("--seed", type=NON_NEGATIVE, default=0, help="the seed of the images and the split")

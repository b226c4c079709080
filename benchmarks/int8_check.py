"""How much do the shipped TFLite files lose against the SavedModel, on at least 500 photos no model trained on?

The check set: the Twitter photos of the three-agree list that are not five-agree (the default trains on
five-agree; positive and negative only) and the held-out sides (validation and test) of the run the shipped
files came from (``--run``). Every exported form in ``exported_models/`` and the run's own Keras model (its
trained float32 weights, where the run holds ``model.keras``) scores every photo in one view; the figures are
each form's accuracy and macro-F1, and for each form but the SavedModel its agreement with the SavedModel's
class and the largest probability difference.

    python benchmarks/int8_check.py --run runs/default
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from imagesentiment.contract import SHIPPED_NAMES, shipped_model
from imagesentiment.data import ImageSet, check_set, load_source
from imagesentiment.evaluation.evaluate import predict_probabilities
from imagesentiment.inference import load
from results import record

ROOT = Path(__file__).resolve().parents[1]
TWITTER = ROOT.parent / "shared" / "data" / "twitter-you2015"


def check_set_images(run: Path, classes: list[str]) -> tuple[ImageSet, pd.Series]:
    """The check photos with their classes, and where each comes from."""
    five = set(load_source(TWITTER, "twitter", agreement="five").frame["path"])
    three = load_source(TWITTER, "twitter", agreement="three").frame
    twitter = three[~three["path"].isin(five)].assign(source="Twitter three/four-agree, not five")
    held = pd.concat([pd.read_csv(run / f"split_{side}.csv") for side in ("validation", "test")], ignore_index=True)
    frame = pd.concat([twitter[["path", "label", "source"]],
                       held[["path", "label"]].assign(source=f"held-out sides of {run.name}")], ignore_index=True)
    images = check_set(ImageSet(frame.drop(columns="source"), tuple(classes))).images
    return images, frame.set_index("path").loc[images.frame["path"], "source"].reset_index(drop=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="the run directory the shipped files came from")
    args = parser.parse_args()
    folder = ROOT / "exported_models"
    classes = json.loads((folder / "classes.json").read_text())
    images, sources = check_set_images(args.run, classes)
    truth = images.label_ids.to_numpy()
    forms = {"savedmodel": shipped_model(SHIPPED_NAMES[0]),  # its newest version; the faces model's files left out
             **{p.stem.split("-")[-1]: p for p in sorted(folder.glob(f"{SHIPPED_NAMES[0]}-*.tflite"))},
             **({"keras": args.run} if (args.run / "model.keras").is_file() else {})}
    probabilities = {name: predict_probabilities(load(path), images) for name, path in forms.items()}
    reference = probabilities["savedmodel"]
    figures = {}
    for name, p in probabilities.items():
        predicted = p.argmax(1)
        figures[name] = {"accuracy": round(float(accuracy_score(truth, predicted)), 4),
                         "macro_f1": round(float(f1_score(truth, predicted, average="macro")), 4)}
        if name != "savedmodel":
            figures[name].update(
                agreement_with_savedmodel=round(float((predicted == reference.argmax(1)).mean()), 4),
                accuracy_change_points=round(100 * (figures[name]["accuracy"] - figures["savedmodel"]["accuracy"]), 2),
                largest_probability_difference=round(float(np.abs(p - reference).max()), 4))
    record("int8_check", {"run": str(args.run), "images": len(images),
                          "by_source": {k: int(v) for k, v in sources.value_counts().items()}, **figures})

"""The shipped default model's heads beside its classes: calibrated probabilities (one temperature fitted on the
validation side, folded into the logits layer) and valence and arousal (a ratings head, ridge regression with
its L2 weight chosen by cross-validation over photos, on the pooled features of the shipped EfficientNet-Lite2,
fitted on the rated OASIS photos).

- **How well, honestly.** The shipped model was trained on the training side of ``pipelines/default.yaml``'s
  split (seed 0) and never on its 118 test photos. A head fitted on the other 469 OASIS photos is scored once on
  those 118: valence and arousal (Pearson r, Spearman rho, MAE, 95 % bootstrap intervals), beside the classes'
  accuracy there (which checks that the split is the shipped run's: the card's 74.6 %), and the calibration of
  the classes there before and after the temperature, which was fitted on the 88 validation photos alone.
- **What ships** (``--export``): the head refitted on all 587 rated photos, written into the model as its
  ``ratings`` output, exported as the next SavedModel version (float16 weights) and as the float16 and int8
  TFLite files, checked on the run's validation and test photos as ``imagesentiment export`` checks them; the
  version before it is removed (``exported_models/`` stays within 45 MB).

    python experiments/default_heads.py [--export]      # recorded as default_heads in benchmarks/results.json
    python experiments/default_heads.py --export-only   # the shipped model written again (default_heads_export)
    python experiments/default_heads.py --export-only --run runs/default-refit   # a trained run's model instead

``--run``: a run whose model already carries its heads, such as the refit on every photo
(``imagesentiment train pipelines/default.yaml --refit runs/default``), exported as the next version. Its checks
run on the photos of the default split's validation and test sides, which such a model trained on: they check
that the exported files agree with the Keras model, not how well it does.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # results.record: benchmarks/results.json

from results import record  # noqa: E402

from imagesentiment.contract import SHIPPED_MODELS, shipped_model, versions  # noqa: E402
from imagesentiment.data import ImageSet  # noqa: E402
from imagesentiment.evaluation.evaluate import predict_scores  # noqa: E402
from imagesentiment.evaluation.metrics import calibration_metrics, rating_metrics  # noqa: E402
from imagesentiment.export import export_savedmodel, export_tflite, image_arrays  # noqa: E402
from imagesentiment.inference import KerasPredictor, load_keras  # noqa: E402
from imagesentiment.training.config import load_config  # noqa: E402
from imagesentiment.training.prepare import load_sources, split_sources  # noqa: E402
from imagesentiment.training.calibration import calibrate  # noqa: E402
from imagesentiment.training.ratings import add_ratings  # noqa: E402

RATINGS = ("valence", "arousal")


def held_out_figures(model, oasis: ImageSet, test: ImageSet) -> dict:
    """The classes on ``test`` and the ratings of a head fitted on the OASIS photos outside it, scored on it."""
    inside = ~oasis.frame["path"].isin(test.frame["path"])
    rated, head = add_ratings(model, oasis.subset(np.flatnonzero(inside.to_numpy())))
    predictor = KerasPredictor(rated)
    truth = oasis.frame.set_index("path").loc[test.frame["path"], list(RATINGS)]
    answers = predict_scores(predictor, test)  # the classes and the ratings from one pass
    classes = answers["probabilities"].argmax(axis=1)
    return {"photos": len(test), "fitted_on": head.photos, "alpha": head.alpha,
            "accuracy": float((classes == test.label_ids.to_numpy()).mean()),
            **{name: rating_metrics(truth[name].to_numpy(), answers[name]) for name in RATINGS}}


def calibrated(model, split) -> dict:
    """Fold a temperature fitted on the validation side into ``model``; the test side's calibration before and
    after (the classes it predicts do not change)."""
    y = split.test.label_ids.to_numpy()
    before = calibration_metrics(y, predict_scores(model, split.test)["probabilities"])
    fitted = calibrate(model, split.validation)
    after = calibration_metrics(y, predict_scores(model, split.test)["probabilities"])
    return {"temperature": fitted.temperature, "fitted_on": fitted.images, "validation_log_loss": fitted.log_loss,
            **{side: {key: figures[key] for key in ("ece", "brier")}
               for side, figures in (("test_before", before), ("test_after", after))}}


def export(model, split, classes: list[str]) -> dict:
    """Write the model with its head as the next version and the two TFLite files; the figures of the checks."""
    previous = versions(SHIPPED_MODELS / "imagesentiment")
    folder = export_savedmodel(model, SHIPPED_MODELS, "imagesentiment", classes, weight_precision="float16")
    size = tuple(model.inputs[0].shape[1:3])
    held = ImageSet(pd.concat([split.validation.frame, split.test.frame], ignore_index=True), split.test.classes)
    checks = image_arrays(held, size, classes, None, 0)
    representative = image_arrays(split.train, size, classes, 200, 0)[0]
    written = export_tflite(model, SHIPPED_MODELS, ["float16", "int8"], checks, representative, classes,
                            overwrite=True)
    for version in previous:
        shutil.rmtree(SHIPPED_MODELS / "imagesentiment" / str(version))
    return {"version": folder.name, **{quantization: dataclasses.asdict(check)
                                       for quantization, (_, check) in written.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", action="store_true", help="write the model with its heads to exported_models/")
    parser.add_argument("--export-only", action="store_true", help="write the shipped model again as the next "
                        "version, its heads as they are (after a release changes what an export holds)")
    parser.add_argument("--run", help="with --export-only: export this run's model rather than the shipped one")
    args = parser.parse_args()
    start = time.perf_counter()
    config = load_config(ROOT / "pipelines" / "default.yaml")
    with tempfile.TemporaryDirectory() as folder:
        sources = load_sources(config, Path(folder) / "skipped.csv")
    split = split_sources(config, sources)
    model, classes = load_keras(args.run if args.run else shipped_model("imagesentiment"))
    if args.export_only:
        record("default_heads_export", {"export": export(model, split, classes), "model": args.run or "shipped",
                                        "seconds": round(time.perf_counter() - start)})
        return
    figures = {"calibration": calibrated(model, split)}
    figures["held_out"] = held_out_figures(model, sources.images, split.test)
    shipped, head = add_ratings(model, sources.images)
    shipped.class_names = classes
    figures["shipped_head"] = {"fitted_on": head.photos, "alpha": head.alpha}
    if args.export:
        figures["export"] = export(shipped, split, classes)
    record("default_heads", {**figures, "seconds": round(time.perf_counter() - start)})


if __name__ == "__main__":
    main()

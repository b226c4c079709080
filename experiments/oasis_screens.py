"""Cheap screens of ideas for the OASIS target of issue 3, before a full cross-validation.

Linear probes (scikit-learn logistic regression, class-balanced) on the pooled MobileNetV2
features of the 587 OASIS photos (the weights in ../shared/weights), trained on each photo and
its mirror image and judged with flip averaging, over 6 repetitions of a stratified 5-fold split:

- label forms: hard classes (the pipeline's); soft targets from the ratings, the share of a
  normal distribution around each photo's mean valence (its rater SD times a scale) on each side
  of the cuts; ordinal (two binary probes, valence above each cut);
- resolutions: the backbone at 160, 224 and 288 px, and averaging the 160 and 224 probes;
- mid-level features: the pooled output of an earlier backbone layer beside the last one's (224 px);
- less data: hard classes at 224 px trained on 90 % of each fold's training photos (what a
  validation side costs).

With ``--members RUN_A RUN_B`` (two ``imagesentiment cv`` run folders of ensembles of the same
folds, e.g. pipelines/oasis.yaml at 224 and at ``--set model.input_size=160``) it also scores
ensembles mixing their members on each fold's held-out photos.

The photos, the class cuts and the backbone weights are those of ``--pipeline``.

    python experiments/oasis_screens.py [--pipeline pipelines/oasis.yaml] [--members RUN_224 RUN_160]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # results.record: benchmarks/results.json

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import norm  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from imagesentiment.training.config import load_config  # noqa: E402
from imagesentiment.data import ImageSet, load_source  # noqa: E402
from imagesentiment.evaluation.evaluate import predict_probabilities  # noqa: E402
from imagesentiment.models.build import build_transfer  # noqa: E402
from results import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


MID_LEVEL = ("block_12_add", "block_15_add")  # the input of the blocks the pipeline fine-tunes, and one inside


def features(images: ImageSet, size: int, weights: Path, layer: str = "out_relu") -> tuple[np.ndarray, np.ndarray]:
    """Globally averaged output of a backbone ``layer`` for each photo and for its mirror image."""
    model = build_transfer(3, "mobilenet_v2", size, weights)
    pooled = keras.Model(model.inputs, keras.layers.GlobalAveragePooling2D()(model.get_layer(layer).output))
    mirrored = keras.Model(model.inputs, pooled(keras.ops.flip(model.inputs[0], axis=2)))
    return predict_probabilities(pooled, images), predict_probabilities(mirrored, images)


def soft_targets(valence: np.ndarray, sd: np.ndarray, scale: float, cuts: tuple[float, float]) -> np.ndarray:
    """Share of N(valence, scale * sd) below, between and above the cuts: (N, 3)."""
    spread = np.maximum(sd * scale, 1e-3)
    low, high = norm.cdf(cuts[0], valence, spread), norm.sf(cuts[1], valence, spread)
    return np.stack([low, 1 - low - high, high], axis=1)


def probe(x: np.ndarray, targets: np.ndarray, test: list[np.ndarray], c: float = 0.003) -> np.ndarray:
    """Class-balanced logistic regression on soft ``targets`` (N, K) (rows of one-hots: hard);
    mean probabilities over the ``test`` views."""
    k = targets.shape[1]
    balance = len(targets) / (k * targets.sum(axis=0))
    rows, classes = np.tile(x, (k, 1)), np.repeat(np.arange(k), len(x))
    weight = targets.T.reshape(-1) * balance[classes]
    keep = weight > 0
    model = LogisticRegression(C=c, max_iter=3000).fit(rows[keep], classes[keep], sample_weight=weight[keep])
    return sum(model.predict_proba(t) for t in test) / len(test)


def probe_screens(images: ImageSet, cuts: tuple[float, float], weights: str, repeats: int) -> dict:
    frame = images.frame
    valence, sd = frame["Valence_mean"].to_numpy(float), frame["Valence_SD"].to_numpy(float)
    y = images.label_ids.to_numpy()
    views = {size: features(images, size, weights) for size in (160, 224, 288)}
    mid = {layer: features(images, 224, weights, layer) for layer in MID_LEVEL}
    scores: dict[str, list] = {}
    for rep in range(repeats):
        for train, test in StratifiedKFold(5, shuffle=True, random_state=rep).split(y, y):
            probs = {}
            for size, (plain, flipped) in views.items():
                scaler = StandardScaler().fit(plain[train])
                x = scaler.transform(np.concatenate([plain[train], flipped[train]]))
                seen = [scaler.transform(plain[test]), scaler.transform(flipped[test])]
                labels = np.concatenate([y[train], y[train]])
                probs[f"hard {size}px"] = probe(x, np.eye(3)[labels], seen)
                if size != 224:
                    continue
                for scale in (1.0, 0.5, 0.25, 0.1):
                    soft = soft_targets(valence[train], sd[train], scale, cuts)
                    probs[f"soft targets, SD x {scale}"] = probe(x, np.concatenate([soft, soft]), seen)
                above = [probe(x, np.eye(2)[(labels > k).astype(int)], seen)[:, 1] for k in (0, 1)]
                probs["ordinal"] = np.stack([1 - above[0], np.clip(above[0] - above[1], 0, 1), above[1]], 1)
                part = train_test_split(train, train_size=0.9, stratify=y[train], random_state=rep)[0]
                fewer = StandardScaler().fit(plain[part])
                probs["hard 224px, 90 % of the training photos"] = probe(
                    fewer.transform(np.concatenate([plain[part], flipped[part]])),
                    np.eye(3)[np.concatenate([y[part], y[part]])],
                    [fewer.transform(plain[test]), fewer.transform(flipped[test])])
                for layer, (mid_plain, mid_flipped) in mid.items():
                    both = [np.hstack(pair) for pair in ((plain, mid_plain), (flipped, mid_flipped))]
                    scaler = StandardScaler().fit(both[0][train])
                    probs[f"hard 224px, + {layer} pooled"] = probe(
                        scaler.transform(np.concatenate([both[0][train], both[1][train]])), np.eye(3)[labels],
                        [scaler.transform(both[0][test]), scaler.transform(both[1][test])])
            probs["hard 160px + 224px averaged"] = probs["hard 160px"] + probs["hard 224px"]
            for name, p in probs.items():
                pred = p.argmax(1)
                scores.setdefault(name, []).append((accuracy_score(y[test], pred),
                                                    f1_score(y[test], pred, average="macro")))
    return {name: {"accuracy": round(float(np.mean(s, 0)[0]), 4), "macro_f1": round(float(np.mean(s, 0)[1]), 4)}
            for name, s in scores.items()}


def member_screens(runs: list[Path]) -> dict:
    """Ensembles mixing the members of two cross-validation runs of the same folds, flip-averaged."""
    folds = sorted(p.name for p in runs[0].glob("fold*"))
    probs: dict = {}
    truth = {}
    for r, run in enumerate(runs):
        for fold in folds:
            test = pd.read_csv(run / fold / "split_test.csv")
            images = ImageSet(test)  # the default classes: the pipelines' output order
            ensemble = keras.models.load_model(run / fold / "model.keras", safe_mode=True)
            members = [l for l in ensemble.layers if l.name.startswith("member")]
            for m, member in enumerate(members):
                probs[r, m, fold] = predict_probabilities(member, images, flip_tta=True)
            truth[fold] = images.label_ids.to_numpy()
    count = len({m for _, m, _ in probs})
    mixes = {f"{len(a)} of {runs[0].name} + {len(b)} of {runs[1].name}": (a, b)
             for a, b in [(range(count), []), ([], range(count)), (range(count - 1), [count - 1]),
                          ([0], range(1, count)), (range(count), range(count))]}
    out = {}
    for name, (a, b) in mixes.items():
        accuracy = [accuracy_score(truth[f], sum([probs[0, m, f] for m in a] + [probs[1, m, f] for m in b]).argmax(1))
                    for f in folds]
        out[name] = round(float(np.mean(accuracy)), 4)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default=str(ROOT / "pipelines" / "oasis.yaml"))
    parser.add_argument("--repeats", type=int, default=6, help="stratified 5-fold splits per screen")
    parser.add_argument("--members", nargs=2, type=Path, metavar="RUN", help="two cv run folders to mix")
    args = parser.parse_args()
    config = load_config(args.pipeline)
    source = config.data.source
    if not Path(source.path).is_dir():
        raise SystemExit(f"the OASIS photos are not at {source.path}")
    cuts = tuple(source.options["cuts"])
    images = load_source(source.path, source.format, **source.options)
    figures = {"probes": probe_screens(images, cuts, config.model.weights, args.repeats)}
    if args.members:
        figures["ensembles"] = member_screens(args.members)
    record("oasis_screens", figures)

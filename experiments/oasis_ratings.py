"""Valence and arousal on OASIS's 1-7 scale beside the three classes (issue 39): which linear heads on
frozen EfficientNet-Lite features, and which recipe the shipped default follows.

1. A locked test side: 20 % of the 587 OASIS photos, stratified on the project's classes (negative < 3.5
   <= neutral <= 4.5 < positive), seed 2026, listed in ``experiments/oasis_locked_test.csv``. Nothing is
   chosen on it; the chosen recipe alone is scored on it, once. The other 80 % is the development side.
2. Frozen features, cached in ``runs/oasis_ratings``: the pooled output (``avg_pool``) of the package's
   transfer model on EfficientNet-Lite0 (224 px) and Lite2 (260 px) with the ImageNet ``.npz`` weights,
   through the package's own decoding, scaling and mirror view, for each photo and its mirror image
   (OASIS and the Twitter five-agree photos). Heads train on both views and average the two views' outputs
   (class probabilities, ratings); a temperature divides each view's logits before its softmax.
3. Heads on Lite0, Lite2 and both side by side, on 5-fold stratified cross-validation of the development
   side (outer folds seed 2026), standardised on each fit's training rows, the L2 weight chosen by 5-fold
   inner cross-validation inside each outer training side (a photo's two views always on the same side;
   the Twitter photos, when added, always training): ridge regression for valence and for arousal (alpha
   per rating, by held-out squared error); multinomial logistic regression for the classes (C by held-out
   log-loss, class-weighted for a balanced head), class-balanced or not, and balanced with the Twitter
   photos (positive and negative only) at weight 0.5 or 1; classes cut from the predicted valence at 3.5 /
   4.5; expected calibration error (15 bins) and Brier score before and after one temperature fitted on the
   held-out logits of all development folds (and, as a check, fitted on the other four folds' only).
   Every figure has a 95 % interval: 2000 bootstrap resamples of the photos, seed 2026, the same resamples
   for every head, so that two heads are compared on paired resamples.

Choice rule, written before any figure was seen (the locked side takes no part):

- Two figures tie when the 95 % interval of their paired bootstrap difference contains 0.
- Features: the set with the highest valence Spearman rho; among the sets tied with it, the best class
  macro-F1 (each set's best logistic head); among the sets tied on both, the smallest: Lite0, then Lite2,
  then both side by side.
- Class head, on those features: the logistic head with the best macro-F1; among the heads tied with it,
  the simplest: no Twitter photos, then weight 0.5, then 1; at equal simplicity, the better macro-F1. Classes
  cut from the valence have no probabilities, which the package's classifier gives: they are compared,
  never chosen.
- Valence and arousal: the ridge heads on the same features. The temperature: the one fitted on the chosen
  class head's held-out logits on the development folds.

The chosen recipe is then fitted on the whole development side (its L2 weights by inner cross-validation)
and scored once on the locked side; and fitted on all 587 photos (what would ship): its L2 weights, and
the temperature fitted on its held-out logits over 5 folds of all 587, with no score.

    PYTHONPATH=. python experiments/oasis_ratings.py     # recorded under oasis_ratings in benchmarks/results.json
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # results.record: benchmarks/results.json

from results import cap_threads, record  # noqa: E402

cap_threads()  # a shared 2-core machine
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402
from scipy.stats import rankdata  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold, train_test_split  # noqa: E402

from imagesentiment.data import SENTIMENTS, ImageSet  # noqa: E402
from imagesentiment.data.shards import image_batches  # noqa: E402
from imagesentiment.data.sources import oasis, twitter  # noqa: E402
from imagesentiment.evaluation.metrics import calibration_metrics, fit_temperature  # noqa: E402
from imagesentiment.evaluation.metrics import tempered as probabilities  # noqa: E402
from imagesentiment.models.backbones import BACKBONES  # noqa: E402
from imagesentiment.models.build import build_transfer  # noqa: E402
from imagesentiment.models.views import test_time_views  # noqa: E402

SEED = 2026
DATA = ROOT.parent / "shared" / "data"
WEIGHTS = ROOT.parent / "shared" / "weights"
CACHE = ROOT / "runs" / "oasis_ratings"
LOCKED = ROOT / "experiments" / "oasis_locked_test.csv"
CUTS = (3.5, 4.5)
LITES = {"lite0": "efficientnet_lite0", "lite2": "efficientnet_lite2"}
SETS = ("lite0", "lite2", "lite0+lite2")  # smallest first
RATINGS = ("valence", "arousal")
C_GRID = np.logspace(-4, 0, 9)  # ascending: each fit of a path starts from the last
ALPHA_GRID = np.logspace(0, 6, 13)
FOLDS, RESAMPLES, BINS = 5, 2000, 15


@dataclass(frozen=True)
class ClassHead:
    """A logistic class head: class-balanced or not; the Twitter photos' weight (0: not added)."""

    balance: bool
    twitter: float

    @property
    def name(self) -> str:
        extra = f", Twitter x{self.twitter:g}" if self.twitter else ""
        return f"logistic, {'balanced' if self.balance else 'unbalanced'}{extra}"


CLASS_HEADS = (ClassHead(True, 0.0), ClassHead(False, 0.0), ClassHead(True, 0.5), ClassHead(True, 1.0))


@dataclass(frozen=True)
class Affine:
    """A standardising linear head, ``((x - mean) / scale) @ weights + bias``, on features ``(N, 2, D)``."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights + self.bias


@dataclass(frozen=True)
class Extra:
    """Photos added to a class head's training side: features ``(N, 2, D)`` and class ids."""

    x: np.ndarray
    y: np.ndarray


# ---------------------------------------------------------------- features


def one_thread(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` decoding on one private thread (the machine is shared)."""
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def extract(images: ImageSet, lite: str) -> np.ndarray:
    """Pooled features ``(N, 2, D)`` of each photo and its mirror image, as the package's transfer model
    on ``lite`` at its native size computes them (its own decoding, scaling and mirror view)."""
    backbone = LITES[lite]
    size = BACKBONES[backbone].native_size
    model = build_transfer(3, backbone, size, WEIGHTS / f"efficientnet_{lite}_imagenet.npz")
    pooled = keras.Model(model.inputs, model.get_layer("avg_pool").output)

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
    def views(batch: tf.Tensor) -> tf.Tensor:
        return tf.stack([pooled(view, training=False) for view in test_time_views(batch, flip_tta=True)], axis=1)

    return np.concatenate([views(batch).numpy() for batch, _ in one_thread(image_batches(images, (size, size), 16))])


def cached_features(images: ImageSet, names: list[str], lite: str, set_name: str) -> np.ndarray:
    """:func:`extract`, computed once and kept in ``runs/oasis_ratings`` (again if the photos differ)."""
    path = CACHE / f"{set_name}_{lite}.npz"
    if path.is_file():
        stored = np.load(path)
        if list(stored["names"]) == names:
            return stored["features"]
    CACHE.mkdir(parents=True, exist_ok=True)
    features = extract(images, lite)
    np.savez(path, names=np.array(names), features=features)
    return features


def feature_sets(images: ImageSet, names: list[str], set_name: str) -> dict[str, np.ndarray]:
    """Lite0's, Lite2's and both side by side."""
    sets = {lite: cached_features(images, names, lite, set_name) for lite in LITES}
    sets["lite0+lite2"] = np.concatenate([sets["lite0"], sets["lite2"]], axis=-1)
    return sets


def load() -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, Extra]]:
    """The OASIS table (Theme, class, class id, valence, arousal), its feature sets, and the Twitter
    five-agree photos as extra training photos per feature set."""
    photos = oasis(DATA / "oasis", CUTS)
    frame = photos.frame
    table = pd.DataFrame({"Theme": frame["Theme"].str.strip(), "class": frame["label"],
                          "id": photos.label_ids.to_numpy(), "valence": frame["Valence_mean"].astype(float),
                          "arousal": frame["Arousal_mean"].astype(float)}).reset_index(drop=True)
    tweets = twitter(DATA / "twitter-you2015", "five")
    extra = feature_sets(tweets, [Path(p).name for p in tweets.frame["path"]], "twitter")
    ids = tweets.label_ids.to_numpy()
    return table, feature_sets(photos, table["Theme"].tolist(), "oasis"), {k: Extra(x, ids) for k, x in extra.items()}


def locked_split(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Development and locked-test photo indices; the locked list written to ``LOCKED``."""
    dev, test = train_test_split(np.arange(len(table)), test_size=0.2, stratify=table["id"], random_state=SEED)
    dev, test = np.sort(dev), np.sort(test)
    table.loc[test, ["Theme", "class"]].to_csv(LOCKED, index=False)
    return dev, test


# ---------------------------------------------------------------- heads


def rows(x: np.ndarray) -> np.ndarray:
    """Features ``(N, 2, D)`` as training rows ``(2N, D)``, a photo's two views side by side."""
    return x.reshape(-1, x.shape[-1])


def standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (1 where constant) of the training rows."""
    flat = rows(x)
    sd = flat.std(axis=0)
    return flat.mean(axis=0), np.where(sd > 0, sd, 1.0)


def class_weights(y: np.ndarray, source: np.ndarray, balance: bool) -> np.ndarray:
    """Each photo's weight: its source's, times with ``balance`` its class's balanced weight over those
    weights (as ``imagesentiment.training.fit.sample_weights``)."""
    if not balance:
        return source
    mass = np.bincount(y, weights=source, minlength=len(SENTIMENTS))
    present = mass > 0
    return source * (source.sum() / (present.sum() * np.where(present, mass, 1.0)))[y]


def training_side(x: np.ndarray, y: np.ndarray, head: ClassHead, extra: Extra) -> tuple[np.ndarray, ...]:
    """Features, class ids and weights a class head trains on: the OASIS photos, and the Twitter ones if added."""
    source = np.ones(len(y))
    if head.twitter:
        x, y = np.concatenate([x, extra.x]), np.concatenate([y, extra.y])
        source = np.concatenate([source, np.full(len(extra.y), head.twitter)])
    return x, y, class_weights(y, source, head.balance)


def logistic_path(x: np.ndarray, y: np.ndarray, w: np.ndarray, cs: np.ndarray) -> list[Affine]:
    """Multinomial logistic regressions (objective: ||W||^2 / 2 + C * sum of weighted log-losses), one per C."""
    mean, scale = standardiser(x)
    z = ((rows(x) - mean) / scale).astype(np.float32)
    model = LogisticRegression(warm_start=True, max_iter=5000)
    heads = []
    for c in cs:
        model.set_params(C=c).fit(z, np.repeat(y, 2), sample_weight=np.repeat(w, 2))
        heads.append(Affine(mean, scale, model.coef_.T.astype(float), model.intercept_.astype(float)))
    return heads


def ridge_path(x: np.ndarray, t: np.ndarray, alphas: np.ndarray) -> list[Affine]:
    """Ridge regressions of targets ``t`` (N, T) (objective: squared error + alpha ||w||^2), one per alpha."""
    mean, scale = standardiser(x)
    z = (rows(x) - mean) / scale  # centred: the intercept is the targets' mean
    targets = np.repeat(t, 2, axis=0)
    centre = targets.mean(axis=0)
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    projected = u.T @ (targets - centre)
    return [Affine(mean, scale, vt.T @ (projected * (s / (s ** 2 + a))[:, None]), centre) for a in alphas]


def inner_folds(y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(y, y))


def fit_classes(x: np.ndarray, y: np.ndarray, head: ClassHead, extra: Extra) -> tuple[Affine, float]:
    """``head`` fitted on the photos ``x``, ``y`` (and the extra ones), its C chosen by inner cross-validation
    (held-out log-loss of the view-averaged probabilities, class-weighted for a balanced head)."""
    loss = np.zeros(len(C_GRID))
    for train, val in inner_folds(y):
        weight = class_weights(y[val], np.ones(len(val)), head.balance)
        for k, fitted in enumerate(logistic_path(*training_side(x[train], y[train], head, extra), C_GRID)):
            loss[k] -= weight @ np.log(probabilities(fitted(x[val]))[np.arange(len(val)), y[val]])
    c = float(C_GRID[loss.argmin()])
    return logistic_path(*training_side(x, y, head, extra), np.array([c]))[0], c


def fit_ratings(x: np.ndarray, t: np.ndarray) -> tuple[Affine, list[float]]:
    """Ridge regression of each rating, its alpha chosen by inner cross-validation (held-out squared error of
    the view-averaged prediction)."""
    error = np.zeros((len(ALPHA_GRID), t.shape[1]))
    for train, val in inner_folds(classes_of(t[:, 0])):
        for k, fitted in enumerate(ridge_path(x[train], t[train], ALPHA_GRID)):
            error[k] += ((fitted(x[val]).mean(axis=1) - t[val]) ** 2).sum(axis=0)
    alphas = ALPHA_GRID[error.argmin(axis=0)]
    fits = ridge_path(x, t, alphas)
    weights = np.stack([fit.weights[:, j] for j, fit in enumerate(fits)], axis=1)
    return Affine(fits[0].mean, fits[0].scale, weights, fits[0].bias), [float(a) for a in alphas]


def classes_of(valence: np.ndarray) -> np.ndarray:
    """The project's classes (0 negative, 1 neutral, 2 positive) of valence values."""
    return np.where(valence < CUTS[0], 0, np.where(valence > CUTS[1], 2, 1))


def out_of_fold(fit: Callable[[np.ndarray], tuple[Affine, object]], x: np.ndarray,
                y: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """Each photo's outputs ``(N, 2, K)`` from the outer fold that held it out, its fold number, and each
    fold's chosen L2 weight(s); ``fit(training indices)`` gives a head."""
    outputs, folds, chosen = None, np.zeros(len(y), int), []
    for k, (train, test) in enumerate(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(y, y)):
        head, weight = fit(train)
        held_out = head(x[test])
        outputs = np.zeros((len(y), *held_out.shape[1:])) if outputs is None else outputs
        outputs[test], folds[test] = held_out, k
        chosen.append(weight)
    return outputs, folds, chosen


# ---------------------------------------------------------------- figures


def class_figures(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and each class's recall."""
    k = len(SENTIMENTS)
    confusion = np.bincount(y * k + predicted, minlength=k * k).reshape(k, k).astype(float)
    hits = np.diag(confusion)
    recall = hits / confusion.sum(axis=1)
    precision = np.divide(hits, confusion.sum(axis=0), out=np.zeros(k), where=confusion.sum(axis=0) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
    return {"accuracy": hits.sum() / len(y), "macro_f1": f1.mean(),
            **{f"recall_{name}": r for name, r in zip(SENTIMENTS, recall)}}


def rating_figures(t: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Pearson r, Spearman rho and mean absolute error."""
    return {"r": np.corrcoef(t, predicted)[0, 1], "rho": np.corrcoef(rankdata(t), rankdata(predicted))[0, 1],
            "mae": np.abs(t - predicted).mean()}


def calibration_figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Expected calibration error (top class, ``BINS`` equal bins of confidence) and Brier score, as
    ``imagesentiment evaluate`` reports them."""
    figures = calibration_metrics(y, p, BINS)
    return {"ece": figures["ece"], "brier": figures["brier"]}


@dataclass(frozen=True)
class Scored:
    """Figures on all photos and on each bootstrap resample of them (the same resamples for every head)."""

    point: dict[str, float]
    draws: dict[str, np.ndarray]

    def summary(self) -> dict[str, list[float]]:
        """Each figure as [value, 2.5 %, 97.5 %]."""
        return {k: [round(float(v), 4), *(round(float(q), 4) for q in np.percentile(self.draws[k], [2.5, 97.5]))]
                for k, v in self.point.items()}


def bootstrap(figures: Callable[[np.ndarray], dict[str, float]], n: int) -> Scored:
    """``figures(photo indices)`` on all ``n`` photos and on ``RESAMPLES`` resamples of them (seed ``SEED``)."""
    draws = [figures(i) for i in np.random.default_rng(SEED).integers(0, n, size=(RESAMPLES, n))]
    return Scored(figures(np.arange(n)), {k: np.array([d[k] for d in draws]) for k in draws[0]})


def difference(a: Scored, b: Scored, key: str) -> list[float]:
    """``a``'s figure ``key`` minus ``b``'s: [value, 2.5 %, 97.5 %] over the paired bootstrap resamples."""
    return [a.point[key] - b.point[key], *np.percentile(a.draws[key] - b.draws[key], [2.5, 97.5])]


def tied(a: Scored, b: Scored, key: str) -> bool:
    """Whether the 95 % interval of the paired bootstrap difference of ``key`` contains 0."""
    _, low, high = difference(a, b, key)
    return bool(low <= 0 <= high)


def rounded(figure: list[float]) -> list[float]:
    return [round(float(v), 4) for v in figure]


def calibration(logits: np.ndarray, y: np.ndarray, folds: np.ndarray) -> dict:
    """ECE and Brier as they are, with one temperature fitted on all the held-out logits, and with each
    fold's temperature fitted on the other folds' (a check on the first)."""
    temperature = fit_temperature(logits, y)
    crossed = np.zeros((len(y), logits.shape[-1]))
    for k in np.unique(folds):
        crossed[folds == k] = probabilities(logits[folds == k], fit_temperature(logits[folds != k], y[folds != k]))
    variants = {"as_is": probabilities(logits), "with_temperature": probabilities(logits, temperature),
                "with_temperature_of_other_folds": crossed}
    scored = {name: bootstrap(lambda i, p=p: calibration_figures(y[i], p[i]), len(y)).summary()
              for name, p in variants.items()}
    return {"temperature": temperature, **scored}


# ---------------------------------------------------------------- development folds


def develop_ratings(x: np.ndarray, t: np.ndarray) -> tuple[dict, dict[str, Scored]]:
    """Ridge heads of valence and arousal on the development folds; the classes cut from the valence."""
    predicted, _, alphas = out_of_fold(lambda train: fit_ratings(x[train], t[train]), x, classes_of(t[:, 0]))
    predicted = predicted.mean(axis=1)
    scored = {name: bootstrap(lambda i, j=j: rating_figures(t[i, j], predicted[i, j]), len(t))
              for j, name in enumerate(RATINGS)}
    truth, cut = classes_of(t[:, 0]), classes_of(predicted[:, 0])
    scored["classes from valence"] = bootstrap(lambda i: class_figures(truth[i], cut[i]), len(t))
    return {"alphas_per_fold": alphas}, scored


def develop_classes(x: np.ndarray, y: np.ndarray, head: ClassHead, extra: Extra) -> tuple[dict, Scored, np.ndarray]:
    """One logistic head on the development folds: its classes, calibration and held-out logits."""
    logits, folds, cs = out_of_fold(lambda train: fit_classes(x[train], y[train], head, extra), x, y)
    predicted = probabilities(logits).argmax(axis=1)
    return ({"c_per_fold": cs, "calibration": calibration(logits, y, folds)},
            bootstrap(lambda i: class_figures(y[i], predicted[i]), len(y)), logits)


def develop(x: np.ndarray, y: np.ndarray, t: np.ndarray, extra: Extra) -> tuple[dict, dict[str, Scored], dict]:
    """Every head on one feature set: figures, scores (for the rule), and each class head's held-out logits."""
    started = time.process_time()
    notes, scored = develop_ratings(x, t)
    figures, logits = {"ratings": notes}, {}
    for head in CLASS_HEADS:
        figures[head.name], scored[head.name], logits[head.name] = develop_classes(x, y, head, extra)
    for name, score in scored.items():
        figures.setdefault(name, {}).update(score.summary())
    figures["cpu_seconds"] = round(time.process_time() - started)
    return figures, scored, logits


# ---------------------------------------------------------------- choice, locked side, full data


def best_head(scored: dict[str, Scored]) -> tuple[ClassHead, dict[str, list[float]]]:
    """The best-macro-F1 logistic head, or the simplest one tied with it (rule of the docstring), and each
    head's macro-F1 minus the best one's."""
    top = max(CLASS_HEADS, key=lambda h: scored[h.name].point["macro_f1"])
    ties = [h for h in CLASS_HEADS if tied(scored[h.name], scored[top.name], "macro_f1")]
    gaps = {h.name: rounded(difference(scored[h.name], scored[top.name], "macro_f1")) for h in CLASS_HEADS}
    return min(ties, key=lambda h: (h.twitter, -scored[h.name].point["macro_f1"])), gaps


def choose(scored: dict[str, dict[str, Scored]]) -> tuple[str, ClassHead, dict]:
    """The feature set and class head the docstring's rule picks, and why."""
    def f1(s: str) -> Scored:
        return scored[s][max(CLASS_HEADS, key=lambda h: scored[s][h.name].point["macro_f1"]).name]

    top_rho = max(SETS, key=lambda s: scored[s]["valence"].point["rho"])
    on_rho = [s for s in SETS if tied(scored[s]["valence"], scored[top_rho]["valence"], "rho")]
    top_f1 = max(on_rho, key=lambda s: f1(s).point["macro_f1"])
    on_both = [s for s in on_rho if tied(f1(s), f1(top_f1), "macro_f1")]
    features = on_both[0]  # SETS is smallest first
    head, head_gaps = best_head(scored[features])
    return features, head, {
        "best_valence_rho": top_rho, "tied_on_valence_rho": on_rho,
        "valence_rho_minus_best": {s: rounded(difference(scored[s]["valence"], scored[top_rho]["valence"], "rho"))
                                   for s in SETS},
        "best_macro_f1_among_them": top_f1, "tied_on_both": on_both,
        "macro_f1_minus_best": {s: rounded(difference(f1(s), f1(top_f1), "macro_f1")) for s in on_rho},
        "features": features, "class_head": head.name, "class_heads_macro_f1_minus_best": head_gaps}


def locked_figures(x: np.ndarray, y: np.ndarray, t: np.ndarray, dev: np.ndarray, test: np.ndarray,
                   head: ClassHead, extra: Extra, temperature: float) -> dict:
    """The recipe fitted on the development side and scored on the locked side."""
    classes, c = fit_classes(x[dev], y[dev], head, extra)
    ratings, alphas = fit_ratings(x[dev], t[dev])
    logits, predicted = classes(x[test]), ratings(x[test]).mean(axis=1)
    truth, n, called = y[test], len(test), probabilities(logits).argmax(axis=1)
    figures = {"photos": n, "c": c, "alphas": dict(zip(RATINGS, alphas)), "temperature": temperature,
               "classes": bootstrap(lambda i: class_figures(truth[i], called[i]), n).summary()}
    for j, name in enumerate(RATINGS):
        figures[name] = bootstrap(lambda i, j=j: rating_figures(t[test][i, j], predicted[i, j]), n).summary()
    for name, temp in (("calibration_as_is", 1.0), ("calibration_with_temperature", temperature)):
        p = probabilities(logits, temp)
        figures[name] = bootstrap(lambda i, p=p: calibration_figures(truth[i], p[i]), n).summary()
    return figures


def shipped_weights(x: np.ndarray, y: np.ndarray, t: np.ndarray, head: ClassHead, extra: Extra) -> dict:
    """The recipe fitted on all the photos: its L2 weights (also as Keras ``L2`` factors for a loss averaged
    over the training rows, features standardised) and the temperature of its held-out logits over 5 folds."""
    _, c = fit_classes(x, y, head, extra)
    _, alphas = fit_ratings(x, t)
    logits, _, _ = out_of_fold(lambda train: fit_classes(x[train], y[train], head, extra), x, y)
    class_rows = 2 * (len(y) + (len(extra.y) if head.twitter else 0))
    return {"photos": len(y), "class_head": {"c": c, "training_rows": class_rows, "keras_l2": 1 / (2 * c * class_rows)},
            **{name: {"alpha": a, "training_rows": 2 * len(y), "keras_l2": a / (2 * len(y))}
               for name, a in zip(RATINGS, alphas)},
            "temperature": fit_temperature(logits, y)}


def main() -> None:
    started, wall = time.process_time(), time.time()
    table, features, extras = load()
    dev, test = locked_split(table)
    y, t = table["id"].to_numpy(), table[list(RATINGS)].to_numpy()
    figures: dict = {"seed": SEED, "photos": {"development": len(dev), "locked": len(test),
                                              "locked_per_class": {k: int(v) for k, v in
                                                                   table.loc[test, "class"].value_counts().items()}},
                     "intervals": f"[value, 2.5 %, 97.5 %] over {RESAMPLES} bootstrap resamples of the photos",
                     "development_folds": {}}
    scored, logits = {}, {}
    for name in SETS:
        x = features[name][dev]
        figures["development_folds"][name], scored[name], logits[name] = develop(x, y[dev], t[dev], extras[name])
    name, head, why = choose(scored)
    temperature = figures["development_folds"][name][head.name]["calibration"]["temperature"]
    figures["choice"] = why
    figures["locked_test"] = locked_figures(features[name], y, t, dev, test, head, extras[name], temperature)
    figures["all_photos"] = shipped_weights(features[name], y, t, head, extras[name])
    figures["cpu_seconds"], figures["wall_seconds"] = round(time.process_time() - started), round(time.time() - wall)
    record("oasis_ratings", figures)


if __name__ == "__main__":
    main()

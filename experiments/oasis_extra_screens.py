"""Does more Twitter data help OASIS? A cheap screen for issue 3, before a full cross-validation.

The linear probes of ``oasis_screens.py`` (hard classes, MobileNetV2 features at 224 px, each
photo and its mirror, flip-averaged, 6 repetitions of a stratified 5-fold split of the OASIS
photos) with the extra training source of ``--pipeline`` (the Twitter set) added to each fold's
training side at each of its agreement levels (five, four, three: 882, 1,116, 1,269 photos,
positive and negative only), each at full and at half weight; classes balanced in total.

    python experiments/oasis_extra_screens.py [--pipeline pipelines/oasis.yaml] [--repeats 6]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # results.record: benchmarks/results.json

import numpy as np  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from imagesentiment.training.config import Config, load_config  # noqa: E402
from imagesentiment.data import load_source  # noqa: E402
from oasis_screens import ROOT, features, probe  # noqa: E402
from results import record  # noqa: E402

AGREEMENTS = ("five", "four", "three")


def extra_screens(config: Config, repeats: int) -> dict:
    source, extra = config.data.source, config.data.extra_training[0]
    images = load_source(source.path, source.format, **source.options)
    sets = {a: load_source(extra.path, extra.format, **{**extra.options, "agreement": a}) for a in AGREEMENTS}
    widest = sets[AGREEMENTS[-1]]
    levels = {a: widest.frame["path"].isin(sets[a].frame["path"]).to_numpy() for a in AGREEMENTS}
    y, extra_y = images.label_ids.to_numpy(), widest.label_ids.to_numpy()
    plain, flipped = features(images, 224, config.model.weights)
    extra_plain, extra_flipped = features(widest, 224, config.model.weights)
    screens = {"OASIS only": (np.zeros(len(widest), bool), 0.0)}
    screens.update({f"+ {a}-agree at weight {w}": (levels[a], w) for a in AGREEMENTS for w in (1.0, 0.5)})
    scores: dict[str, list] = {}
    for rep in range(repeats):
        for train, test in StratifiedKFold(5, shuffle=True, random_state=rep).split(y, y):
            scaler = StandardScaler().fit(plain[train])
            seen = [scaler.transform(plain[test]), scaler.transform(flipped[test])]
            for name, (keep, weight) in screens.items():
                x = scaler.transform(np.concatenate([plain[train], flipped[train], extra_plain[keep], extra_flipped[keep]]))
                labels = np.concatenate([y[train], y[train], extra_y[keep], extra_y[keep]])
                rows = np.concatenate([np.ones(2 * len(train)), np.full(2 * keep.sum(), weight)])
                pred = probe(x, np.eye(3)[labels] * rows[:, None], seen).argmax(1)
                scores.setdefault(name, []).append((accuracy_score(y[test], pred),
                                                    f1_score(y[test], pred, average="macro")))
    return {name: {"accuracy": round(float(np.mean(s, 0)[0]), 4), "macro_f1": round(float(np.mean(s, 0)[1]), 4),
                   "extra_photos": int(screens[name][0].sum())} for name, s in scores.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default=str(ROOT / "pipelines" / "oasis.yaml"))
    parser.add_argument("--repeats", type=int, default=6, help="stratified 5-fold splits per screen")
    args = parser.parse_args()
    config = load_config(args.pipeline)
    if not Path(config.data.source.path).is_dir():
        raise SystemExit(f"the OASIS photos are not at {config.data.source.path}")
    record("oasis_extra_screens", {"probes": extra_screens(config, args.repeats)})

"""What a configuration names, prepared for training: each source loaded and checked, the split drawn
(or read from its shards), the extra training sets added without leaking into validation or test."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..data.checks import check_set
from ..data.imageset import DataError, ImageSet, miscased
from ..data.shards import read_split
from ..data.sources import load_source
from ..data.splits import Split, train_val_test_split

if TYPE_CHECKING:  # the configuration is read here, never built: data/ stays below config
    from .config import Config, SourceConfig


@dataclass
class Sources:
    """The configured data, checked: the main set, the fixed test set, the extra training sets."""

    images: ImageSet
    test: ImageSet | None
    extras: list[ImageSet]


def load_sources(config: Config, skipped_file: Path) -> Sources:
    """Load and check every configured source; the files left out go to ``skipped_file`` (a CSV)."""
    skipped = []

    def load(source: SourceConfig, name: str) -> ImageSet:
        images = _with_classes(load_source(source.path, source.format, **source.options), config, source.path)
        checked = check_set(images, config.data.max_pixels)
        print(f"[{name}] {checked.report()}")
        skipped.append(checked.skipped[["path", "reason"]].assign(source=name))
        return checked.images

    data = config.data
    extras = [load(s, f"extra{i}") for i, s in enumerate(data.extra_training)]
    extras = [ImageSet(e.frame.assign(weight=s.weight), e.classes, e.notes)  # a column the main set lacks
              for e, s in zip(extras, data.extra_training)]
    sources = Sources(load(data.source, "source"), load(data.test, "test") if data.test else None, extras)
    skipped_file.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(skipped, ignore_index=True).to_csv(skipped_file, index=False)
    return sources


def _with_classes(images: ImageSet, config: Config, path: str) -> ImageSet:
    """``images`` labelled in the order ``data.classes`` names them, or an error saying how to name them."""
    try:
        return images.with_classes(config.data.classes, path)
    except DataError as exc:
        cased = miscased(images.classes, config.data.classes)
        raise DataError(f"{exc} (data.classes); " + (
            f"{', '.join(cased)}: name the folder or label as data.classes names the class, in the same case"
            if cased else
            f"name every class there, in the output order wanted, e.g. --set data.classes=[{','.join(images.classes)}]")
        ) from None


def read_shards(config: Config) -> Split:
    """The split written as shards at ``data.shards``, checked against ``data.classes``."""
    split = read_split(config.data.shards)
    if list(split.train.classes) != list(config.data.classes):
        raise DataError(f"{config.data.shards}: its classes {list(split.train.classes)} differ from "
                        f"data.classes {list(config.data.classes)}")
    print(f"shards at {config.data.shards}: " + ", ".join(
        f"{len(getattr(split, name))} {name}" for name in ("train", "validation", "test")))
    return split


def _without(images: ImageSet, *others: ImageSet) -> ImageSet:
    """``images`` less any image whose content also appears in ``others`` (no leak through extras)."""
    seen = set().union(*(set(o.frame["sha1"]) for o in others))
    keep = ~images.frame["sha1"].isin(seen)
    return ImageSet(images.frame[keep.to_numpy()], images.classes, images.notes)


def _concat(*parts: ImageSet) -> ImageSet:
    return ImageSet(pd.concat([p.frame for p in parts], ignore_index=True), parts[0].classes)


def prepare_split(config: Config, skipped_file: Path) -> Split:
    """Load and check the configured data (:func:`load_sources`), then split it (:func:`split_sources`)."""
    return split_sources(config, load_sources(config, skipped_file))


def fractions(config: Config) -> tuple[float, float]:
    """The shares of the photos the split puts on the validation and the test side: none for a refit
    (``train.refit``), where every photo trains."""
    return (0.0, 0.0) if config.train.refit else (config.split.validation, config.split.test)


def split_sources(config: Config, sources: Sources, member: int = 0) -> Split:
    """Split the checked data (or use the fixed test set), then add the extra training data.

    ``member`` > 0 keeps the test side and draws another validation side (seed + member).
    """
    if sources.test is not None:
        return inner_split(config, _without(sources.images, sources.test), sources.test, sources.extras, member)
    split = train_val_test_split(sources.images, *fractions(config), config.seed, config.seed + member)
    return with_extras(split, sources.extras)


def inner_split(config: Config, rest: ImageSet, test: ImageSet, extras: list[ImageSet], member: int = 0) -> Split:
    """A validation side carved from ``rest`` (seed + member), the rest for training with the extras,
    and ``test`` as the test side (a fixed test set, or a cross-validation fold's held-out part)."""
    inner = train_val_test_split(rest, fractions(config)[0], 0.0, config.seed, config.seed + member)
    return with_extras(Split(inner.train, inner.validation, test), extras)


def with_extras(split: Split, extras: list[ImageSet]) -> Split:
    """``split`` with the extra training sets added to its training side, less any image that is
    also on its validation or test side (no leak through extras)."""
    return Split(_concat(split.train, *(_without(e, split.validation, split.test) for e in extras)),
                 split.validation, split.test)

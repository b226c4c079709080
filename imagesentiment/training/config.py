"""Run configurations: plain data read from YAML, checked key by key before any work starts.

A configuration file is data only: no code is evaluated and nothing is imported
by name. Unknown keys and wrong types are refused with the key named.
"""
from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data.constants import MAX_PIXELS, SENTIMENTS, Augmentation
from ..models.backbones import BACKBONES, backbone_layers, backbone_names, fusable, layer_choices
from .yaml_lines import key_lines, located, repeated_key

STRATEGIES = ("default", "mirrored", "multi_worker")  # train.strategy (imagesentiment.distribute)
MODEL_KINDS = ("cnn", "sepnet", "transfer")  # model.kind
SCHEDULES = ("plateau", "cosine")  # train.schedule
HEADS = ("keras", "linear")  # train.head


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key. ``problems``: each wrong key with what is
    wrong with it (all of them, where a configuration has several)."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [(key_of(message), message)]

    @classmethod
    def listing(cls, problems: list[tuple[str, str]]) -> ConfigError:
        """One error for all of ``problems``: the one problem's text, or a line for each."""
        texts = [text for _, text in problems]
        return cls(texts[0] if len(texts) == 1 else f"{len(texts)} problems:\n  " + "\n  ".join(texts), problems)


KEY = re.compile(r"(?:unknown key |missing key )?([A-Za-z_][\w.\[\]]*)")


def key_of(message: str) -> str:
    """The key a problem's text begins with (``train.epochs: ...``, ``unknown key train.epcohs; ...``)."""
    found = KEY.match(message)
    return found.group(1) if found else ""


@dataclass
class SourceConfig:
    """One data source: a format of :data:`imagesentiment.data.SOURCES`, a path, its options."""

    path: str
    format: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # extra_training only: each of its images' weight in the training loss, relative to the
    # main source's 1 (below 1: it helps, but the data to be judged on leads)
    weight: float = 1.0


@dataclass
class DataConfig:
    source: SourceConfig
    test: SourceConfig | None = None          # a fixed test set (e.g. FER-2013 test/); else split off
    extra_training: list[SourceConfig] = field(default_factory=list)  # added to training sides only
    classes: list[str] = field(default_factory=lambda: list(SENTIMENTS))
    max_pixels: int = MAX_PIXELS
    # a prefix written by `imagesentiment shard` (PREFIX/train*, PREFIX/validation*, PREFIX/test*,
    # local or any URL TensorFlow reads, gs://...): train from those TFRecord shards instead of
    # loading, checking and splitting the sources
    shards: str | None = None


@dataclass
class SplitConfig:
    validation: float = 0.15                  # 0: every photo trains; the callbacks watch the training loss
    test: float = 0.15
    folds: int = 5


@dataclass
class ModelConfig:
    kind: str = "cnn"                         # one of MODEL_KINDS
    input_size: int = 96
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    convs_per_block: int = 2                  # cnn: convolutions per block; sepnet: separable ones per block
    dropout: float = 0.5
    # a name of imagesentiment.model.BACKBONES, or a list of EfficientNet-Lite ones to fuse in one graph
    backbone: str | list[str] = "mobilenet_v2"
    weights: str | list[str] | None = None    # a local weights file (a list: one per backbone), "imagenet" or none
    backbone_end: str | None = None           # the backbone layer the head pools (its layers above left out)


@dataclass
class FineTuneConfig:
    epochs: int = 0                           # 0: no second phase
    layers: int = 30
    learning_rate: float = 1e-5


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 8
    class_weights: bool = True                # every class weighs the same in the loss (over extras' weights)
    augment: bool = True
    augmentation: Augmentation = field(default_factory=Augmentation)  # how strongly, when augment is on
    label_smoothing: float = 0.0              # the one-hot targets mixed with this share of a uniform one
    # plateau: the rate cut to 0.3 of itself when the watched loss stalls; cosine: a one-epoch linear
    # warm-up, then a half cosine down to 0 at the phase's last epoch, step by step
    schedule: str = "plateau"
    cache: bool = True
    # keras: the head trains with model.fit (phase 1, the epochs above); linear: logistic regression on the frozen
    # model's pooled features, fitted to convergence, its L2 weight by cross-validation (training.linear_head)
    head: str = "keras"
    fine_tune: FineTuneConfig = field(default_factory=FineTuneConfig)
    # transfer models only. 0: every step runs the whole model on freshly augmented images.
    # N > 0 (the cheaper fine-tune): the backbone below the lowest layer any phase trains is
    # run once on N views of each image (view 0 as is, the others augmented) and both phases
    # train the layers above on the stored activations, a random view per image and epoch.
    cached_views: int = 0
    # models trained per split, with seeds seed, seed + 1, ...; the run's model averages their
    # probabilities (1: one model, as before)
    ensemble: int = 1
    # with ensemble > 1: each member draws its own validation side from the training photos
    # (seed + member; the test side stays), so the ensemble as a whole trains on all of them
    ensemble_resplit: bool = False
    # with cached_views: a folder that also keeps the activations on disk, for later runs on the
    # same images (e.g. the other Twitter agreement levels); none: kept for this process only
    activation_cache: str | None = None
    # default (one process), mirrored (the GPUs of this machine) or multi_worker (machines listed
    # in TF_CONFIG); batch_size is per replica (imagesentiment.distribute)
    strategy: str = "default"
    # after training, one temperature fitted on the validation side divides the logits, so that the probabilities
    # mean what they say (training.calibration; skipped under 30 validation images)
    calibrate: bool = True
    # a temperature given, folded in as train.calibrate folds a fitted one (none: fitted when calibrate is on)
    temperature: float | None = None
    # every photo trains: no validation side and no test side split off (a data.test set still judges), and each
    # phase runs exactly its epochs, the last epoch's weights kept. `imagesentiment train --refit RUN` sets the
    # epochs and the temperature that RUN's validation sides chose (training.refit)
    refit: bool = False
    # when the training photos carry valence and arousal (oasis; at least 10 rated): a ratings head fitted on them
    # after training (training.ratings), so that the run's model gives both
    ratings: bool = True
    # > 0: a ratings output trained with the classes in both phases (training.joint): the loss adds this weight
    # times the mean squared error of the standardised valence and arousal of the rated photos; 0: the head above
    ratings_loss: float = 0.0


@dataclass
class EvaluateConfig:
    flip_tta: bool = False                    # average the prediction with the mirrored image's
    crop_tta: bool = False                    # and with the centre and corner crops' (6x the work)


@dataclass
class Config:
    name: str
    data: DataConfig
    seed: int = 0
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)


NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _convert(value: Any, kind: Any, key: str) -> Any:
    """``value`` checked against the annotation ``kind``; nested dataclasses are built."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        listed = [a for a in kinds if typing.get_origin(a) is list]  # a list where one is allowed, else the plain kind
        pick = listed if isinstance(value, (list, tuple)) and listed else [a for a in kinds if a not in listed] or kinds
        return _convert(value, pick[0], key)
    if dataclasses.is_dataclass(kind):
        return from_dict(kind, value, key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return list(_each({i: (v, args[0], f"{key}[{i}]") for i, v in enumerate(value)}, []).values())
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, os.PathLike):
        return os.fspath(value)
    if kind is float and isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 3e-3 (no decimal point) as a string
    if kind is Any or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    raise ConfigError(f"{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys and wrong types by name."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'configuration'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    problems = [(prefix + k, f"unknown key {prefix}{k}; valid keys here: {sorted(names)}")
                for k in sorted(set(data) - names)]
    problems += [(prefix + f.name, f"missing key {prefix}{f.name}") for f in dataclasses.fields(cls)
                 if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                 and f.name not in data]
    values = _each({k: (v, hints[k], prefix + k) for k, v in data.items() if k in names}, problems)
    return cls(**values)


def _each(items: dict, problems: list[tuple[str, str]]) -> dict:
    """Each ``(value, kind, key)`` of ``items`` converted (:func:`_convert`); one ConfigError listing every
    problem, ``problems`` (found already) first."""
    converted = {}
    for name, (value, kind, key) in items.items():
        try:
            converted[name] = _convert(value, kind, key)
        except ConfigError as exc:
            problems = [*problems, *exc.problems]
    if problems:
        raise ConfigError.listing(problems)
    return converted


def _ranges(config: Config) -> list[tuple[str, Any, bool, str]]:
    """Each checked key's value, whether it is usable, and what it must be."""
    s, m, t, fine = config.split, config.model, config.train, config.train.fine_tune
    backbones = backbone_names(m.backbone)
    poolings = len(m.widths) - (2 if m.kind == "sepnet" else 1)  # a sepnet's first width is its stem's
    smallest = 32 if m.kind == "transfer" else 2 ** max(poolings, 0)  # a pixel left after the poolings
    a = t.augmentation
    single = m.kind == "transfer" and len(backbones) == 1 and backbones[0] in BACKBONES
    layers = backbone_layers(backbones[0]) if single and m.backbone_end else ()
    return [
        ("seed", config.seed, config.seed >= 0, "a whole number >= 0"),
        ("data.max_pixels", config.data.max_pixels, config.data.max_pixels >= 1, "a pixel count >= 1"),
        ("split.validation", s.validation, 0 <= s.validation < 1, "a fraction in [0, 1)"),
        ("split.test", s.test, 0 <= s.test < 1, "a fraction in [0, 1)"),
        ("split.validation + split.test", s.validation + s.test, s.validation + s.test < 1,
         "a sum below 1 (some images must train)"),
        ("split.folds", s.folds, s.folds >= 2, "at least 2 folds"),
        ("model.widths", m.widths, len(m.widths) >= (2 if m.kind == "sepnet" else 1) and min(m.widths) >= 1,
         "a list of widths >= 1: one at least, two for a sepnet (its stem's, then a block's each)"),
        ("model.convs_per_block", m.convs_per_block, m.convs_per_block >= 1, "at least 1 convolution"),
        ("model.input_size", m.input_size, m.input_size >= smallest, f"at least {smallest} pixels for this model"),
        ("model.dropout", m.dropout, 0 <= m.dropout < 1, "a rate in [0, 1)"),
        ("model.backbone", m.backbone, m.kind != "transfer" or (set(backbones) <= set(BACKBONES) and (
            len(backbones) == 1 or fusable(backbones))),
         f"one of {sorted(BACKBONES)}, or a list of distinct ones to fuse among "
         f"{sorted(b for b, spec in BACKBONES.items() if spec.fusable)}"),
        ("model.weights", m.weights, not isinstance(m.weights, list) or len(m.weights) == len(backbones),
         f"one weights file per backbone ({len(backbones)})"),
        ("model.backbone_end", m.backbone_end, m.backbone_end is None or m.backbone_end in layers,
         "null, or a layer of the one backbone of a transfer model"
         + (f" ({layer_choices(layers)})" if layers else "")),
        ("train.epochs", t.epochs, t.epochs >= 1, "at least 1 epoch"),
        ("train.batch_size", t.batch_size, t.batch_size >= 1, "at least 1 image"),
        ("train.learning_rate", t.learning_rate, t.learning_rate > 0, "a rate above 0"),
        ("train.patience", t.patience, t.patience >= 0, "a number of epochs >= 0"),
        ("train.label_smoothing", t.label_smoothing, 0 <= t.label_smoothing < 1, "a share in [0, 1)"),
        ("train.schedule", t.schedule, t.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
        ("train.head", t.head, t.head in HEADS and (t.head == "keras" or m.kind == "transfer"),
         f"one of {', '.join(HEADS)}; linear for a transfer model only (a cnn or sepnet learns its features in phase 1)"),
        ("train.augmentation.zoom", a.zoom, 0 <= a.zoom < 1, "a share of the side in [0, 1)"),
        ("train.augmentation.jitter", a.jitter, 0 <= a.jitter < 1, "an amount in [0, 1)"),
        ("train.augmentation.rotation", a.rotation, 0 <= a.rotation <= 180, "degrees in [0, 180]"),
        ("train.augmentation.erasing", a.erasing, 0 <= a.erasing <= 1, "a chance in [0, 1]"),
        ("train.fine_tune.epochs", fine.epochs, fine.epochs >= 0, "a number of epochs >= 0 (0: no second phase)"),
        ("train.fine_tune.layers", fine.layers, fine.layers >= 0, "a number of layers >= 0"),
        ("train.fine_tune.learning_rate", fine.learning_rate, fine.learning_rate > 0, "a rate above 0"),
        ("train.ensemble", t.ensemble, t.ensemble >= 1, "at least 1 model"),
        ("train.temperature", t.temperature, t.temperature is None or t.temperature > 0,
         "null (fitted on the validation side) or a temperature above 0"),
        ("train.ratings_loss", t.ratings_loss, t.ratings_loss >= 0, "a weight >= 0"),
    ]


def check_config(config: Config) -> Config:
    """``config`` with each value of its annotated type (a Config built in Python is checked as a YAML file
    is: nested mappings become sections, whole numbers floats where floats are wanted) if every value is
    usable, else a ConfigError naming each key that is not."""
    config = from_dict(Config, dataclasses.asdict(config))
    t, data = config.train, config.data
    checks = [("model.kind", config.model.kind in MODEL_KINDS,
               f"expected one of {', '.join(map(repr, MODEL_KINDS))}, got {config.model.kind!r}"),
              ("data.classes", len(set(data.classes)) >= 2,
               f"need at least two distinct classes, got {data.classes}"),
              *((key, usable, f"expected {want}, got {value!r}") for key, value, usable, want in _ranges(config)),
              ("train.cached_views", t.cached_views >= 0 and not (t.cached_views and config.model.kind != "transfer"),
               f"a count >= 0, above 0 only for a transfer model; got {t.cached_views} with model.kind "
               f"{config.model.kind!r}"),
              *((f"{key}.weight", source is None or source.weight == 1.0, "only data.extra_training sources take "
                 "a weight") for key, source in (("data.source", data.source), ("data.test", data.test))),
              *((f"data.extra_training[{i}].weight", source.weight > 0, f"a positive number, got {source.weight}")
                for i, source in enumerate(data.extra_training)),
              ("train.ratings_loss", not (t.ratings_loss and (t.ensemble > 1 or data.shards)),
               "0 with train.ensemble above 1 or data.shards (an ensemble, a shard, carries no ratings)"),
              ("train.strategy", t.strategy in STRATEGIES,
               f"expected one of {', '.join(map(repr, STRATEGIES))}, got {t.strategy!r}")]
    problems = [(key, f"{key}: {want}") for key, usable, want in checks if not usable]
    if problems:
        raise ConfigError.listing(problems)
    return config


def check_key(dotted: str) -> None:
    """Refuse an override ``a.b.c`` whose path names no key of :class:`Config`, naming where it goes wrong and
    the keys there (before it is merged: a typo given with --set is not blamed on the file)."""
    kind: Any = Config
    for depth, part in enumerate(dotted.split(".")):
        kind = next((arg for arg in typing.get_args(kind) if dataclasses.is_dataclass(arg)), kind)  # X | None
        if not dataclasses.is_dataclass(kind):
            return  # a mapping or a list below: its keys are free, or checked with its values
        hints = typing.get_type_hints(kind)
        if part not in hints:
            where = ".".join(dotted.split(".")[:depth + 1])
            raise ConfigError(f"unknown key {where}; valid keys here: {sorted(hints)} (given as an override: --set)")
        kind = hints[part]


def set_key(raw: dict, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested mapping (a command-line override)."""
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {part} is not a mapping")
    node[last] = value


def load_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> Config:
    """Read a YAML configuration; data paths in it are relative to the file's folder."""
    path = Path(path)
    try:
        loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))
        try:  # one parse: the node tree shows keys given twice, and the safe constructor turns it into data
            node = loader.get_single_node()
            raw, repeated = (loader.construct_document(node), repeated_key(node)) if node else (None, None)
        finally:
            loader.dispose()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if repeated is not None:
        raise ConfigError(f"{path}, line {repeated.start_mark.line + 1}: key {repeated.value!r} is given twice in "
                          "one section; the first would be ignored")
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw.setdefault("name", path.stem)
    overrides = overrides or {}
    for key in overrides:
        check_key(key)
    try:
        for key, value in overrides.items():
            set_key(raw, key, value)
        return _resolve_paths(check_config(from_dict(Config, raw)), path.resolve().parent)
    except ConfigError as exc:  # say where each value was given: the file and its line, or the command line
        raise ConfigError(located(exc.problems, path, key_lines(node), overrides), exc.problems) from None


def _resolve_paths(config: Config, base: Path) -> Config:
    """``config`` with its data, weights and shard paths made absolute against the file's folder ``base``."""
    data = config.data
    for source in [data.source, data.test, *data.extra_training]:
        if source is not None:
            source.path = str((base / source.path).resolve())
    weights = config.model.weights
    files = [str((base / w).resolve()) for w in (weights if isinstance(weights, list) else [weights])
             if w not in (None, "imagenet")]
    if files:
        config.model.weights = files if isinstance(weights, list) else files[0]
    missing = [f for f in files if config.model.kind == "transfer" and not os.path.isfile(f)]
    if missing:
        raise ConfigError(f"model.weights: no such file {missing[0]}; give the backbone's "
                          f"weights file, imagenet (downloads them) or null (random)")
    if data.shards and "://" not in data.shards:
        data.shards = str((base / data.shards).resolve())
    return config


def to_dict(config: Config) -> dict[str, Any]:
    """The configuration as plain data (for ``config.yaml`` in a run directory)."""
    return dataclasses.asdict(config)

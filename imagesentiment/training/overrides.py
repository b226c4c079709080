"""The configuration as the command line gives it: a pipeline file with its ``--set`` overrides and options
(``--epochs`` and the like), a path typed on the command line read from the working folder, and each data path
checked to name something, with the one rule for relative paths said where one names nothing."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import Config, ConfigError, load_config


def _absolute(value: object) -> object:
    """A path given on the command line made absolute against the working folder (each of a list)."""
    if isinstance(value, list):
        return [_absolute(v) for v in value]
    return os.path.abspath(value) if isinstance(value, str) and value != "imagenet" and "://" not in value else value


def load_overridden(path: str | os.PathLike, given: dict[str, Any], settings: dict[str, Any] | None = None) -> Config:
    """The configuration at ``path`` with the overrides ``given`` on the command line (``--set KEY=VALUE``: a path
    among them is read from the working folder) and ``settings`` (``--epochs`` and the like; None: not given),
    each data path checked to name something (:func:`check_data_paths`)."""
    overrides = {key: _absolute(value) if key.endswith((".path", ".weights", ".shards")) else value
                 for key, value in given.items()}
    overrides.update({key: value for key, value in (settings or {}).items() if value is not None})
    config = load_config(path, overrides)
    check_data_paths(config, given, Path(path))
    return config


def check_data_paths(config: Config, given: dict[str, Any], yaml_file: Path) -> None:
    """A data path that names nothing, refused with the one rule: a relative path is read from the folder of
    where it was written (the configuration file's folder; the working folder for --set), and the path it
    would name the other way when something is there (a line copied from the file to --set)."""
    data = config.data
    named = [("data.source", data.source), ("data.test", data.test),
             *((f"data.extra_training[{i}]", s) for i, s in enumerate(data.extra_training))]
    for key, source in named:
        if source is None or "://" in source.path or os.path.exists(source.path):
            continue
        typed = given.get(f"{key}.path")
        if isinstance(typed, str):
            where = f"given with --set: read from the working folder {os.getcwd()}"
            other = yaml_file.resolve().parent / typed
        else:
            where, other = f"written in {yaml_file}: read from its folder {yaml_file.resolve().parent}", None
        hint = f"; {other.resolve()} exists: give that path" if other is not None and other.exists() else ""
        raise ConfigError(f"{key}.path: no such file or folder {source.path} (a relative path is read from the "
                          f"folder of where it is written; {where}){hint}")

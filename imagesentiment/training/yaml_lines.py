"""Where each key of a pipeline file is written: its composed YAML document's key given twice, the line of each
key, and a configuration's problems said at their lines, or at ``--set`` for an override (no TensorFlow)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def repeated_key(node: yaml.Node | None) -> yaml.Node | None:
    """The first key given twice in one mapping of a composed YAML document (loading keeps the last)."""
    if isinstance(node, yaml.MappingNode):
        keys = [key.value for key, _ in node.value]
        repeated = next((key for index, (key, _) in enumerate(node.value) if key.value in keys[:index]), None)
        return repeated or next(filter(None, (repeated_key(value) for _, value in node.value)), None)
    if isinstance(node, yaml.SequenceNode):
        return next(filter(None, map(repeated_key, node.value)), None)
    return None


def key_lines(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """The line of each key of a composed YAML document, by its dotted path (``data.extra_training[0].path``)."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[prefix + str(key.value)] = key.start_mark.line + 1
            lines.update(key_lines(value, f"{prefix}{key.value}."))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[f"{prefix[:-1]}[{i}]"] = item.start_mark.line + 1
            lines.update(key_lines(item, f"{prefix[:-1]}[{i}]."))
    return lines


def located(problems: list[tuple[str, str]], path: Path, lines: dict[str, int], overrides: dict[str, Any]) -> str:
    """``problems`` (each a key and what is wrong with it) said where each value was given: ``--set``, or the
    file and the line of its key (of the section above it, for a key that is missing)."""
    placed = []
    for key, text in problems:
        if any(key == o or key.startswith(f"{o}.") or o.startswith(f"{key}.") for o in overrides):
            placed.append(("", f"{text} (given as an override: --set)"))
            continue
        parts = key.split(".")
        line = next((lines[k] for k in (".".join(parts[:n]) for n in range(len(parts), 0, -1)) if k in lines), None)
        placed.append((str(path), f"line {line}: {text}" if line else text))
    if len(placed) == 1:
        file, text = placed[0]
        return f"{file}, {text}" if text.startswith("line ") else f"{file}: {text}" if file else text
    header = f"{path}: " if any(file for file, _ in placed) else ""
    return f"{header}{len(placed)} problems:\n  " + "\n  ".join(text for _, text in placed)

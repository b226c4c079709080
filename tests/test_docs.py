"""The documentation stays true to the code: links resolve, every command-line option shown exists,
and every key of the pipeline YAML has its entry in docs/configuration.md. Fast: no model is built."""
from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import typing
from pathlib import Path

import pytest
import yaml

from imagesentiment.cli import build_parser
from imagesentiment.training.config import Config

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
SHELL_ENDS = {"&&", "||", "|", ";", ">", ">>", "2>&1", "<", "<<"}


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code (where brackets are not links)."""
    return INLINE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, counts = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", FENCE.sub("", path.read_text(encoding="utf-8")), re.M):
        base = slug(heading)
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with the anchor #{anchor} in {page_id(resolved)}")
    assert not broken, f"{page_id(page)}: " + "; ".join(broken)


def verb_parsers() -> dict[str, argparse.ArgumentParser]:
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


def commands(text: str, verbs: set[str]) -> list[tuple[str, list[str]]]:
    """Each ``imagesentiment VERB ...`` in the page's code blocks and inline code, and each inline span
    that starts with a bare verb (`predict --resume`): the verb and the tokens after it."""
    found = []
    calls = re.compile(r"(?:^|[\s;&|(])imagesentiment\s+(\S+)(.*)$", re.M)
    shell = [body.replace("\\\n", " ") for lang, body in FENCE.findall(text) if lang not in ("python", "yaml")]
    spans = INLINE.findall(FENCE.sub("", text))
    for chunk in [*shell, *spans]:
        for verb, rest in calls.findall(chunk):
            found.append((verb, rest))
    for span in spans:
        first, _, rest = span.partition(" ")
        if first in verbs and rest:
            found.append((first, rest))
    out = []
    for verb, rest in found:
        try:
            tokens = shlex.split(rest, comments=True)
        except ValueError:  # an unclosed quote in an example: plain words will do
            tokens = rest.split()
        words = []
        for token in tokens:
            if token in SHELL_ENDS or token.startswith((">", "<")):
                break
            words.append(token.strip("[]"))
        out.append((verb, words))
    return out


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_command_line_options_exist(page):
    parsers = verb_parsers()
    wrong = []
    for verb, words in commands(page.read_text(encoding="utf-8"), set(parsers)):
        if verb.startswith("-"):  # imagesentiment --help
            if verb not in build_parser()._option_string_actions:
                wrong.append(f"imagesentiment {verb}")
            continue
        if verb not in parsers:
            wrong.append(f"imagesentiment {verb}: no such command")
            continue
        known = {o for action in parsers[verb]._actions for o in action.option_strings}
        for word in words:
            if not re.match(r"--?[A-Za-z]", word):
                continue
            option, has_value, _ = word.partition("=")
            if verb == "score-beam" and has_value and option not in known:
                continue  # --name=value options after the others go to Beam
            if option not in known:
                wrong.append(f"imagesentiment {verb} {option}")
    assert not wrong, f"{page_id(page)} shows options the parser lacks: {sorted(set(wrong))}"


def config_keys(cls: type = Config, prefix: str = "", seen: set | None = None) -> dict[str, dataclasses.Field]:
    """Every field of the configuration dataclasses under its dotted YAML name (``train.fine_tune.layers``).
    A dataclass met again (a data source) is listed once, under its first name (``data.source.path``)."""
    seen = {cls} if seen is None else seen
    hints = typing.get_type_hints(cls)
    keys = {}
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        keys[name] = f
        stack, nested = [hints[f.name]], []
        while stack:
            kind = stack.pop()
            if dataclasses.is_dataclass(kind):
                nested.append(kind)
            stack.extend(typing.get_args(kind))
        for kind in nested:
            if kind not in seen:
                seen.add(kind)
                keys.update(config_keys(kind, name + ".", seen))
    return keys


def documented_rows() -> dict[str, list[str]]:
    """docs/configuration.md's table rows by key: the cells after the key."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\|\s*`([\w.]+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def test_configuration_reference_is_complete():
    keys, rows = config_keys(), documented_rows()
    missing = sorted(set(keys) - set(rows))
    assert not missing, f"docs/configuration.md has no entry for {missing}: add a row (key, type, default, meaning, example)"
    unknown = sorted(set(rows) - set(keys))
    assert not unknown, f"docs/configuration.md documents keys the configuration lacks: {unknown}"


def test_configuration_reference_defaults_match_the_code():
    rows, wrong = documented_rows(), []
    for key, f in config_keys().items():
        if key not in rows:
            continue  # test_configuration_reference_is_complete says so
        cell = rows[key][1]  # type, default, meaning, example
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if cell == "required":
            if not required:
                wrong.append(f"{key}: documented as required, has a default")
            continue
        literal = re.fullmatch(r"`([^`]*)`", cell)
        if required or not literal:
            continue  # described in words (a section's defaults, the file's name)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        written = yaml.safe_load(literal.group(1))
        if isinstance(written, str) and isinstance(default, float):
            written = float(written)  # YAML 1.1 reads 1e-05 as a string; the configuration does not
        if written != default:
            wrong.append(f"{key}: documented default {written!r}, the code's {default!r}")
    assert not wrong, "; ".join(wrong)


def test_the_checks_see_what_they_check():
    """The parsers above find what they should: a known command, a nested key, a link."""
    parsers = verb_parsers()
    assert ("predict", ["photos/", "--resume"]) in commands("`imagesentiment predict photos/ --resume`", set(parsers))
    assert ("export", ["--quantize", "int8"]) in commands("`export --quantize int8`", set(parsers))
    assert "train.fine_tune.layers" in config_keys() and "data.source.weight" in config_keys()
    assert slug("Cached views: the cheaper fine-tune") == "cached-views-the-cheaper-fine-tune"
    assert slug("export_speed.py") == "export_speedpy"

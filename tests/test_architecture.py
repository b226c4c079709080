"""The package layout stays as docs/architecture.md says: every module listed in its step, no import (lazy ones
included) of a later step, no import cycle, and no TensorFlow for checking a configuration."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "imagesentiment"
ROW = re.compile(r"^\| (\d+) \| (\w+) \| ((?:`[\w/]+`(?:, )?)+) \|", re.M)


def documented_steps() -> dict[str, int]:
    """Each module the architecture page lists (``data.sources``), with its step's order."""
    steps = {}
    for order, _, modules in ROW.findall((ROOT / "docs" / "architecture.md").read_text()):
        for module in re.findall(r"`([\w/]+)`", modules):
            steps[module.replace("/", ".")] = int(order)
    return steps


def package_modules() -> dict[str, Path]:
    """Every module of the package but the ``__init__`` and ``__main__`` files, by dotted name."""
    return {".".join(path.relative_to(PACKAGE).with_suffix("").parts): path for path in PACKAGE.rglob("*.py")
            if path.name not in ("__init__.py", "__main__.py")}


def imported_modules(name: str, path: Path) -> set[str]:
    """The package's modules that module ``name`` imports anywhere in it (a function's lazy import too)."""
    package = name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            target = ".".join([*base, *([node.module] if node.module else [])])
            found |= {f"{target}.{alias.name}".strip(".") for alias in node.names} | {target}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("imagesentiment."):
            found.add(node.module.removeprefix("imagesentiment."))
    return found & set(package_modules())


def test_every_module_is_listed_in_its_step_and_every_listed_one_exists():
    steps, modules = documented_steps(), package_modules()
    assert sorted(set(modules) - set(steps)) == [], "modules missing from docs/architecture.md"
    assert sorted(set(steps) - set(modules)) == [], "docs/architecture.md lists modules that do not exist"


def test_no_module_imports_a_later_step():
    steps = documented_steps()  # an unlisted module counts as the last step (the test above names it)
    last = max(steps.values()) + 1
    upstream = [f"{name} ({steps.get(name, last)}) imports {target} ({steps.get(target, last)})"
                for name, path in package_modules().items() for target in imported_modules(name, path)
                if steps.get(target, last) > steps.get(name, last)]
    assert upstream == []


def test_no_import_cycles():
    graph = {name: imported_modules(name, path) - {name} for name, path in package_modules().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                return path + [name, target]
            if target not in state and (cycle := visit(target, path + [name])):
                return cycle
        state[name] = 2
        return None

    cycles = [cycle for name in sorted(graph) if name not in state and (cycle := visit(name, []))]
    assert cycles == []


def test_the_package_root_holds_the_steps_and_the_shared_modules_only():
    root = sorted(path.name for path in PACKAGE.iterdir() if path.suffix == ".py" or
                  (path.is_dir() and (path / "__init__.py").is_file()))
    shared = [module for module, order in documented_steps().items() if order == 0]
    folders = sorted({module.split(".")[0] for module in documented_steps() if "." in module})
    assert root == sorted(["__init__.py", *(f"{m}.py" for m in shared), *folders])


def test_tensorflow_is_imported_through_the_runtime_module_alone():
    """Only ``runtime`` imports the ``tensorflow`` and ``keras`` packages themselves (a type hint's import aside);
    a private submodule (``compat``) is imported once TensorFlow has started through it."""
    direct = [f"{name}: {line.strip()}" for name, path in package_modules().items() if name != "runtime"
              for before, line in zip([""] + path.read_text().splitlines(), path.read_text().splitlines())
              if re.match(r"\s*(import (tensorflow|keras)\b|from (tensorflow|keras) import)", line)
              and "TYPE_CHECKING" not in before]
    assert direct == []


@pytest.mark.parametrize("config", sorted((ROOT / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_checking_a_shipped_configuration_starts_no_tensorflow(config):
    code = ("import sys; from imagesentiment.training import load_config; "
            f"load_config({str(config)!r}); "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

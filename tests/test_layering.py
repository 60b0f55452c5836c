"""The import graph runs one way, as the README's Architecture section says.

Every ``import`` of every module under ``graph/``, ``storage/`` and ``exports/`` (at any depth,
inside functions too) is checked against the layers below: a module may import its own layer
and the layers it is allowed to build on, nothing else of the project.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_GRAPH_BASE: frozenset[str] = frozenset({"graph", "graph.errors", "graph.settings"})
_SERVICES = _GRAPH_BASE | {"graph.services", "storage", "exports"}
_API = _SERVICES | {"graph.access"}
_SERVER = _API | {"graph.api"}
_BENCH = _SERVER | {"graph.server", "storage.demo"}

#: Each layer (the longest matching module prefix decides) and what else it may import.
ALLOWED: dict[str, frozenset[str]] = {
    "storage": frozenset(),
    "storage.demo": frozenset({"storage"}),
    "exports": frozenset({"storage"}),
    "graph": frozenset(),  # the package's own __init__: the version
    "graph.errors": frozenset(),
    "graph.settings": frozenset({"graph", "storage"}),
    "graph.access": frozenset({"graph.errors"}),
    "graph.services": _SERVICES,
    "graph.api": _API,
    "graph.server": _SERVER,
    "graph.bench": _BENCH,
    "graph.cli": _BENCH | {"graph.bench"},
}
PROJECT = ("graph", "storage", "exports")


def layer_of(module: str) -> str:
    """The layer a dotted module name belongs to (the longest prefix in :data:`ALLOWED`)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in ALLOWED:
            return prefix
    raise AssertionError(f"{module} is in no layer: add it to ALLOWED")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, imported module) of every project import in the file, relative ones resolved."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                # `from graph import errors` imports graph.errors when that is a module.
                candidate = f"{base}.{alias.name}"
                as_module = root.joinpath(*candidate.split("."))
                is_module = as_module.with_suffix(".py").is_file() or as_module.is_dir()
                yield node.lineno, candidate if is_module else base


def violations(paths: list[Path], root: Path = ROOT) -> list[str]:
    found = []
    for path in paths:
        own = layer_of(module_name(path, root))
        for line, target in imports(path, root):
            if target.split(".")[0] not in PROJECT:
                continue
            other = layer_of(target)
            if other != own and other not in ALLOWED[own]:
                found.append(f"{path.relative_to(root)}:{line}: {own} imports {target}")
    return found


def project_modules() -> list[Path]:
    return sorted(
        path
        for package in PROJECT
        for path in (ROOT / package).rglob("*.py")
        if "static" not in path.parts
    )


def test_every_import_follows_the_layers() -> None:
    assert violations(project_modules()) == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("storage/probe.py", "from graph.settings import Settings\n"),
        ("graph/services/probe.py", "from graph.api import schema\n"),
        ("graph/api/probe.py", "from ..server import app\n"),
        ("exports/probe.py", "import graph.errors\n"),
        ("graph/server/probe.py", "def late():\n    from graph.bench import runner\n"),
    ],
)
def test_an_import_up_the_layers_is_found(module: str, source: str, tmp_path: Path) -> None:
    path = tmp_path.joinpath(*module.split("/"))
    path.parent.mkdir(parents=True)
    path.write_text(source, encoding="utf-8")
    assert len(violations([path], tmp_path)) == 1, violations([path], tmp_path)

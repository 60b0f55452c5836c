"""The wheel that ``pip install .`` builds holds every file the packages need.

Editable installs (what the other tests run on) read the checkout, so a file the wheel leaves
out is invisible to them: GraphiQL's assets once were (folders with a dot in their names are
not packages), and the page answered 500 for every user who installed as the README says. The
wheel is built here from a copy of the tracked files, exactly as a clone would build it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

#: Builds the wheel.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("graph/", "storage/", "exports/")
#: A new asset folder whose name is no Python identifier: the declaration must ship it too.
NEW_ASSET = "graph/static/graphiql/assets/some-plugin-2.0.1/font.woff2"


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout (the tracked files are what a clone builds)")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
    ).stdout
    return [name for name in out.decode().split("\0") if name]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], list[str]]:
    """The names in a wheel built from a copy of the tracked files (plus :data:`NEW_ASSET`)."""
    tracked = tracked_files()
    base = tmp_path_factory.mktemp("wheel")
    source, dist = base / "src", base / "dist"
    for name in tracked:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    (source / NEW_ASSET).parent.mkdir(parents=True)
    (source / NEW_ASSET).write_bytes(b"wOF2")
    (source / "graph" / "__pycache__").mkdir(exist_ok=True)
    (source / "graph" / "__pycache__" / "stray.cpython-311.pyc").write_bytes(b"\0")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    result = subprocess.run(
        [*command, "--quiet", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [built] = dist.glob("execgraph-*.whl")
    with zipfile.ZipFile(built) as archive:
        return set(archive.namelist()), tracked


def test_every_tracked_package_file_is_in_the_wheel(wheel: tuple[set[str], list[str]]) -> None:
    names, tracked = wheel
    needed = [name for name in tracked if name.startswith(PACKAGES)]
    assert any("graphiql-3.8.3/" in name for name in needed)  # the folders that once went missing
    assert [name for name in needed if name not in names] == []


def test_a_new_asset_folder_of_any_name_ships_without_configuration(
    wheel: tuple[set[str], list[str]],
) -> None:
    assert NEW_ASSET in wheel[0]


def test_the_wheel_holds_only_the_packages_and_their_metadata(
    wheel: tuple[set[str], list[str]],
) -> None:
    names, _ = wheel
    stray = [
        name
        for name in names
        if not name.startswith(PACKAGES)
        and not (name.startswith("execgraph-") and ".dist-info/" in name)
    ]
    assert stray == []
    assert not [name for name in names if name.startswith(("tests/", ".venv/"))]
    assert not [name for name in names if name.endswith(".pyc") or "__pycache__" in name]

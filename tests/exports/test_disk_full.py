"""An export that fills the disk: a clear DiskFullError, status FAILED, nothing left on disk.

The disk is a real 1 MiB tmpfs, almost filled, where the machine lets the test mount one
(root on Linux); elsewhere the exporter's write raises ``OSError(ENOSPC)`` as a full disk does.
Both front doors are checked: the mutation (the job's ``error``) and ``execgraph export``.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from exports import service
from exports.base import ExportOptions
from exports.errors import DiskFullError, ExportFailedError
from exports.service import export_to_path, run_export
from graph.cli.main import main
from tests.conftest import data
from tests.exports.support import make_meta, mixed

FULL_MESSAGE = "the export folder's disk is full ("

EXPORT = """mutation { exportExecutions(input: {format: JSON, filter: {}}) {
  id status error file { url } } }"""
JOB = "query($id: ID!) { exportJob(id: $id) { id status error file { url } } }"


def _mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _fill(folder: Path, leave: int) -> None:
    """Fill ``folder``'s file system until about ``leave`` bytes are free."""
    free = shutil.disk_usage(folder).free
    if free > leave:
        (folder / f"filler-{uuid.uuid4().hex}").write_bytes(b"\0" * (free - leave))


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder whose disk is (nearly) full: a small tmpfs, or a patched exporter write."""
    folder = tmp_path / "small-disk"
    if _mount_tmpfs(folder):
        try:
            _fill(folder, 96 * 1024)  # room for the job store, not the export
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    folder.mkdir()
    real = service._Export.write

    def full(self: Any, records: Any, raw: Any, options: Any, progress: Any) -> Any:
        raw.write(b"[{" * 100)  # a partial file, which must not be left behind
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(service._Export, "write", full)
    yield folder
    monkeypatch.setattr(service._Export, "write", real)


def _files(folder: Path) -> list[str]:
    """What is in ``folder`` besides the filler and the server's job store."""
    kept = ("filler-", ".jobs.sqlite3")
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(kept))


def test_a_full_disk_is_a_disk_full_error_naming_the_free_bytes_and_the_setting(
    full_disk: Path,
) -> None:
    records = list(mixed(200))
    with pytest.raises(DiskFullError) as raised:
        run_export(
            records,
            format="JSON",
            meta=make_meta(len(records)),
            export_dir=full_disk,
            options=ExportOptions(),
        )
    message = str(raised.value)
    assert FULL_MESSAGE in message
    assert "bytes free" in message
    assert "set EXECGRAPH_EXPORT_DIR" in message
    assert "OSError" not in message
    assert raised.value.free_bytes is not None
    assert isinstance(raised.value.__cause__, OSError)
    assert _files(full_disk) == []


def test_the_mutation_shows_failed_with_the_disk_full_message_and_keeps_nothing(
    populated_store: tuple[Path, list[dict[str, Any]]],
    make_client: Callable[..., TestClient],
    full_disk: Path,
    tmp_path: Path,
) -> None:
    store = populated_store[0]
    client = make_client(store, export_dir=full_disk, audit_log=tmp_path / "audit.jsonl")
    job = data(client, EXPORT)["exportExecutions"]
    for _ in range(400):
        if job["status"] in ("DONE", "FAILED"):
            break
        job = data(client, JOB, {"id": job["id"]})["exportJob"]
    assert job["status"] == "FAILED", job
    assert FULL_MESSAGE in job["error"], job
    assert "set EXECGRAPH_EXPORT_DIR" in job["error"], job
    assert job["file"] is None
    assert _files(full_disk) == []


def test_the_cli_export_says_the_disk_is_full_and_leaves_no_partial_file(
    populated_store: tuple[Path, list[dict[str, Any]]], index_path: Path, full_disk: Path
) -> None:
    output = full_disk / "runs.json"
    args = ["export", "--store", str(populated_store[0]), "--index", str(index_path)]
    result = CliRunner().invoke(main, [*args, "--format", "json", "-o", str(output)])
    assert result.exit_code == 1, result.output
    assert FULL_MESSAGE in result.output
    assert "choose another --output" in result.output
    assert "Traceback" not in result.output
    assert _files(full_disk) == []


def test_other_os_errors_keep_the_generic_message(tmp_path: Path) -> None:
    def broken() -> Iterator[Any]:
        yield from mixed(2)
        raise OSError(errno.EIO, "I/O error")

    with pytest.raises(ExportFailedError) as raised:
        export_to_path(
            broken(),
            format="JSON",
            meta=make_meta(3),
            output=tmp_path / "x.json",
            options=ExportOptions(),
        )
    assert not isinstance(raised.value, DiskFullError)
    assert "(OSError)" in str(raised.value)
    assert list(tmp_path.iterdir()) == []

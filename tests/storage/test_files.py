"""Atomic and durable file writes: one helper module, and no second copy of it anywhere."""

from __future__ import annotations

import ast
import os
import threading
from pathlib import Path

import pytest

import storage.files
from storage.files import (
    TEMPORARY_NAME,
    append_durably,
    atomic_writer,
    create_atomic,
    temporary_name,
    write_atomic,
)
from storage.reader import is_record_name

ROOT = Path(__file__).resolve().parents[2]


def test_write_atomic_replaces_the_file_with_the_exact_mode(tmp_path: Path) -> None:
    target = tmp_path / "exec_a.json"
    target.write_bytes(b"old")
    old_umask = os.umask(0o077)  # the mode is set exactly, whatever the umask
    try:
        write_atomic(target, b"new contents", mode=0o644)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new contents"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert os.listdir(tmp_path) == ["exec_a.json"]


def test_the_default_mode_is_private(tmp_path: Path) -> None:
    write_atomic(tmp_path / "key", b"secret")
    assert oct((tmp_path / "key").stat().st_mode & 0o777) == oct(0o600)


def test_the_bytes_go_to_a_hidden_name_no_reader_takes_for_a_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "exec_b.json"
    seen: list[tuple[str, bytes, int]] = []
    real_replace = os.replace

    def spy(src: Path, dst: Path) -> None:
        seen.append((Path(src).name, Path(src).read_bytes(), Path(src).stat().st_mode & 0o777))
        assert Path(dst) == target
        assert not target.exists()
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_atomic(target, b"{}", mode=0o640)
    [(name, data, mode)] = seen
    assert TEMPORARY_NAME.fullmatch(name)
    assert name.startswith(".exec_b.json.tmp-")
    assert not is_record_name(name)
    assert (data, mode) == (b"{}", 0o640)


def test_the_folder_is_synced_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    synced: list[tuple[Path, bool]] = []
    monkeypatch.setattr(
        storage.files, "sync_directory", lambda d: synced.append((d, target.exists()))
    )
    write_atomic(target, b"x")
    assert synced == [(tmp_path, True)]


def test_a_failure_while_writing_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")

    def broken_export() -> None:
        with atomic_writer(target) as out:
            out.write(b"half of it")
            raise RuntimeError("exporter broke")

    with pytest.raises(RuntimeError, match="exporter broke"):
        broken_export()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_a_failed_rename_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(src: Path, dst: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(tmp_path / "f", b"x")
    assert os.listdir(tmp_path) == []


def test_temporary_names_never_repeat(tmp_path: Path) -> None:
    names = {temporary_name(tmp_path / "f").name for _ in range(50)}
    assert len(names) == 50


def test_create_atomic_never_replaces_and_racers_agree(tmp_path: Path) -> None:
    target = tmp_path / "pseudonym.key"
    assert create_atomic(target, b"first") is True
    assert create_atomic(target, b"second") is False
    assert target.read_bytes() == b"first"
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)

    raced = tmp_path / "raced.key"
    barrier = threading.Barrier(8, timeout=10)
    results: list[tuple[bool, bytes]] = []

    def create(n: int) -> None:
        barrier.wait()
        created = create_atomic(raced, f"key {n}".encode())
        results.append((created, raced.read_bytes()))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 8
    assert sum(created for created, _ in results) == 1
    assert {data for _, data in results} == {raced.read_bytes()}
    assert sorted(os.listdir(tmp_path)) == ["pseudonym.key", "raced.key"]


def test_append_durably_appends_and_creates_privately(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    append_durably(log, b"one\n")
    append_durably(log, b"two\n")
    assert log.read_bytes() == b"one\ntwo\n"
    assert oct(log.stat().st_mode & 0o777) == oct(0o600)


#: Calls that write a file atomically or durably by hand; storage.files is their one home.
_HAND_WRITTEN = {("os", "replace"), ("os", "rename"), ("os", "link"), ("os", "fsync")}
_HAND_WRITTEN |= {("tempfile", name) for name in ("mkstemp", "NamedTemporaryFile")}
#: The tracker imitation fsyncs each piece of its deliberately non-atomic write.
_ALLOWED = {("storage/demo/writer.py", "os.fsync")}


def test_no_package_writes_files_atomically_by_hand() -> None:
    found = []
    for package in ("graph", "storage", "exports"):
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where == "storage/files.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and (node.value.id, node.attr) in _HAND_WRITTEN
                    and (where, f"{node.value.id}.{node.attr}") not in _ALLOWED
                ):
                    found.append(f"{where}:{node.lineno} {node.value.id}.{node.attr}")
                if isinstance(node, ast.ImportFrom) and node.module in ("os", "tempfile"):
                    found += [
                        f"{where}:{node.lineno} from {node.module} import {alias.name}"
                        for alias in node.names
                        if (node.module, alias.name) in _HAND_WRITTEN
                    ]
    assert found == [], "use storage.files instead:\n" + "\n".join(found)

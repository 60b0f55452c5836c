"""The index heals at open: a damaged file is discarded and built anew from the store."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from storage.index import RecordIndex
from tests.factory import record_dict, write_record

COUNT = 300


def runs(index: RecordIndex) -> list[tuple[str, str]]:
    rows = index.reader().execute("SELECT name, execution_id FROM files ORDER BY name")
    return [(str(name), str(eid)) for name, eid in rows]


def built(store: Path, index_path: Path) -> list[tuple[str, str]]:
    for n in range(COUNT):
        write_record(store, record_dict(f"exec_20251103_143025_{n:08x}"))
    with RecordIndex(store, index_path) as index:
        index.sync()
        return runs(index)


def damage_middle_page(index_path: Path) -> int:
    """Write garbage over a b-tree page in the middle of the file; its number."""
    conn = sqlite3.connect(index_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    conn.close()
    assert pages > 20
    page = pages // 2
    with open(index_path, "r+b") as f:
        f.seek(page_size * page)
        f.write(bytes([0x0D]) + os.urandom(page_size - 1))  # a "leaf" page full of garbage
    conn = sqlite3.connect(index_path)
    try:
        assert conn.execute("PRAGMA quick_check").fetchall() != [("ok",)]  # really damaged
    finally:
        conn.close()
    return page


def test_garbage_in_a_middle_page_is_rebuilt_at_open(
    store: Path, index_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = built(store, index_path)
    assert len(before) == COUNT
    damage_middle_page(index_path)
    caplog.set_level(logging.WARNING, logger="storage.index")
    with RecordIndex(store, index_path) as index:
        report = index.sync()
        assert runs(index) == before
        assert report.added == COUNT  # built anew from the store
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "rebuilding" in warnings[0]
    # The rebuilt file is sound, and a later open keeps it (no rebuild, no warning).
    caplog.clear()
    with RecordIndex(store, index_path) as index:
        assert index.sync().added == 0
        assert runs(index) == before
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_file_that_is_not_a_database_is_rebuilt(store: Path, index_path: Path) -> None:
    before = built(store, index_path)
    index_path.write_bytes(os.urandom(8192))
    with RecordIndex(store, index_path) as index:
        index.sync()
        assert runs(index) == before


def test_file_status_follows_the_path(store: Path, index_path: Path) -> None:
    built(store, index_path)
    index = RecordIndex(store, index_path)
    assert index.file_status() == "closed"
    with index:
        assert index.file_status() == "ok"
        other = index_path.with_name("other.sqlite3")
        os.rename(index_path, other)
        assert index.file_status() == "missing"  # unlinked
        index_path.write_bytes(b"")
        assert index.file_status() == "missing"  # another file at the path
        os.replace(other, index_path)
        assert index.file_status() == "ok"

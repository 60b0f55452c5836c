"""The index: incremental sync, invalid and duplicate files, rebuilds, and a read-only store."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from storage.index import RecordIndex, StoreNotFoundError
from storage.query import RunOrder, StatsSource, count_runs, run_ids
from tests.factory import dump, record_dict, write_record


@pytest.fixture
def index(store: Path, index_path: Path) -> RecordIndex:
    idx = RecordIndex(store, index_path).open()
    yield idx  # type: ignore[misc]
    idx.close()


def ids(index: RecordIndex) -> list[str]:
    return run_ids(index.reader(), None, RunOrder.TIMESTAMP_ASC)


def invalid(index: RecordIndex) -> dict[str, str]:
    return dict(StatsSource(index.reader).invalid())


def test_sync_adds_updates_and_removes(store: Path, index: RecordIndex) -> None:
    a = write_record(store, record_dict("exec_a"))
    write_record(store, record_dict("exec_b"))
    report = index.sync()
    assert (report.added, sorted(report.added_ids)) == (2, ["exec_a", "exec_b"])
    assert ids(index) == ["exec_a", "exec_b"]

    assert not index.sync().changed  # nothing changed: nothing read
    data = record_dict("exec_a", config_name="bauhaus", shape="text")
    a.write_bytes(dump(data) + b"\n")
    report = index.sync()
    assert report.changed_ids == ["exec_a"]
    assert dict(StatsSource(index.reader).runs_by("config_name"))["bauhaus"] == 1

    a.unlink()
    report = index.sync()
    assert report.removed_ids == ["exec_a"]
    assert ids(index) == ["exec_b"]


def test_a_file_being_written_is_served_only_once_whole(store: Path, index: RecordIndex) -> None:
    body = dump(record_dict("exec_w"))
    path = store / "exec_w.json"
    for part in (b"", body[:10], body[: len(body) // 2]):
        path.write_bytes(part)
        index.sync_names(["exec_w.json"])
        assert ids(index) == []
        assert "exec_w.json" in invalid(index)
    path.write_bytes(body)
    report = index.sync_names(["exec_w.json"])
    assert report.added_ids == ["exec_w"]
    assert invalid(index) == {}


def test_a_valid_file_that_becomes_broken_is_withdrawn(store: Path, index: RecordIndex) -> None:
    path = write_record(store, record_dict("exec_x"))
    index.sync()
    path.write_bytes(b'{"execution_id": ')
    report = index.sync()
    assert report.removed_ids == ["exec_x"]
    assert ids(index) == []


def test_duplicate_ids_are_reported_and_the_canonical_file_wins(
    store: Path, index: RecordIndex
) -> None:
    write_record(store, record_dict("exec_d"), name="aaa_copy.json")
    index.sync()
    assert ids(index) == ["exec_d"]
    write_record(store, record_dict("exec_d", config_name="bauhaus", shape="text"))
    index.sync()
    assert ids(index) == ["exec_d"]
    assert "already served from exec_d.json" in invalid(index)["aaa_copy.json"]
    assert dict(StatsSource(index.reader).runs_by("config_name")) == {"bauhaus": 1}
    # The winner disappears: the duplicate is served now.
    (store / "exec_d.json").unlink()
    index.sync()
    assert ids(index) == ["exec_d"]
    assert invalid(index) == {}


def test_second_copy_is_a_duplicate(store: Path, index: RecordIndex) -> None:
    write_record(store, record_dict("exec_e"))
    write_record(store, record_dict("exec_e"), name="exec_e_copy.json")
    index.sync()
    assert count_runs(index.reader(), None) == 1
    assert "duplicate execution_id 'exec_e'" in invalid(index)["exec_e_copy.json"]


def test_index_survives_restart_without_rereading(store: Path, index_path: Path) -> None:
    for n in range(5):
        write_record(store, record_dict(f"exec_{n}"))
    with RecordIndex(store, index_path) as first:
        assert first.sync().added == 5
    with RecordIndex(store, index_path) as second:
        report = second.sync()
        assert (report.scanned, report.added, report.changed) == (5, 0, False)
        assert len(ids(second)) == 5


def test_corrupt_index_is_rebuilt(store: Path, index_path: Path) -> None:
    write_record(store, record_dict("exec_c"))
    index_path.parent.mkdir(parents=True)
    index_path.write_bytes(b"this is not a database" * 100)
    with RecordIndex(store, index_path) as idx:
        assert idx.sync().added == 1


def test_index_of_another_format_version_is_rebuilt(store: Path, index_path: Path) -> None:
    write_record(store, record_dict("exec_v"))
    with RecordIndex(store, index_path) as idx:
        idx.sync()
    conn = sqlite3.connect(index_path)
    with conn:
        conn.execute("UPDATE meta SET value = 'old' WHERE key = 'format_version'")
    conn.close()
    with RecordIndex(store, index_path) as idx:
        assert idx.sync().added == 1


def test_index_inside_the_store_is_refused(store: Path) -> None:
    with pytest.raises(ValueError, match="outside the store"):
        RecordIndex(store, store / "index.sqlite3").open()


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="not found"):
        RecordIndex(tmp_path / "nope", tmp_path / "i.db").open()


def test_nothing_is_ever_written_into_the_store(store: Path, index: RecordIndex) -> None:
    write_record(store, record_dict("exec_r"))
    (store / "broken.json").write_bytes(b"{")
    before = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    dir_mtime = store.stat().st_mtime_ns
    os.chmod(store, 0o555)
    try:
        index.sync()
        index.sync()
    finally:
        os.chmod(store, 0o755)
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == before
    assert store.stat().st_mtime_ns == dir_mtime


def _content(index_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row the index holds, and what a full-text search finds."""
    conn = sqlite3.connect(index_path)
    try:
        found = {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("files", "runs", "items", "meta")
        }
        found["text"] = conn.execute(
            "SELECT rowid FROM item_text WHERE item_text MATCH 'bild OR image' ORDER BY rowid"
        ).fetchall()
        found["text_config"] = conn.execute("SELECT * FROM item_text_config").fetchall()
        found["indexes"] = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        ).fetchall()
        found["journal"] = conn.execute("PRAGMA journal_mode").fetchall()
    finally:
        conn.close()
    return found


@pytest.mark.parametrize("workers", [False, True])
def test_a_cold_build_writes_the_same_index_as_an_incremental_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: bool
) -> None:
    import storage.extract as extract_module
    import storage.index as index_module

    store = _store_with_duplicates(tmp_path)
    (store / "exec_broken_link.json").symlink_to(tmp_path / "nowhere.json")
    # A file listed, then gone before anyone stat'ed it.
    real_list_names = RecordIndex._list_names
    monkeypatch.setattr(
        RecordIndex, "_list_names", lambda self: sorted([*real_list_names(self), "exec_gone.json"])
    )
    if workers:  # the cold build reads in worker processes, the incremental sync inline
        monkeypatch.setattr(extract_module, "worker_count", lambda: 2)
        monkeypatch.setattr(extract_module, "PARALLEL_THRESHOLD", 10)
        monkeypatch.setattr(extract_module, "BATCH_SIZE", 20)
        monkeypatch.setattr(extract_module, "ROWS_PER_INSERT", 6)
    built, synced = tmp_path / "built.sqlite3", tmp_path / "synced.sqlite3"

    monkeypatch.setattr(index_module, "BULK_THRESHOLD", 50)
    builds: list[int] = []
    real_build = RecordIndex._build_anew

    def counted(self: RecordIndex, *args: object) -> None:
        builds.append(1)
        real_build(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(RecordIndex, "_build_anew", counted)
    with RecordIndex(store, built) as idx:
        cold = idx.sync()
        assert builds == [1]
        assert not Path(f"{built}.building").exists()
        again = idx.sync()  # the replaced file is the one now open
        assert (again.added, again.changed) == (0, False)
        assert len(ids(idx)) == cold.added
    monkeypatch.setattr(index_module, "BULK_THRESHOLD", 10**9)
    monkeypatch.setattr(extract_module, "PARALLEL_THRESHOLD", 10**9)
    with RecordIndex(store, synced) as idx:
        incremental = idx.sync()

    assert (cold.added, cold.invalid, sorted(cold.added_ids)) == (
        incremental.added,
        incremental.invalid,
        sorted(incremental.added_ids),
    )
    assert cold.added == 123
    content = _content(built)
    assert content == _content(synced)
    files = {row[0]: row for row in content["files"]}
    assert files["exec_broken_link.json"][5] == "broken symbolic link"
    assert "exec_gone.json" not in files


def test_a_failed_cold_build_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.index as index_module

    store = tmp_path / "store"
    store.mkdir()
    for n in range(60):
        write_record(store, record_dict(f"exec_{n:03d}"))
    monkeypatch.setattr(index_module, "BULK_THRESHOLD", 50)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    index_path = tmp_path / "index.sqlite3"
    with RecordIndex(store, index_path) as idx:
        monkeypatch.setattr(idx, "_apply", broken)
        with pytest.raises(OSError, match="disk full"):
            idx.sync()
        assert not Path(f"{index_path}.building").exists()
        monkeypatch.undo()
        monkeypatch.setattr(index_module, "BULK_THRESHOLD", 50)
        assert idx.sync().added == 60


@pytest.mark.parametrize(
    ("cold", "workers"),
    [(True, True), (False, True), (False, False)],
    ids=["cold build", "incremental in workers", "incremental inline"],
)
def test_a_number_too_large_for_the_index_refuses_its_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cold: bool, workers: bool
) -> None:
    import storage.extract as extract_module
    import storage.index as index_module

    store = tmp_path / "store"
    store.mkdir()
    for n in range(60):
        write_record(store, record_dict(f"exec_{n:03d}"))
    huge = record_dict("exec_huge")
    huge["items"][0]["sequence_number"] = 2**70  # beyond SQLite's 64-bit integers
    write_record(store, huge)
    monkeypatch.setattr(index_module, "BULK_THRESHOLD", 50 if cold else 10**9)
    monkeypatch.setattr(extract_module, "PARALLEL_THRESHOLD", 10 if workers else 10**9)
    monkeypatch.setattr(extract_module, "worker_count", lambda: 2)
    with RecordIndex(store, tmp_path / "index.sqlite3") as idx:
        report = idx.sync()
        assert (report.added, report.invalid) == (60, 1)
        reason = (
            idx.reader()
            .execute("SELECT reason FROM files WHERE name = 'exec_huge.json'")
            .fetchone()[0]
        )
    assert "items[0].sequence_number" in reason
    assert "2147483647" in reason


def test_a_file_name_that_is_not_utf8_is_skipped_with_a_warning(
    store: Path, index: RecordIndex, caplog: pytest.LogCaptureFixture
) -> None:
    write_record(store, record_dict("exec_ok"))
    (Path(os.fsdecode(os.path.join(os.fsencode(store), b"exec_\xff.json")))).write_bytes(b"{}")
    report = index.sync()
    assert (report.scanned, report.added) == (1, 1)
    assert ids(index) == ["exec_ok"]
    assert "not valid UTF-8" in caplog.text
    assert index.sync_names([os.fsdecode(b"exec_\xff.json")]).changed is False


def test_an_index_file_made_by_another_process_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.index as index_module

    store = tmp_path / "store"
    store.mkdir()
    index_path = tmp_path / "index.sqlite3"
    with RecordIndex(store, index_path) as first:  # created (empty) by "another process"
        first.sync()
    for n in range(60):
        write_record(store, record_dict(f"exec_{n:03d}"))
    monkeypatch.setattr(index_module, "BULK_THRESHOLD", 50)
    inode = index_path.stat().st_ino
    with RecordIndex(store, index_path) as second:
        assert second.sync().added == 60
    assert index_path.stat().st_ino == inode


def _store_with_duplicates(tmp_path: Path) -> Path:
    from storage.demo import write_demo_store

    store = tmp_path / "store"
    write_demo_store(store, 120, seed=3)  # with one malformed file of each kind
    for n in range(3):  # duplicates: a copy before the canonical file, and one after it
        write_record(store, record_dict(f"exec_dup{n}"), name=f"aaa_{n}.json")
        write_record(store, record_dict(f"exec_dup{n}"))
        write_record(store, record_dict(f"exec_dup{n}"), name=f"zzz_{n}.json")
    return store


@pytest.mark.parametrize("cold", [True, False], ids=["cold build", "incremental"])
def test_a_sync_in_worker_processes_writes_the_same_index_as_one_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cold: bool
) -> None:
    import storage.extract as extract_module
    import storage.index as index_module

    store = _store_with_duplicates(tmp_path)
    staged, inline = tmp_path / "staged.sqlite3", tmp_path / "inline.sqlite3"
    monkeypatch.setattr(index_module, "BULK_THRESHOLD", 50 if cold else 10**9)
    monkeypatch.setattr(extract_module, "worker_count", lambda: 2)
    monkeypatch.setattr(extract_module, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(extract_module, "BATCH_SIZE", 7)  # duplicates span batches
    monkeypatch.setattr(extract_module, "FIRST_BATCH_SIZE", 3)
    monkeypatch.setattr(extract_module, "ROWS_PER_INSERT", 4)  # whole statements and the rest
    copies: list[str] = []
    real_store_batch = RecordIndex._store_batch

    def watched(
        self: RecordIndex, conn: sqlite3.Connection, batch: object, *args: Any, **kwargs: Any
    ) -> None:
        staging = getattr(batch, "staging", None)
        if staging is not None:
            assert staging.exists()
            copies.append(staging.name)
        real_store_batch(self, conn, batch, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(RecordIndex, "_store_batch", watched)
    with RecordIndex(store, staged) as idx:
        report = idx.sync()
    # Every batch came from a staging file.
    assert len(copies) == len(list(extract_module._spans(report.scanned, 3, 2)))
    assert len(copies) >= report.scanned // 7
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".execgraph-staging")]
    assert leftovers == []

    monkeypatch.setattr(extract_module, "PARALLEL_THRESHOLD", 10**9)
    with RecordIndex(store, inline) as idx:
        assert idx.sync().added == report.added == 123
    assert _content(staged) == _content(inline)


@pytest.mark.parametrize(
    ("total", "first", "workers"), [(20, 3, 2), (100_000, 500, 2), (7, 500, 4)]
)
def test_worker_batches_grow_then_shrink(total: int, first: int, workers: int) -> None:
    from storage.extract import BATCH_SIZE, _spans

    spans = list(_spans(total, first, workers))
    assert [start for start, _ in spans] == [0, *(stop for _, stop in spans[:-1])]
    assert spans[-1][1] == total
    sizes = [stop - start for start, stop in spans]
    assert sizes[:workers] == [min(first, total)] * min(workers, len(sizes))
    assert max(sizes) <= max(BATCH_SIZE, first)
    peak = sizes.index(max(sizes))
    assert sizes[: peak + 1] == sorted(sizes[: peak + 1])  # growing, then
    assert sizes[peak:-1] == sorted(sizes[peak:-1], reverse=True)  # shrinking (but the rest)
    assert min(sizes[:-1], default=first) >= min(first, total)


def test_worker_batches_of_a_large_store_are_full_in_the_middle() -> None:
    from storage.extract import BATCH_SIZE, _spans

    sizes = [stop - start for start, stop in _spans(100_000, 500, 2)]
    assert sizes[:6] == [500, 500, 1000, 1000, 2000, 2000]
    assert sizes.count(BATCH_SIZE) >= 30
    assert sizes[-3:] == [500, 500, sizes[-1]]
    assert list(_spans(0, 3, 2)) == []


def test_a_failing_worker_pool_falls_back_to_reading_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from concurrent.futures.process import BrokenProcessPool

    import storage.extract as extract_module

    store = _store_with_duplicates(tmp_path)
    real_in_workers = extract_module._in_workers

    def breaks_after_one_batch(*args: object) -> object:
        batches = real_in_workers(*args)  # type: ignore[arg-type]
        yield next(batches)
        batches.close()
        raise BrokenProcessPool("a worker died")

    monkeypatch.setattr(extract_module, "worker_count", lambda: 2)
    monkeypatch.setattr(extract_module, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(extract_module, "BATCH_SIZE", 20)
    monkeypatch.setattr(extract_module, "_in_workers", breaks_after_one_batch)
    with RecordIndex(store, tmp_path / "index.sqlite3") as idx:
        report = idx.sync()
        assert report.added == 123
        assert sorted(report.added_ids) == sorted(ids(idx)) == sorted(set(ids(idx)))
    assert "reading files inline" in caplog.text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".execgraph-staging")]


def test_a_staging_folder_of_a_process_that_is_gone_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    import storage.extract as extract_module

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    abandoned = tmp_path / f".execgraph-staging-{dead_pid}-abc"
    abandoned.mkdir()
    (abandoned / "000000.sqlite3").write_bytes(b"x")
    ours = tmp_path / f".execgraph-staging-{os.getpid()}-def"
    ours.mkdir()
    store = tmp_path / "store"
    store.mkdir()
    for n in range(12):
        write_record(store, record_dict(f"exec_{n:03d}"))
    monkeypatch.setattr(extract_module, "worker_count", lambda: 2)
    monkeypatch.setattr(extract_module, "PARALLEL_THRESHOLD", 10)
    with RecordIndex(store, tmp_path / "index.sqlite3") as idx:
        assert idx.sync().added == 12
    assert not abandoned.exists()
    assert ours.exists()  # a running process's folder is left alone


def test_a_second_sync_of_an_unchanged_store_reads_nothing_again(
    store: Path, index: RecordIndex
) -> None:
    write_record(store, record_dict("exec_ok"))
    (store / "broken.json").write_bytes(b"{")
    os.symlink(store / "nowhere.json", store / "dangling.json")
    os.symlink("/etc/hostname", store / "outside.json")
    first = index.sync()
    assert (first.added, first.invalid) == (1, 3)
    again = index.sync()
    assert (again.added, again.updated, again.removed, again.invalid) == (0, 0, 0, 0)
    assert again.changed is False


class _NoTemporaryFiles(sqlite3.Connection):
    """A connection whose first script fails halfway, as when no temporary file can be made."""

    failed = False

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        if not self.failed and self.execute("PRAGMA temp_store").fetchone()[0] == 1:
            self.failed = True
            super().executescript(script.split(";")[0] + ";")
            raise sqlite3.OperationalError("unable to open database file")
        return super().executescript(script)


def test_the_indexes_of_a_cold_build_are_completed_in_memory_without_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.index as index_module
    from storage.index import _create_indexes
    from storage.schema import INDEX_DDL, TABLE_DDL

    monkeypatch.setattr(index_module, "_SORT_THREADS", 1)  # as on any machine of 2 cores

    conn = sqlite3.connect(tmp_path / "built.sqlite3", factory=_NoTemporaryFiles)
    try:
        conn.executescript(TABLE_DDL)
        _create_indexes(conn)
        assert conn.failed
        made = {
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            if not row[0].startswith("sqlite_")
        }
        wanted = {line.split()[5] for line in INDEX_DDL.splitlines() if line.startswith("CREATE")}
        assert made == wanted
        assert len(wanted) == 11
        assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # memory
    finally:
        conn.close()


# -- the change log ------------------------------------------------------------------------------


def test_each_added_or_changed_run_is_logged_once_in_sync_order(
    store: Path, index: RecordIndex
) -> None:
    a = write_record(store, record_dict("exec_a"))
    write_record(store, record_dict("exec_b"))
    index.sync()
    a.write_bytes(dump(record_dict("exec_a", config_name="bauhaus")) + b"\n")
    index.sync_names([a.name])
    (store / "exec_b.json").unlink()
    index.sync()
    assert not index.sync().changed
    assert index.changes_after(0) == [
        (1, "added", "exec_a"),
        (2, "added", "exec_b"),
        (3, "changed", "exec_a"),
    ]
    assert index.last_change() == 3
    assert index.changes_after(1, limit=1) == [(2, "added", "exec_b")]


def test_the_cold_build_logs_nothing_and_later_syncs_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.index as index_module

    store = tmp_path / "store"
    store.mkdir()
    for n in range(60):
        write_record(store, record_dict(f"exec_{n:03d}"))
    monkeypatch.setattr(index_module, "BULK_THRESHOLD", 50)
    with RecordIndex(store, tmp_path / "index.sqlite3") as idx:
        assert idx.sync().added == 60
        assert idx.last_change() == 0
        write_record(store, record_dict("exec_new"))
        idx.sync()
        assert idx.changes_after(0) == [(1, "added", "exec_new")]


def test_the_change_log_is_pruned_to_a_window_and_never_reuses_a_seq(
    store: Path, index: RecordIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.index as index_module

    monkeypatch.setattr(index_module, "CHANGE_LOG_KEEP", 5)
    for n in range(12):
        write_record(store, record_dict(f"exec_{n:03d}"))
        index.sync()
    seqs = [seq for seq, _, _ in index.changes_after(0)]
    assert seqs == list(range(7, 13))  # the newest 5 before the last sync, and its own
    assert index.last_change() == 12


# -- one writer per index file -------------------------------------------------------------------


def test_a_second_opener_waits_until_the_creator_has_synced(store: Path, index_path: Path) -> None:
    import threading

    for n in range(3):
        write_record(store, record_dict(f"exec_{n}"))
    creator = RecordIndex(store, index_path).open()  # created the file: holds the lock
    second = RecordIndex(store, index_path)
    opened = threading.Event()
    thread = threading.Thread(target=lambda: (second.open(), opened.set()), daemon=True)
    thread.start()
    try:
        assert not opened.wait(0.5), "opened a file its creator had not synced yet"
        creator.sync()
        assert opened.wait(10)
        assert ids(second) == ["exec_0", "exec_1", "exec_2"]
        assert not second.sync().changed
    finally:
        thread.join(10)
        second.close()
        creator.close()


def test_a_sync_waits_for_another_writer_and_a_request_sync_skips(
    store: Path, index: RecordIndex, index_path: Path
) -> None:
    import threading

    from filelock import FileLock

    index.sync()
    path = write_record(store, record_dict("exec_late"))
    other = FileLock(f"{index_path}.lock")  # another process's writer, as far as flock can tell
    other.acquire()
    done = threading.Event()
    try:
        assert not index.sync_names([path.name], wait=False).changed
        thread = threading.Thread(target=lambda: (index.sync(), done.set()), daemon=True)
        thread.start()
        assert not done.wait(0.5), "synced while another writer held the lock"
    finally:
        other.release()
    assert done.wait(10)
    thread.join(10)
    assert "exec_late" in ids(index)

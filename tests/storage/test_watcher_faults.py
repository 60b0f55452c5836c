"""The watcher under faults: failed syncs are retried until nothing is lost, and the store is
followed when it vanishes, returns or is replaced.

A real watcher thread (inotify) on a real store; the index is real too, with a fault switch in
front of its two sync entry points: each raises the next queued error, then works again.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from storage.index import RecordIndex, SyncReport
from storage.reader import DEFAULT_MAX_FILE_BYTES
from storage.watcher import RETRY_MAX_S, StoreWatcher, store_identity
from tests.factory import record_dict, write_record

WAIT_S = 10.0
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FaultyIndex(RecordIndex):
    """A real index whose syncs raise the queued errors first (one per call)."""

    def __init__(self, store: Path, index_path: Path) -> None:
        super().__init__(store, index_path, max_file_bytes=DEFAULT_MAX_FILE_BYTES)
        self.faults: list[Exception] = []
        self.calls = 0

    def _fault(self) -> None:
        self.calls += 1
        if self.faults:
            raise self.faults.pop(0)

    def sync(self, progress: Any = None) -> SyncReport:
        self._fault()
        return super().sync(progress)

    def sync_names(self, names: Iterable[str], *, wait: bool = True) -> SyncReport:
        self._fault()
        return super().sync_names(names, wait=wait)


def served(index: RecordIndex) -> set[str]:
    rows = index.reader().execute("SELECT execution_id FROM runs").fetchall()
    return {str(row[0]) for row in rows}


def wait_until(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.02)
    return time.monotonic() - start


def watcher_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "storage.watcher"]


@pytest.fixture
def index(store: Path, index_path: Path) -> Iterator[FaultyIndex]:
    opened = FaultyIndex(store, index_path)
    opened.open()
    try:
        opened.sync()
        opened.calls = 0
        yield opened
    finally:
        opened.close()


@pytest.fixture
def watcher(index: FaultyIndex, request: pytest.FixtureRequest) -> Iterator[StoreWatcher]:
    """A running watcher (``auto`` mode, or the one given by indirect parametrisation)."""
    mode: Literal["auto", "poll"] = getattr(request, "param", "auto")
    # No rescan (3600 s) that could hide a lost name.
    running = StoreWatcher(index, mode=mode, poll_interval_ms=100, rescan_interval_s=3600)
    running.start(initial_sync=True)  # run once notifications are on: then the test may begin
    wait_until(lambda: index.calls >= 1, "the watcher watching")
    index.calls = 0
    try:
        yield running
    finally:
        running.stop()
        assert not running.running


@pytest.mark.slow  # a real watcher thread, seconds of retries
def test_names_of_failed_syncs_are_retried_until_every_one_is_indexed(
    store: Path,
    index: FaultyIndex,
    watcher: StoreWatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="storage.watcher")
    write_record(store, record_dict("exec_old"))
    wait_until(lambda: served(index) == {"exec_old"}, "the first run served")
    index.faults = [ENOSPC, ENOSPC, sqlite3.OperationalError("database is locked"), ENOSPC]
    index.calls = 0
    for n in range(5):
        write_record(store, record_dict(f"exec_new_{n}"))
    (store / "exec_old.json").unlink()
    wait_until(lambda: watcher.health().failing_since is not None, "the failure reported")
    assert watcher.health().error == "ENOSPC: No space left on device"
    wanted = {f"exec_new_{n}" for n in range(5)}
    wait_until(lambda: served(index) == wanted, "every change indexed after the faults")
    wait_until(lambda: watcher.health().ok, "health back to ok")
    assert index.calls >= 5  # four failures, then the sync that worked
    lines = watcher_lines(caplog)
    # One line when syncs start failing, one per change of error, one when they recover.
    failing = [line for line in lines if "index sync failing" in line]
    assert len(failing) == 3, lines  # ENOSPC, locked, ENOSPC again: the error changed each time
    assert len([line for line in lines if "recovered" in line]) == 1, lines


@pytest.mark.slow  # a real watcher thread, seconds of retries
def test_a_lasting_failure_is_retried_with_backoff_and_logged_once(
    store: Path,
    index: FaultyIndex,
    watcher: StoreWatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="storage.watcher")
    index.faults = [ENOSPC] * 1000
    write_record(store, record_dict("exec_waiting"))
    wait_until(lambda: index.calls >= 1, "a first attempt")
    time.sleep(2.5)
    tries = index.calls
    # 0.1, 0.2, 0.4, 0.8 s... doubling: about 5 tries in 2.5 s, never a hot loop.
    assert 3 <= tries <= 8, tries
    assert served(index) == set()
    health = watcher.health()
    assert health.failing_since is not None
    assert not health.ok
    index.faults = []
    took = wait_until(lambda: served(index) == {"exec_waiting"}, "served once the fault ends")
    assert took <= RETRY_MAX_S + 1
    lines = watcher_lines(caplog)
    assert len([line for line in lines if "failing" in line]) == 1, lines
    assert len([line for line in lines if "recovered" in line]) == 1, lines


@pytest.mark.slow  # a real watcher thread, seconds of retries
def test_a_failed_full_sync_at_start_is_retried(
    store: Path, index_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="storage.watcher")
    for n in range(3):
        write_record(store, record_dict(f"exec_{n}"))
    index = FaultyIndex(store, index_path)
    index.open()
    index.faults = [sqlite3.OperationalError("disk I/O error")] * 3
    watcher = StoreWatcher(index, rescan_interval_s=3600)
    watcher.start(initial_sync=True)
    try:
        wait_until(lambda: served(index) == {"exec_0", "exec_1", "exec_2"}, "all served")
        wait_until(lambda: watcher.health().ok, "health back to ok")
    finally:
        watcher.stop()
        index.close()
    assert index.calls >= 4
    assert len([line for line in watcher_lines(caplog) if "failing" in line]) == 1


@pytest.mark.slow  # a real watcher thread, seconds of retries
@pytest.mark.parametrize("watcher", ["auto", "poll"], indirect=True)
def test_a_store_deleted_and_recreated_is_watched_again(
    store: Path, index: FaultyIndex, watcher: StoreWatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="storage.watcher")
    write_record(store, record_dict("exec_before"))
    wait_until(lambda: served(index) == {"exec_before"}, "served before")
    away = store.with_name("store-away")
    store.rename(away)  # vanished whole (an unmount, a move): nothing is known to be deleted
    wait_until(lambda: watcher.health().store_missing_since is not None, "store missing")
    assert served(index) == {"exec_before"}  # served as the index has it meanwhile
    assert not watcher.health().ok
    store.mkdir()
    write_record(store, record_dict("exec_after"))
    wait_until(lambda: served(index) == {"exec_after"}, "the new store's runs served")
    assert watcher.health().ok
    write_record(store, record_dict("exec_later"))  # and notifications work on the new one
    wait_until(lambda: served(index) == {"exec_after", "exec_later"}, "a later file served")
    lines = watcher_lines(caplog)
    assert len([line for line in lines if "is missing" in line]) == 1, lines
    assert len([line for line in lines if "is back" in line]) == 1, lines
    shutil.rmtree(away)


@pytest.mark.slow  # a real watcher thread, seconds of retries
@pytest.mark.parametrize("watcher", ["auto", "poll"], indirect=True)
def test_a_store_swapped_for_a_symlink_is_followed(
    store: Path, tmp_path: Path, index: FaultyIndex, watcher: StoreWatcher
) -> None:
    write_record(store, record_dict("exec_before"))
    wait_until(lambda: served(index) == {"exec_before"}, "served before")
    other = tmp_path / "other"
    other.mkdir()
    write_record(other, record_dict("exec_other"))
    link = tmp_path / "link-tmp"
    link.symlink_to(other, target_is_directory=True)
    shutil.rmtree(store)
    link.rename(store)  # the store path now names another directory
    wait_until(lambda: served(index) == {"exec_other"}, "the other directory's runs served")
    assert store_identity(store) is not None
    write_record(other, record_dict("exec_other_2"))
    wait_until(lambda: served(index) == {"exec_other", "exec_other_2"}, "a later file served")


def test_names_looked_up_while_the_store_is_missing_keep_their_runs(
    store: Path, index_path: Path
) -> None:
    write_record(store, record_dict("exec_kept"))
    with RecordIndex(store, index_path) as index:
        index.sync()
        store.rename(store.with_name("elsewhere"))
        index.sync_names(["exec_kept.json"])
        assert served(index) == {"exec_kept"}
        store.mkdir()  # back, empty: now the file is known to be gone
        index.sync_names(["exec_kept.json"])
        assert served(index) == set()


def test_a_file_not_opened_for_want_of_descriptors_fails_the_sync_and_is_read_later(
    store: Path, index_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_record(store, record_dict("exec_fd"))
    real_open = os.open

    def no_descriptors(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(".json"):
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return real_open(path, flags, *args, **kwargs)

    with RecordIndex(store, index_path) as index:
        monkeypatch.setattr(os, "open", no_descriptors)
        with pytest.raises(OSError, match="Too many open files"):
            index.sync_names(["exec_fd.json"])  # not recorded as an unservable file
        monkeypatch.undo()
        index.sync_names(["exec_fd.json"])
        assert served(index) == {"exec_fd"}


def test_a_requests_catch_up_that_fails_does_not_fail_the_request(
    store: Path, index_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_record(store, record_dict("exec_hint"))
    with RecordIndex(store, index_path) as index:

        def full_disk(*args: Any) -> SyncReport:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(index, "_sync_names", full_disk)
        assert index.sync_names(["exec_hint.json"], wait=False) == SyncReport()
        with pytest.raises(sqlite3.OperationalError):
            index.sync_names(["exec_hint.json"])  # the watcher's call: it keeps the names

"""The reader API: value objects out, and one read-and-verify of a served run's file.

A file the index serves may have changed since it was indexed: replaced by another run, gone, or
(being) rewritten. ``Catalog.read_run`` says so with one error, and has the index catch up with
that file, so that the next query no longer serves what the disk no longer holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.catalog import Catalog, RecordUnavailable
from storage.index import RecordIndex
from storage.models import ExecutionRecord
from storage.query import PageRequest, RunOrder, RunRow
from storage.reader import DEFAULT_MAX_FILE_BYTES
from tests.factory import dump, record_dict, write_record


@pytest.fixture
def catalog(store: Path, index_path: Path) -> Iterator[Catalog]:
    write_record(store, record_dict("exec_a"))
    write_record(store, record_dict("exec_b", shape="stillepost"))
    with RecordIndex(store, index_path) as index:
        index.sync()
        yield Catalog(index, max_file_bytes=DEFAULT_MAX_FILE_BYTES)


def test_reads_return_value_objects(catalog: Catalog) -> None:
    page = catalog.list_runs(None, RunOrder.TIMESTAMP_DESC, PageRequest(first=10))
    assert {type(run) for run in page.rows} == {RunRow}
    assert {run.execution_id for run in page.rows} == {"exec_a", "exec_b"}
    assert catalog.count_runs(None) == 2
    run = catalog.get_run("exec_b")
    assert run is not None
    record = catalog.read_run(run.execution_id, run.file_name)
    assert isinstance(record, ExecutionRecord)
    assert record.execution_id == "exec_b"
    assert len(record.items) == run.item_count
    assert catalog.files_read == 1
    assert catalog.stats().totals()[0] == 2


def unavailable(catalog: Catalog, execution_id: str) -> RecordUnavailable:
    run = catalog.get_run(execution_id)
    assert run is not None
    with pytest.raises(RecordUnavailable) as caught:
        catalog.read_run(run.execution_id, run.file_name)
    assert caught.value.execution_id == execution_id
    return caught.value


def test_a_file_now_holding_another_run_is_refused_and_the_index_catches_up(
    catalog: Catalog, store: Path
) -> None:
    write_record(store, record_dict("exec_c"), name="exec_a.json")
    error = unavailable(catalog, "exec_a")
    assert error.reason == "the file now holds another run"
    assert str(error) == "run exec_a cannot be read right now (the file now holds another run)"
    assert catalog.get_run("exec_a") is None
    served = catalog.get_run("exec_c")
    assert served is not None
    assert served.file_name == "exec_a.json"


def test_a_vanished_file_is_refused_and_its_run_no_longer_served(
    catalog: Catalog, store: Path
) -> None:
    (store / "exec_a.json").unlink()
    assert unavailable(catalog, "exec_a").reason == "file disappeared while being read"
    assert catalog.get_run("exec_a") is None
    assert catalog.count_runs(None) == 1


def test_an_invalid_file_is_refused_with_the_readers_reason_and_listed_as_invalid(
    catalog: Catalog, store: Path
) -> None:
    (store / "exec_a.json").write_bytes(dump(record_dict("exec_a"))[:100])
    reason = unavailable(catalog, "exec_a").reason
    assert reason.startswith("truncated or incomplete JSON")
    assert catalog.get_run("exec_a") is None
    assert [name for name, _ in catalog.stats().invalid()] == ["exec_a.json"]


def test_a_batch_reads_each_file_and_catches_up_once_for_all_that_failed(
    catalog: Catalog, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index: RecordIndex = catalog._index
    syncs: list[tuple[list[str], Any]] = []
    real = index.sync_names

    def spy(names: Any, *, wait: bool = True) -> Any:
        syncs.append((list(names), wait))
        return real(names, wait=wait)

    monkeypatch.setattr(index, "sync_names", spy)
    (store / "exec_a.json").unlink()
    found = catalog.read_runs(
        [("exec_b", "exec_b.json"), ("exec_a", "exec_a.json"), ("exec_x", "exec_b.json")]
    )
    assert isinstance(found[0], ExecutionRecord)
    assert found[0].execution_id == "exec_b"
    assert isinstance(found[1], RecordUnavailable)
    assert isinstance(found[2], RecordUnavailable)
    assert found[2].reason == "the file now holds another run"
    # One catch-up for both, and one that never waits for a sync already running.
    assert syncs == [(["exec_a.json", "exec_b.json"], False)]
    assert catalog.files_read == 3


def test_catching_up_does_not_wait_for_a_sync_already_running(
    catalog: Catalog, store: Path
) -> None:
    index: RecordIndex = catalog._index
    (store / "exec_a.json").unlink()
    with index._write_lock:  # another sync holds the index (as the watcher's would)
        assert unavailable(catalog, "exec_a").reason == "file disappeared while being read"
    assert catalog.get_run("exec_a") is not None  # not caught up: that sync will see it

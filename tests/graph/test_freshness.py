"""New, completed and deleted files show in queries within a second, without a restart."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.conftest import data, gql
from tests.factory import dump, record_dict, write_record

QUERY = """query($id: String!) { execution(executionId: $id) { executionId itemCount
           items { sequenceNumber } } }"""


def wait_for(check: Callable[[], bool], limit: float = 1.0) -> float:
    """Seconds until ``check()`` holds; fails past ``limit``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < limit, f"not within {limit} s"
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.mark.parametrize("mode", ["auto", "poll"])
def test_new_and_deleted_files_are_visible_within_a_second(
    store: Path, make_client: Callable[..., TestClient], mode: str
) -> None:
    write_record(store, record_dict("exec_first"))
    client = make_client(store, watch=True, watch_mode=mode, poll_interval_ms=100)
    path = write_record(store, record_dict("exec_fresh", shape="stillepost"))

    def present() -> bool:
        got = data(
            client,
            "query($id: String!) { execution(executionId: $id) { itemCount } }",
            {"id": "exec_fresh"},
        )
        return got["execution"] is not None

    wait_for(present)
    path.unlink()
    wait_for(lambda: not present())


def test_a_record_being_streamed_is_never_served_broken(
    store: Path, make_client: Callable[..., TestClient]
) -> None:
    client = make_client(store, watch=True)
    body = dump(record_dict("exec_stream", shape="stillepost"))
    done = threading.Event()

    def writer() -> None:
        # The upstream tracker truncates the final path and streams into it.
        with open(store / "exec_stream.json", "wb") as fh:
            for start in range(0, len(body), 400):
                fh.write(body[start : start + 400])
                fh.flush()
                os.fsync(fh.fileno())
                time.sleep(0.02)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen_partial_state = False
    while not done.is_set():
        got = data(client, QUERY, {"id": "exec_stream"})["execution"]
        if got is None:
            seen_partial_state = True
        else:
            assert got["itemCount"] == len(got["items"]) == 17
    thread.join()
    assert seen_partial_state
    wait_for(lambda: data(client, QUERY, {"id": "exec_stream"})["execution"] is not None)
    stats = data(client, "{ storageStats { invalidRecordCount } }")["storageStats"]
    assert stats["invalidRecordCount"] == 0


def test_atomic_rename_is_picked_up(store: Path, make_client: Callable[..., TestClient]) -> None:
    client = make_client(store, watch=True)
    tmp = store / ".exec_atomic.json.tmp"
    tmp.write_bytes(dump(record_dict("exec_atomic")))
    os.replace(tmp, store / "exec_atomic.json")
    wait_for(lambda: data(client, QUERY, {"id": "exec_atomic"})["execution"] is not None)


def test_truncated_file_finished_later_is_served_from_then_on(
    store: Path, make_client: Callable[..., TestClient]
) -> None:
    body = dump(record_dict("exec_late"))
    path = store / "exec_late.json"
    path.write_bytes(body[:100])
    client = make_client(store, watch=True)
    assert data(client, QUERY, {"id": "exec_late"})["execution"] is None
    path.write_bytes(body)
    wait_for(lambda: data(client, QUERY, {"id": "exec_late"})["execution"] is not None)


def test_a_file_deleted_before_the_index_notices_gives_a_typed_error(
    store: Path, make_client: Callable[..., TestClient]
) -> None:
    path = write_record(store, record_dict("exec_gone"))
    client = make_client(store, watch=False)
    path.unlink()
    body = gql(client, QUERY, {"id": "exec_gone"})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "exec_gone" in body["errors"][0]["message"]
    # The failed read made the index catch up.
    assert data(client, QUERY, {"id": "exec_gone"})["execution"] is None

"""Record file reads, and the index catch-up a failed read starts, run off the event loop.

A real uvicorn server on 127.0.0.1: while one request waits for a slow read (or a slow sync),
another request on the same server is answered at once.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import storage.reader
from storage.index import RecordIndex
from tests.e2e.server import serve
from tests.factory import record_dict, write_record

#: How long the slowed-down step takes (s); a concurrent answer must come well within it
#: (the bound leaves room for a busy machine; blocked, the answer would take SLOW_S).
SLOW_S = 1.5
QUICK_S = 0.5
ITEMS = """query($id: String!) { execution(executionId: $id) { items { sequenceNumber } } }"""


def post(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def slowed(real: Callable[..., Any], started: threading.Event) -> Callable[..., Any]:
    def slow(*args: Any, **kwargs: Any) -> Any:
        started.set()
        time.sleep(SLOW_S)
        return real(*args, **kwargs)

    return slow


def answer_while_slow(url: str, started: threading.Event, execution_id: str) -> tuple[float, float]:
    """(seconds the slow request took, seconds ``{ __typename }`` took while it ran)."""
    took: list[float] = []
    assert post(url, "{ __typename }") == {"data": {"__typename": "Query"}}  # caches warm

    def slow_request() -> None:
        start = time.monotonic()
        post(url, ITEMS, {"id": execution_id})
        took.append(time.monotonic() - start)

    worker = threading.Thread(target=slow_request)
    worker.start()
    try:
        assert started.wait(10), "the slowed step never ran"
        start = time.monotonic()
        assert post(url, "{ __typename }") == {"data": {"__typename": "Query"}}
        quick = time.monotonic() - start
    finally:
        worker.join(10)
    assert not worker.is_alive()
    [slow] = took
    return slow, quick


def test_a_slow_record_read_does_not_hold_up_other_requests(
    store: Path, index_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_record(store, record_dict("exec_slow"))
    started = threading.Event()
    real = storage.reader.read_file
    monkeypatch.setattr("storage.catalog.read_file", slowed(real, started))
    with serve(store, index_path, watch=False) as server:
        slow, quick = answer_while_slow(server.http_url, started, "exec_slow")
    assert slow >= SLOW_S  # the control: the read was slow
    assert quick < QUICK_S


def test_the_catch_up_after_a_failed_read_does_not_hold_up_other_requests(
    store: Path, index_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_record(store, record_dict("exec_gone"))
    started = threading.Event()
    monkeypatch.setattr(RecordIndex, "sync_names", slowed(RecordIndex.sync_names, started))
    with serve(store, index_path, watch=False) as server:
        (store / "exec_gone.json").unlink()
        slow, quick = answer_while_slow(server.http_url, started, "exec_gone")
    assert slow >= SLOW_S  # the control: the failed read's catch-up was slow
    assert quick < QUICK_S

"""Heavy answers: the items a request builds are bounded by the runs' real item counts and file
sizes (the index knows them), before any file is read; past the deadline the file reads stop.

A store of 5 runs of ~3,000 short items each: the static cost check counts each run's items as
20 and lets every query below through; only the budget from facts refuses them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import storage.reader
from graph.api.context import AppState
from tests.factory import BASE_TIME, item_dict, record_dict, write_record
from tests.hardening.conftest import codes, post

#: Stores of runs with thousands of items, and deadlines waited out.
pytestmark = pytest.mark.slow

RUNS = 5
EXTRA_ITEMS = 3000
ALL_ITEMS = "{ executions(first: 10) { edges { node { itemCount items { content } } } } }"


def heavy_record(n: int, extra: int = EXTRA_ITEMS) -> dict[str, Any]:
    """A run of ``extra`` short items more than the factory's."""
    data = record_dict(f"exec_20251103_1430{n:02d}_0000abcd", at=BASE_TIME + timedelta(minutes=n))
    data["items"] += [
        item_dict(
            len(data["items"]) + k + 1,
            "interception_iteration",
            stage=2,
            at=BASE_TIME + timedelta(seconds=k),
            content=f"c{k}",
        )
        for k in range(extra)
    ]
    return data


@pytest.fixture(scope="module")
def heavy_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int], list[int]]:
    """The store, each run's item count and each file's size (newest run first)."""
    store = tmp_path_factory.mktemp("heavy") / "store"
    store.mkdir()
    counts, sizes = [], []
    for n in range(RUNS):
        data = heavy_record(n)
        path = write_record(store, data)
        counts.append(len(data["items"]))
        sizes.append(path.stat().st_size)
    return store, counts[::-1], sizes[::-1]


def files_read(client: TestClient) -> int:
    state: AppState = client.app.state.execgraph  # type: ignore[attr-defined]
    return state.files_read


def refusal(body: dict[str, Any]) -> dict[str, Any]:
    """The one error of a request refused as a whole (no data)."""
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    extensions: dict[str, Any] = error["extensions"]
    return {"message": error["message"], **extensions}


def test_items_of_a_page_over_the_item_budget_are_refused_with_the_real_counts(
    heavy_store: tuple[Path, list[int], list[int]], make_client: Callable[..., TestClient]
) -> None:
    store, counts, sizes = heavy_store
    client = make_client(store)  # the defaults: 10,000 items per request
    error = refusal(post(client, ALL_ITEMS).json())
    assert error["items"] == sum(counts)  # every run reached, counted from the index
    assert error["maxItems"] == 10_000
    assert error["itemBytes"] == sum(sizes)
    assert f"at least {sum(counts)} items; at most 10000" in error["message"]
    # Nothing was read for the runs over the budget (only the first three fit, 3 x 3,007);
    # and once the request was refused, the reads not yet made were dropped.
    time.sleep(0.3)  # a worker thread still reading would count by now
    assert files_read(client) <= 3
    # The budget is the request's: the next one starts afresh.
    one_run = "{ executions(first: 1) { edges { node { items { content } } } } }"
    assert "errors" not in post(client, one_run).json()


def test_a_query_within_the_item_budget_still_answers(
    heavy_store: tuple[Path, list[int], list[int]], make_client: Callable[..., TestClient]
) -> None:
    store, counts, _ = heavy_store
    client = make_client(store)
    body = post(
        client, "{ executions(first: 3) { edges { node { itemCount items { content } } } } }"
    ).json()
    assert "errors" not in body, body["errors"]
    edges = body["data"]["executions"]["edges"]
    assert [len(edge["node"]["items"]) for edge in edges] == counts[:3]
    # The budget is per request: the same query again is answered too.
    assert "errors" not in post(client, "{ executions(first: 3) { totalCount } }").json()
    assert "errors" not in post(client, ALL_ITEMS.replace("10", "3")).json()


def test_an_item_filter_counts_only_the_matching_items(
    heavy_store: tuple[Path, list[int], list[int]], make_client: Callable[..., TestClient]
) -> None:
    store, _, _ = heavy_store
    client = make_client(store)
    body = post(
        client,
        """{ executions(first: 10) { edges { node {
             items(filter: {itemTypes: [USER_INPUT_TEXT]}) { content } } } } }""",
    ).json()
    assert "errors" not in body, body["errors"]
    assert [len(e["node"]["items"]) for e in body["data"]["executions"]["edges"]] == [1] * RUNS


def test_items_built_again_under_nested_runs_count_each_time(
    heavy_store: tuple[Path, list[int], list[int]], make_client: Callable[..., TestClient]
) -> None:
    """``items { execution { items } } }`` builds a run's items once per item: all charged."""
    store, counts, _ = heavy_store
    client = make_client(store, max_items_per_request=50_000)
    body = post(
        client,
        "{ items(first: 20) { edges { node { execution { items { sequenceNumber } } } } } }",
    ).json()
    error = refusal(body)
    assert error["items"] > 50_000
    assert error["items"] % counts[0] == 20  # the page's 20 rows, then whole runs


def test_a_request_over_the_byte_cap_is_refused_naming_the_cap(
    heavy_store: tuple[Path, list[int], list[int]], make_client: Callable[..., TestClient]
) -> None:
    store, _, sizes = heavy_store
    cap = sizes[0] + sizes[1] + 10  # two files fit, the third does not
    client = make_client(store, max_items_per_request=1_000_000, max_item_bytes_per_request=cap)
    error = refusal(post(client, ALL_ITEMS).json())
    assert error["maxItemBytes"] == cap
    assert error["itemBytes"] == sum(sizes)
    assert f"at least {sum(sizes)} bytes of record files; at most {cap} bytes" in error["message"]
    time.sleep(0.3)
    assert files_read(client) <= 2
    # The items connection charges the files its page's items come from.
    body = post(client, "{ items(first: 500, filter: {stages: [0]}) { edges { cursor } } }")
    assert codes(body.json()) == ["QUERY_TOO_COMPLEX"]
    two_runs = "{ executions(first: 2) { edges { node { items { stage } } } } }"
    assert "errors" not in post(client, two_runs).json()  # within the cap: answered


def test_the_file_reads_of_a_request_stop_at_its_deadline(
    heavy_store: tuple[Path, list[int], list[int]],
    make_client: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, _, _ = heavy_store
    reads: list[float] = []
    real = storage.reader.read_file

    def slow(*args: Any, **kwargs: Any) -> Any:
        reads.append(time.monotonic())
        time.sleep(0.4)
        return real(*args, **kwargs)

    monkeypatch.setattr("storage.catalog.read_file", slow)
    client = make_client(store, request_timeout_s=0.5, max_items_per_request=1_000_000)
    started = time.monotonic()
    body = post(client, ALL_ITEMS).json()
    took = time.monotonic() - started
    assert codes(body) == ["TIMEOUT"]
    assert took < 1.5  # the answer comes at the deadline, not after all five reads (2 s)
    time.sleep(1.0)  # the worker thread, had it gone on, would have read the rest by now
    assert len(reads) == 2  # the one running at the deadline finished; no further file began

"""One heavy client against a real server: it never holds up the others; and each subscription
event has an item budget of its own.

The first test runs ``execgraph serve`` (its memory is read from /proc).

A store of 20 runs of ~5,000 items each. One client keeps asking for every run's items (over the
item budget: refused from the index's counts, nothing read) and for a page within the budget,
while another polls ``{ __typename }``. The poll is answered within a second throughout, each
heavy answer comes by its deadline, and the server's memory (VmRSS) stays bounded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.server import Subscriber, serve, serving
from tests.hardening.test_heavy_answers import heavy_record

RUNS = 20
EXTRA_ITEMS = 5000
TIMEOUT_S = 1.0
HEAVY_FOR_S = 6.0
ALL_ITEMS = """{ executions(first: 50) { edges { node { items { sequenceNumber timestamp stage
    itemType content metadata } } } } }"""
WITHIN = """{ executions(first: 1) { edges { node { items { sequenceNumber timestamp stage
    itemType content metadata } } } } }"""


def post(port: int, query: str, timeout: float = 30) -> tuple[float, dict[str, Any]]:
    """(seconds taken, body) of one query on a fresh connection."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"content-type": "application/json", "connection": "close"},
    )
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: dict[str, Any] = json.load(response)
    return time.monotonic() - started, body


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@contextmanager
def one_worker(
    store: Path, home: Path, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``execgraph serve`` (one worker) with the given EXECGRAPH_* settings: (process, port)."""
    with serving(store, home, env=env) as server:
        yield server.process, server.port


def test_one_heavy_client_never_holds_up_the_others(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    for n in range(RUNS):
        data = heavy_record(n, extra=EXTRA_ITEMS)
        (store / f"{data['execution_id']}.json").write_bytes(json.dumps(data).encode())
    with one_worker(store, tmp_path / "home", EXECGRAPH_REQUEST_TIMEOUT_S=str(TIMEOUT_S)) as (
        process,
        port,
    ):
        post(port, WITHIN)  # warm: the first request's imports and caches
        before = rss_kib(process.pid)
        heavy: list[tuple[float, list[str]]] = []
        polls: list[float] = []
        stop = threading.Event()

        def heavy_client() -> None:
            for query in (ALL_ITEMS, WITHIN) * 100:
                if stop.is_set():
                    return
                took, body = post(port, query)
                codes = [e["extensions"]["code"] for e in body.get("errors", [])]
                heavy.append((took, codes))

        worker = threading.Thread(target=heavy_client)
        worker.start()
        try:
            end = time.monotonic() + HEAVY_FOR_S
            while time.monotonic() < end:
                polls.append(post(port, "{ __typename }", timeout=10)[0])
                time.sleep(0.02)
        finally:
            stop.set()
            worker.join(30)
        assert not worker.is_alive()
        after = rss_kib(process.pid)
    worst = max(polls)
    print(
        f"heavy answers: {len(heavy)}, slowest {max(t for t, _ in heavy):.3f} s; polls: "
        f"{len(polls)}, worst {worst:.3f} s; VmRSS {before // 1024} MiB -> {after // 1024} MiB"
    )
    assert len(heavy) >= 4
    assert heavy[0][1] == ["QUERY_TOO_COMPLEX"]  # every run's items: refused from the counts
    assert {tuple(codes) for _, codes in heavy} <= {("QUERY_TOO_COMPLEX",), (), ("TIMEOUT",)}
    assert max(t for t, _ in heavy) < TIMEOUT_S + 1.0  # each by its deadline
    assert worst < 1.0
    assert after - before < 200 * 1024  # KiB


def test_each_subscription_event_has_an_item_budget_of_its_own(
    store: Path, index_path: Path
) -> None:
    """Two runs of ~3,000 items with a budget of 4,000: each event is built in full (one budget
    for the whole subscription would refuse the second); a run over it is an error event."""

    async def scenario(url: str) -> list[dict[str, Any]]:
        sub = await Subscriber.connect(url)
        await sub.subscribe("subscription { executionAdded { executionId items { stage } } }")
        await asyncio.sleep(0.3)  # the subscription is registered
        for n in range(3):
            data = heavy_record(n, extra=6000 if n == 2 else 3000)
            (store / f"{data['execution_id']}.json").write_bytes(json.dumps(data).encode())
            await asyncio.sleep(0.3)  # one event each
        messages = [await sub.receive(10) for _ in range(3)]
        await sub.close()
        return messages

    with serve(store, index_path, max_items_per_request=4000) as server:
        messages = asyncio.run(scenario(server.ws_url))
    assert [m["type"] for m in messages] == ["next"] * 3
    full = [m["payload"] for m in messages if "errors" not in m["payload"]]
    assert [len(p["data"]["executionAdded"]["items"]) for p in full] == [3007, 3007]
    [over] = [m["payload"] for m in messages if "errors" in m["payload"]]
    assert [e["extensions"]["code"] for e in over["errors"]] == ["QUERY_TOO_COMPLEX"]
    assert over["errors"][0]["extensions"]["items"] == 6007

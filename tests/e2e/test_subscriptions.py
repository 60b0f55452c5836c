"""Live subscriptions end to end: real uvicorn on 127.0.0.1, real WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websockets

from storage.demo.writer import write_atomically, write_like_tracker
from tests.e2e.server import Subscriber, serve
from tests.factory import record_dict, write_record

ADDED = """subscription($filter: ExecutionFilter) {
  executionAdded(filter: $filter) { executionId configName itemCount items { sequenceNumber } }
}"""


def new_record(n: int, **kwargs: Any) -> dict[str, Any]:
    return record_dict(f"exec_20251201_1000{n:02d}_{n:08x}", **kwargs)


async def collect(sub: Subscriber, count: int, timeout: float) -> list[dict[str, Any]]:
    """``count`` payloads of 'next' messages (fails on errors or time-out)."""
    events = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        message = await sub.receive(max(0.01, deadline - time.monotonic()))
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        events.append(message["payload"]["data"])
    return events


async def nothing_more(sub: Subscriber, wait: float = 0.7) -> None:
    try:
        message = await sub.receive(wait)
    except TimeoutError:
        return
    pytest.fail(f"unexpected message {message}")


def test_each_record_is_announced_once_when_complete(store: Path, index_path: Path) -> None:
    async def scenario(url: str) -> None:
        sub = await Subscriber.connect(url)
        await sub.subscribe(ADDED)
        await asyncio.sleep(0.3)  # the subscription is registered
        records = [new_record(1, shape="stillepost"), new_record(2, shape="image")]
        # Like the real tracker: truncate, then stream with pauses (empty, half, whole).
        writer = threading.Thread(
            target=write_like_tracker,
            args=(store / f"{records[0]['execution_id']}.json", records[0]),
            kwargs={"chunks": 5, "pause": 0.1},
        )
        writer.start()
        await asyncio.to_thread(writer.join)
        completed = time.monotonic()
        first = await collect(sub, 1, 1.0)
        latencies = [time.monotonic() - completed]
        write_atomically(store / f"{records[1]['execution_id']}.json", records[1])
        completed = time.monotonic()
        second = await collect(sub, 1, 1.0)
        latencies.append(time.monotonic() - completed)
        got = [e["executionAdded"] for e in first + second]
        assert [g["executionId"] for g in got] == [r["execution_id"] for r in records]
        assert [g["itemCount"] for g in got] == [len(r["items"]) for r in records]
        assert [len(g["items"]) for g in got] == [len(r["items"]) for r in records]
        assert max(latencies) < 1.0
        await nothing_more(sub)
        await sub.close()

    with serve(store, index_path) as server:
        asyncio.run(scenario(server.ws_url))


def test_filtered_subscription_receives_only_matching_runs(store: Path, index_path: Path) -> None:
    async def scenario(url: str) -> None:
        sub = await Subscriber.connect(url)
        await sub.subscribe(
            ADDED, {"filter": {"configNames": ["bauhaus"], "safetyLevels": ["kids"]}}
        )
        await asyncio.sleep(0.3)
        write_record(store, new_record(3, config_name="dada"))
        write_record(store, new_record(4, config_name="bauhaus", safety_level="adult"))
        write_record(store, new_record(5, config_name="bauhaus"))
        got = await collect(sub, 1, 2.0)
        assert got[0]["executionAdded"]["executionId"] == new_record(5)["execution_id"]
        await nothing_more(sub)
        await sub.close()

    with serve(store, index_path) as server:
        asyncio.run(scenario(server.ws_url))


def test_rewritten_file_is_announced_as_changed(store: Path, index_path: Path) -> None:
    path = write_record(store, new_record(6, shape="text"))

    async def scenario(url: str) -> None:
        sub = await Subscriber.connect(url)
        await sub.subscribe("subscription { executionChanged { executionId itemCount } }")
        await asyncio.sleep(0.3)
        write_atomically(path, new_record(6, shape="multi"))
        got = await collect(sub, 1, 1.5)
        assert got[0]["executionChanged"]["itemCount"] == len(new_record(6, shape="multi")["items"])
        await sub.close()

    with serve(store, index_path) as server:
        asyncio.run(scenario(server.ws_url))


def test_fifty_subscribers_receive_a_burst_of_200_files(store: Path, index_path: Path) -> None:
    async def scenario(url: str) -> None:
        subs = [await Subscriber.connect(url) for _ in range(50)]
        for sub in subs:
            await sub.subscribe("subscription { executionAdded { executionId } }")
        await asyncio.sleep(0.5)
        expected = set()
        for n in range(200):
            rec = record_dict(f"exec_20251202_{n:06d}_burst{n:03d}", shape="text")
            write_record(store, rec)
            expected.add(rec["execution_id"])
        results = await asyncio.gather(*(collect(sub, 200, 20.0) for sub in subs))
        for events in results:
            ids = [e["executionAdded"]["executionId"] for e in events]
            assert len(ids) == len(set(ids)) == 200
            assert set(ids) == expected
        await asyncio.gather(*(nothing_more(sub, 0.3) for sub in subs))
        await asyncio.gather(*(sub.close() for sub in subs))

    with serve(store, index_path) as server:
        asyncio.run(scenario(server.ws_url))


def test_connection_limits_and_origins(store: Path, index_path: Path) -> None:
    async def scenario(url: str) -> None:
        # No connection_init: closed by the server.
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4408
        # A cap on subscriptions per connection.
        sub = await Subscriber.connect(url)
        for _ in range(3):
            await sub.subscribe("subscription { executionAdded { executionId } }")
        await sub.subscribe("subscription { executionAdded { executionId } }")
        message = await sub.receive(2.0)
        assert message["type"] == "error", message
        await sub.close()
        # A page on a foreign origin may not open a WebSocket.
        with pytest.raises(websockets.InvalidStatus) as refused:
            await Subscriber.connect(url, origin="https://evil.example")
        assert refused.value.response.status_code == 403
        # The legacy graphql-ws protocol is not offered.
        async with websockets.connect(url, subprotocols=["graphql-ws"]) as ws:
            assert ws.subprotocol is None

    with serve(
        store, index_path, connection_init_timeout_s=0.5, max_subscriptions_per_connection=3
    ) as server:
        asyncio.run(scenario(server.ws_url))


def test_shutdown_ends_subscriptions_and_leaves_no_watcher(store: Path, index_path: Path) -> None:
    async def open_sub(url: str) -> Subscriber:
        sub = await Subscriber.connect(url)
        await sub.subscribe("subscription { executionAdded { executionId } }")
        return sub

    with serve(store, index_path) as server:
        loop = asyncio.new_event_loop()
        sub = loop.run_until_complete(open_sub(server.ws_url))
        with urllib.request.urlopen(f"{server.http_url}/healthz") as response:
            assert json.load(response)["watching"] is True
        server.stop()

        async def ends() -> None:
            try:
                message = await sub.receive(5.0)
                assert message["type"] == "complete"
            except websockets.ConnectionClosed:
                pass

        loop.run_until_complete(ends())
        loop.run_until_complete(sub.close())
        loop.close()
    assert not [t for t in threading.enumerate() if t.name == "execgraph-watcher"]


def test_export_progress_is_pushed_until_done(
    populated_store: tuple[Path, list[dict[str, Any]]],
    index_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from graph.services import export_jobs

    monkeypatch.setattr(export_jobs, "INLINE_RECORDS", {"PDF": 1})

    async def scenario(http_url: str, ws_url: str) -> None:
        body = json.dumps(
            {
                "query": "mutation { exportExecutions(input: {format: PDF, filter: {}})"
                " { id status } }"
            }
        ).encode()
        request = urllib.request.Request(
            f"{http_url}/graphql", data=body, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request) as response:
            job = json.load(response)["data"]["exportExecutions"]
        sub = await Subscriber.connect(ws_url)
        await sub.subscribe(
            "subscription($id: ID!) { exportJobProgress(id: $id)"
            " { status progress file { url } } }",
            {"id": job["id"]},
        )
        updates = []
        while True:
            message = await sub.receive(30.0)
            if message["type"] == "complete":
                break
            assert message["type"] == "next", message
            updates.append(message["payload"]["data"]["exportJobProgress"])
        progress = [u["progress"] for u in updates]
        assert progress == sorted(progress)
        assert updates[-1]["status"] == "DONE"
        assert updates[-1]["file"]["url"]
        assert len(updates) >= 2
        await sub.close()

    with serve(populated_store[0], index_path, export_dir=tmp_path / "exports") as server:
        asyncio.run(scenario(server.http_url, server.ws_url))

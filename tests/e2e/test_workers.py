"""Real processes: ``execgraph serve --workers 4``, two ``serve`` processes on one store, and two
processes creating one fresh index at once.

Every subscriber on every process gets every new run exactly once; an export job made on one
worker is seen, followed and downloaded from all; nobody crashes on a shared index. The servers
listen on 127.0.0.1 on a free port; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.e2e.server import Server, graphql, http_json, serving, started, wait_ready
from tests.factory import dump, record_dict

ADDED = "subscription { executionAdded { executionId } }"


def worker_subscribers(server: Server, workers: int, tries: int = 300) -> dict[int, int]:
    """pid -> subscribers, sampled from /healthz on fresh connections until every worker
    answered (or ``tries`` ran out)."""
    seen: dict[int, int] = {}
    for _ in range(tries):
        health = http_json(f"{server.http}/healthz", timeout=5)
        seen[health["pid"]] = health["subscribers"]
        if len(seen) == workers:
            break
    return seen


def settled_spread(server: Server, workers: int, total: int, limit: float = 15) -> dict[int, int]:
    """pid -> subscribers once every worker answered and they hold ``total`` between them."""
    deadline = time.monotonic() + limit
    seen: dict[int, int] = {}
    while time.monotonic() < deadline:
        health = http_json(f"{server.http}/healthz", timeout=5)
        seen[health["pid"]] = health["subscribers"]
        if len(seen) == workers and sum(seen.values()) == total:
            break
    return seen


def decoded(frame: str | bytes) -> dict[str, Any]:
    """A graphql-transport-ws message, from a text frame (or a binary one, tolerated)."""
    text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
    message: dict[str, Any] = json.loads(text)
    return message


class Subscription:
    """One WebSocket with one subscription, collecting what it is sent."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    @classmethod
    async def open(
        cls, url: str, query: str = ADDED, variables: dict[str, Any] | None = None
    ) -> Subscription:
        ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10)
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = decoded(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        payload = {"query": query, "variables": variables or {}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        return cls(ws)

    async def collect(self, count: int, limit: float) -> None:
        """Receive until ``count`` messages came, the operation completed, or ``limit`` s."""
        deadline = time.monotonic() + limit
        while len(self.received) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                message = decoded(await asyncio.wait_for(self.ws.recv(), left))
            except TimeoutError:
                return
            if message["type"] == "complete":
                return
            assert message["type"] == "next", message
            self.received.append(message["payload"]["data"])

    def added_ids(self) -> list[str]:
        return [m["executionAdded"]["executionId"] for m in self.received]


def write_runs(store: Path, prefix: str, count: int, pause: float = 0.005) -> list[str]:
    """Write ``count`` records the way a tracker finishes them (complete file renamed in)."""
    ids = []
    for n in range(count):
        data = record_dict(f"exec_20251201_{n:06d}_{prefix}")
        temp = store.parent / f".{data['execution_id']}.part"
        temp.write_bytes(dump(data))
        os.replace(temp, store / f"{data['execution_id']}.json")
        ids.append(data["execution_id"])
        time.sleep(pause)
    return ids


def tally(subs: list[Subscription], expected: list[str]) -> tuple[int, int, int]:
    """(delivered, lost, duplicated) over all subscribers."""
    delivered = lost = duplicated = 0
    for sub in subs:
        counts = Counter(sub.added_ids())
        delivered += sum(counts[eid] > 0 for eid in expected)
        lost += sum(counts[eid] == 0 for eid in expected)
        duplicated += sum(n - 1 for n in counts.values() if n > 1)
        assert set(counts) <= set(expected), set(counts) - set(expected)
    return delivered, lost, duplicated


async def deliver(subs: list[Subscription], store: Path, runs: int, prefix: str) -> dict[str, Any]:
    """Write ``runs`` runs while ``subs`` listen, collect; the figures."""
    started = time.monotonic()
    expected = await asyncio.to_thread(write_runs, store, prefix, runs)
    await asyncio.gather(*(sub.collect(runs, 40) for sub in subs))
    elapsed = time.monotonic() - started
    await asyncio.gather(*(sub.collect(runs + 1, 1.0) for sub in subs))  # late duplicates?
    delivered, lost, duplicated = tally(subs, expected)
    for sub in subs:
        await sub.ws.close()
    return {
        "subscribers": len(subs),
        "runs": runs,
        "delivered": delivered,
        "lost": lost,
        "duplicated": duplicated,
        "seconds": round(elapsed, 2),
    }


def seed_store(path: Path, count: int) -> list[str]:
    path.mkdir(parents=True)
    ids = []
    for n in range(count):
        data = record_dict(f"exec_20251101_{n:06d}_seed0000")
        (path / f"{data['execution_id']}.json").write_bytes(dump(data))
        ids.append(data["execution_id"])
    return ids


# -- serve --workers 4 -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def four_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, list[str]]]:
    root = tmp_path_factory.mktemp("workers")
    seeded = seed_store(root / "store", 30)
    with serving(root / "store", root / "home", workers=4) as server:
        deadline = time.monotonic() + 45
        while len(worker_subscribers(server, 4, tries=40)) < 4:  # every worker is up
            assert time.monotonic() < deadline, "not every worker came up"
        yield server, seeded


def test_four_workers_deliver_every_new_run_to_every_subscriber_once(
    four_workers: tuple[Server, list[str]],
) -> None:
    server, _ = four_workers

    async def scenario() -> dict[str, Any]:
        # Connections are spread by the kernel: open until every worker has subscribers.
        subs = [await Subscription.open(server.ws) for _ in range(20)]
        spread = settled_spread(server, 4, len(subs))
        while min(spread.values(), default=0) == 0 and len(subs) < 60:
            subs.append(await Subscription.open(server.ws))
            spread = settled_spread(server, 4, len(subs))
        assert len(spread) == 4, spread
        assert min(spread.values()) > 0, spread
        assert sum(spread.values()) == len(subs), spread
        figures = await deliver(subs, server_store(server), 100, "workers4")
        figures["per worker"] = sorted(spread.values())
        return figures

    figures = asyncio.run(scenario())
    print("--workers 4:", figures)
    assert figures["lost"] == figures["duplicated"] == 0, figures
    assert figures["delivered"] == figures["subscribers"] * 100


def server_store(server: Server) -> Path:
    """The store a server was started on (from its command line)."""
    args = server.process.args
    assert isinstance(args, list)
    return Path(str(args[args.index("--store") + 1]))


def test_an_export_job_is_seen_followed_and_downloaded_from_every_worker(
    four_workers: tuple[Server, list[str]],
) -> None:
    server, seeded = four_workers
    job = graphql(
        server,
        "mutation($ids: [String!]) { exportExecutions(input: {format: PDF, executionIds: $ids})"
        " { id status } }",
        {"ids": seeded},
    )["exportExecutions"]
    assert job["status"] in ("PENDING", "RUNNING")  # 30 PDF runs: in the background

    async def follow() -> list[list[dict[str, Any]]]:
        query = "subscription($id: ID!) { exportJobProgress(id: $id) { status progress } }"
        subs = [await Subscription.open(server.ws, query, {"id": job["id"]}) for _ in range(8)]
        await asyncio.gather(*(sub.collect(10_000, 50) for sub in subs))
        for sub in subs:
            await sub.ws.close()
        return [[m["exportJobProgress"] for m in sub.received] for sub in subs]

    followed = asyncio.run(follow())
    for updates in followed:
        assert updates, "a follower heard nothing"
        assert updates[-1] == {"status": "DONE", "progress": 1.0}, updates
        progress = [u["progress"] for u in updates]
        assert progress == sorted(progress)

    query = "query($id: ID!) { exportJob(id: $id) { status recordCount file { url sizeBytes } } }"
    answers = [graphql(server, query, {"id": job["id"]})["exportJob"] for _ in range(16)]
    assert all(a is not None and a["status"] == "DONE" for a in answers), answers
    assert all(a["recordCount"] == len(seeded) for a in answers)
    url = answers[0]["file"]["url"]
    for _ in range(16):
        request = urllib.request.Request(url, headers={"connection": "close"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        assert body.startswith(b"%PDF")
        assert len(body) == answers[0]["file"]["sizeBytes"]
    # The 16 questions went to more than one worker.
    assert len(worker_subscribers(server, 4, tries=16)) > 1


# -- several serve processes on one store ---------------------------------------------------------


@pytest.mark.parametrize("shared_index", [True, False], ids=["one index file", "two index files"])
def test_two_servers_on_one_store_deliver_every_new_run_once(
    tmp_path: Path, shared_index: bool
) -> None:
    store = tmp_path / "store"
    seed_store(store, 10)
    index_a = tmp_path / "index" / "a.sqlite3"
    index_b = index_a if shared_index else tmp_path / "index" / "b.sqlite3"
    with (
        serving(store, tmp_path / "home", index=index_a, name="a") as a,
        serving(store, tmp_path / "home", index=index_b, name="b") as b,
    ):

        async def scenario() -> dict[str, Any]:
            subs = [await Subscription.open(server.ws) for server in (a, b) for _ in range(10)]
            for server in (a, b):  # each subscription registered
                assert settled_spread(server, 1, 10) == {server.process.pid: 10}
            return await deliver(subs, store, 100, "twoserve")

        figures = asyncio.run(scenario())
        print("two servers", "(one index)" if shared_index else "(two indexes)", figures)
        assert figures["lost"] == figures["duplicated"] == 0, figures
        assert figures["delivered"] == 20 * 100
        count = "{ executions(first: 5) { totalCount edges { node { executionId } } } }"
        assert graphql(a, count) == graphql(b, count)
        for server in (a, b):
            assert "Traceback" not in server.log.read_text(), server.log.read_text()[-3000:]


def test_two_processes_creating_one_fresh_index_both_come_up_alike(tmp_path: Path) -> None:
    from storage.index import BULK_THRESHOLD

    store = tmp_path / "store"
    seed_store(store, BULK_THRESHOLD + 200)  # large enough for the cold build's file swap
    index = tmp_path / "index" / "shared.sqlite3"
    home = tmp_path / "home"
    with (
        started(store, home, index=index, workers=1, name="a") as a,
        started(store, home, index=index, workers=1, name="b") as b,
    ):
        wait_ready(a, 90)
        wait_ready(b, 90)
        query = (
            "{ executions(first: 3) { totalCount edges { node { executionId } } }"
            " storageStats { invalidRecords { fileName } } }"
        )
        first, second = graphql(a, query), graphql(b, query)
        assert first == second
        assert first["executions"]["totalCount"] == BULK_THRESHOLD + 200
        for server in (a, b):
            text = server.log.read_text()
            assert "Traceback" not in text, text[-3000:]
            assert "no such table" not in text

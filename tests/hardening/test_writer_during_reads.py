"""A writer adds records for 30 s while 8 clients read: no error, nothing half-written served, and
the final counts are exact.

The upstream tracker truncates a record's final path and streams into it, so for a moment every
new file is empty, then half a record. A fixed writer would rename a finished temporary file into
place. The writer here alternates both (``storage.demo.writer``) into the store of a real uvicorn
server that watches it, while 8 client threads page through the runs with cursors, filter them,
read runs with their items and read items across runs, the way the UI and researchers do.

Every run or item served must equal what the writer wrote for its id (the writer records a
record in ``written`` before it starts writing, so a run served the instant its last byte lands
is still known); a cursor walk never repeats a run and never misses one of the initial store
(the keyset cursors promise a stable walk while runs arrive); a client's ``totalCount`` never
goes down. After the writer stops, the index must catch
up within 2 s to the exact number of runs, report no invalid file, and serve every record whole.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pytest

from storage.demo import generate_records
from storage.demo.writer import serialize_record, write_atomically, write_like_tracker
from tests.e2e.server import serve
from tests.hardening.robustness import (
    ITEM_FIELDS,
    RUN_FIELDS,
    Answer,
    GraphQLHttp,
    duplicates,
    expected_item,
    run_mismatches,
    server_errors,
)

WRITE_SECONDS: Final = 30.0
CLIENTS: Final = 8
INITIAL: Final = 200
MAX_WRITES: Final = 3000
#: Clients stop at the latest this long after the writer (a bound, not an expectation).
CLIENT_GRACE_S: Final = 10.0
CATCH_UP_S: Final = 2.0
START, END = datetime(2025, 11, 1), datetime(2026, 1, 31)

RUN_PAGE: Final = f"""query($filter: ExecutionFilter, $first: Int, $after: String) {{
  executions(filter: $filter, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {RUN_FIELDS} }} }}
  }}
}}"""
RUNS_WITH_ITEMS: Final = f"""query($filter: ExecutionFilter, $first: Int) {{
  executions(filter: $filter, first: $first) {{
    totalCount edges {{ node {{ {RUN_FIELDS} items {{ {ITEM_FIELDS} }} }} }}
  }}
}}"""
ITEM_PAGE: Final = f"""query($filter: ItemFilter, $after: String) {{
  items(filter: $filter, first: 100, after: $after) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{ {ITEM_FIELDS} execution {{ executionId }} }} }}
  }}
}}"""
DETAIL: Final = f"""query($id: String!) {{
  execution(executionId: $id) {{ {RUN_FIELDS} items {{ {ITEM_FIELDS} }} }}
}}"""


@dataclass
class Shared:
    """What the writer and the clients share (``written`` only grows; dict ops are atomic)."""

    initial: dict[str, dict[str, Any]]
    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    methods: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    stopped_at: float = 0.0  # time.monotonic() when the writer stopped
    lock: threading.Lock = field(default_factory=threading.Lock)
    problems: list[str] = field(default_factory=list)
    server_errors: int = 0
    requests: Counter[str] = field(default_factory=Counter)

    def record(self, execution_id: str) -> dict[str, Any] | None:
        return self.initial.get(execution_id) or self.written.get(execution_id)

    def report(self, problem: str) -> None:
        with self.lock:
            if len(self.problems) < 200:
                self.problems.append(problem)

    def check_answer(self, what: str, answer: Answer) -> dict[str, Any] | None:
        """The data of an answer without any error; otherwise report it and return None."""
        with self.lock:
            self.requests[what] += 1
            self.server_errors += answer.status >= 500 or bool(server_errors(answer.body))
        if not answer.ok:
            self.report(f"{what}: {answer.describe()[:800]}")
            return None
        data: dict[str, Any] = answer.body["data"]
        return data

    def check_run(self, served: dict[str, Any]) -> None:
        record = self.record(served["executionId"])
        if record is None:
            self.report(f"{served['executionId']} served but never written")
            return
        size = len(serialize_record(record))
        for problem in run_mismatches(record, served, size_bytes=size)[:5]:
            self.report(problem)

    def check_item(self, served: dict[str, Any]) -> None:
        record = self.record(served["execution"]["executionId"])
        if record is None:
            self.report(f"item of {served['execution']['executionId']}, never written, served")
            return
        expected = expected_item(record, served["sequenceNumber"] - 1)
        for key, value in expected.items():
            if served.get(key) != value:
                self.report(f"{expected['id']}.{key}: served {served.get(key)!r}, wrote {value!r}")


def writer(store: Path, shared: Shared, records: list[dict[str, Any]]) -> None:
    """Alternate the tracker's truncate-and-stream and an atomic rename, for WRITE_SECONDS."""
    deadline = time.monotonic() + WRITE_SECONDS
    try:
        for n, record in enumerate(records):
            if time.monotonic() >= deadline:
                break
            shared.written[record["execution_id"]] = record  # known before its first byte
            path = store / f"{record['execution_id']}.json"
            if n % 2 == 0:
                write_like_tracker(path, record, chunks=4, pause=0.02)
                shared.methods["truncate-and-stream"] += 1
            else:
                write_atomically(path, record)
                shared.methods["atomic rename"] += 1
            time.sleep(0.03)
    finally:
        shared.stopped_at = time.monotonic()
        shared.stop.set()


def client(url: str, shared: Shared, number: int) -> None:
    """Read like the UI until the writer stops: walks, filtered pages, details, items."""
    rng = random.Random(number)
    http = GraphQLHttp(url)
    last_total = -1
    configs = sorted({r["config_name"] for r in shared.initial.values()})
    levels = sorted({r["safety_level"] for r in shared.initial.values()})
    try:
        deadline = time.monotonic() + WRITE_SECONDS + CLIENT_GRACE_S
        while not shared.stop.is_set() and time.monotonic() < deadline:
            action = rng.choice(["walk", "filtered", "filtered", "detail", "detail", "items"])
            if action == "walk":
                last_total = walk(http, shared, last_total)
            elif action == "filtered":
                flt = {"configNames": [rng.choice(configs)], "safetyLevels": [rng.choice(levels)]}
                data = shared.check_answer(
                    "filtered runs with items",
                    http.post(RUNS_WITH_ITEMS, {"filter": flt, "first": rng.choice([10, 25])}),
                )
                for edge in (data or {}).get("executions", {}).get("edges", []):
                    node = edge["node"]
                    shared.check_run(node)
                    if node["configName"] not in flt["configNames"]:
                        shared.report(f"{node['executionId']} does not match {flt}")
            elif action == "detail":
                recent = list(shared.written)[-20:]
                pool = recent if recent and rng.random() < 0.7 else list(shared.initial)
                data = shared.check_answer("detail", http.post(DETAIL, {"id": rng.choice(pool)}))
                if data and data["execution"] is not None:
                    shared.check_run(data["execution"])
            else:
                item_types = rng.choice([["INTERCEPTION_ITERATION"], ["OUTPUT_IMAGE"], None])
                after = None
                for _ in range(3):
                    data = shared.check_answer(
                        "items across runs",
                        http.post(ITEM_PAGE, {"filter": {"itemTypes": item_types}, "after": after}),
                    )
                    if data is None:
                        break
                    for edge in data["items"]["edges"]:
                        shared.check_item(edge["node"])
                    if not data["items"]["pageInfo"]["hasNextPage"]:
                        break
                    after = data["items"]["pageInfo"]["endCursor"]
    except Exception as exc:  # a client that dies must fail the test, not vanish
        shared.report(f"client {number} crashed: {exc!r}")
    finally:
        http.close()


def walk(http: GraphQLHttp, shared: Shared, last_total: int) -> int:
    """Page through every run with cursors; return the first page's totalCount."""
    existing = set(shared.initial)  # surely indexed before the walk began
    seen: list[str] = []
    after = None
    total = last_total
    for page_number in range(200):
        data = shared.check_answer("list page", http.post(RUN_PAGE, {"first": 50, "after": after}))
        if data is None:
            return total
        connection = data["executions"]
        if page_number == 0:
            if connection["totalCount"] < last_total:
                shared.report(f"totalCount went down: {last_total} -> {connection['totalCount']}")
            total = connection["totalCount"]
        for edge in connection["edges"]:
            shared.check_run(edge["node"])
            seen.append(edge["node"]["executionId"])
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    if repeated := duplicates(seen):
        shared.report(f"a walk served {repeated[:5]} twice")
    if missing := existing - set(seen):
        shared.report(f"a walk skipped {sorted(missing)[:5]} ({len(missing)} runs)")
    return total


@pytest.mark.slow
def test_reads_stay_exact_while_the_tracker_writes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    initial = {
        r["execution_id"]: r for r in generate_records(INITIAL, seed=31, start=START, end=END)
    }
    for eid, record in initial.items():
        (store / f"{eid}.json").write_bytes(serialize_record(record))
    to_write = [
        r
        for r in generate_records(MAX_WRITES, seed=32, start=START, end=END)
        if r["execution_id"] not in initial
    ]
    shared = Shared(initial)
    with serve(store, tmp_path / "cache" / "index.sqlite3", watch=True) as server:
        threads = [
            threading.Thread(target=writer, args=(store, shared, to_write), name="writer"),
            *(
                threading.Thread(target=client, args=(server.http_url, shared, n), name=f"c{n}")
                for n in range(CLIENTS)
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WRITE_SECONDS + CLIENT_GRACE_S + 30)
        assert not any(thread.is_alive() for thread in threads), "a thread did not stop"
        during = list(shared.problems)
        print(
            f"\nwrote {len(shared.written)} records ({dict(shared.methods)}) during "
            f"{sum(shared.requests.values())} reads ({dict(shared.requests)}); "
            f"{len(during)} problems while writing"
        )

        # After the writer: the index catches up, and everything is served whole and exactly.
        final = _settled(server.http_url, INITIAL + len(shared.written), shared.stopped_at)
        http = GraphQLHttp(server.http_url)
        try:
            everything = _walk_all_with_items(http)
        finally:
            http.close()
        shared.problems.clear()
        for node in everything:
            shared.check_run(node)
        after = list(shared.problems)

    assert shared.server_errors == 0, during[:20]
    assert during == [], (
        f"{len(during)} problems while the writer wrote (and {len(after)} after):\n"
        + "\n".join(during[:30])
    )
    assert len(shared.written) >= 50, "the writer barely wrote: the test proves little"
    assert final["totalCount"] == INITIAL + len(shared.written)
    assert final["storageStats"] == {
        "totalRecords": INITIAL + len(shared.written),
        "invalidRecordCount": 0,
    }
    assert duplicates(n["executionId"] for n in everything) == []
    assert {n["executionId"] for n in everything} == set(initial) | set(shared.written)
    assert after == []


def _settled(url: str, expected: int, writer_stopped_at: float) -> dict[str, Any]:
    """Poll the counts until CATCH_UP_S after the writer stopped (at least once); the last
    answer."""
    http = GraphQLHttp(url)
    query = """{ executions(first: 0) { totalCount }
                 storageStats { totalRecords invalidRecordCount } }"""
    try:
        deadline = writer_stopped_at + CATCH_UP_S
        while True:
            data = http.data(query)
            result = {"totalCount": data["executions"]["totalCount"], **data}
            if data["executions"]["totalCount"] == expected or time.monotonic() >= deadline:
                return result
            time.sleep(0.05)
    finally:
        http.close()


def _walk_all_with_items(http: GraphQLHttp) -> list[dict[str, Any]]:
    query = f"""query($after: String) {{ executions(first: 100, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      edges {{ node {{ {RUN_FIELDS} items {{ {ITEM_FIELDS} }} }} }} }} }}"""
    nodes: list[dict[str, Any]] = []
    after = None
    for _ in range(500):
        connection = http.data(query, {"after": after})["executions"]
        nodes += [edge["node"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("the walk does not end")

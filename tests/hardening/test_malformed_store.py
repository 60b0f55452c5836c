"""A store full of broken files among good ones: the good data is served whole and exactly, every
broken file is reported once with a reason, and the server stays up.

The real tracker leaves empty, half-written and truncated files behind forever, and older or
hand-edited stores hold everything else in ``storage.demo.MALFORMED_KINDS``. Three files of every
kind (three variants each) sit among generated records; a real uvicorn server indexes the store
at start-up and then answers every kind of query the UI and researchers send. One bad file that
slips through as a run, or one query that trips over a bad file, fails this suite.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from storage.demo import MALFORMED_KINDS, generate_records, write_malformed
from storage.demo.writer import serialize_record
from tests.e2e.server import RunningServer, serve
from tests.hardening.robustness import (
    ITEM_FIELDS,
    RUN_FIELDS,
    GraphQLHttp,
    duplicates,
    expected_item,
    global_id,
    run_mismatches,
    walk_executions,
)

GOOD_COUNT = 40
VARIANTS = (0, 1, 2)
DETAIL = f"{RUN_FIELDS} items {{ {ITEM_FIELDS} }}"


@dataclass
class BrokenStore:
    """The store under test and what it holds."""

    store: Path
    good: dict[str, dict[str, Any]]  # execution id -> record, for every servable file
    bad: dict[str, str]  # file name -> malformed kind
    server: RunningServer
    http: GraphQLHttp

    def size(self, execution_id: str) -> int:
        return (self.store / f"{execution_id}.json").stat().st_size

    def check_run(self, served: dict[str, Any]) -> list[str]:
        """How a served run differs from the good record of its id (or that it has none)."""
        record = self.good.get(served["executionId"])
        if record is None:
            return [f"{served['executionId']} is served but is no good record of the store"]
        return run_mismatches(record, served, size_bytes=self.size(record["execution_id"]))


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenStore]:
    root = tmp_path_factory.mktemp("malformed")
    store = root / "store"
    store.mkdir()
    good: dict[str, dict[str, Any]] = {}
    for record in generate_records(GOOD_COUNT, seed=4242):
        (store / f"{record['execution_id']}.json").write_bytes(serialize_record(record))
        good[record["execution_id"]] = record
    bad: dict[str, str] = {}
    for kind in MALFORMED_KINDS:
        for index in VARIANTS:
            path = write_malformed(store, kind, index=index)
            assert path.name not in bad, f"write_malformed reused the name {path.name}"
            bad[path.name] = kind
            if kind == "duplicate_id":
                # The valid original the copy claims to be is served; the copy is not.
                original = store / f"{path.name.removesuffix('_copy.json')}.json"
                record = json.loads(original.read_bytes())
                good[record["execution_id"]] = record
    assert len(MALFORMED_KINDS) >= 14
    assert len(bad) == len(MALFORMED_KINDS) * len(VARIANTS)
    with serve(store, root / "cache" / "index.sqlite3", watch=False) as server:
        http = GraphQLHttp(server.http_url)
        try:
            yield BrokenStore(store, good, bad, server, http)
        finally:
            http.close()


def test_every_bad_file_is_reported_once_with_a_reason(broken: BrokenStore) -> None:
    stats = broken.http.data(
        "{ storageStats { totalRecords invalidRecordCount invalidRecords { fileName reason } } }"
    )["storageStats"]
    reported = Counter(entry["fileName"] for entry in stats["invalidRecords"])
    assert {name: n for name, n in reported.items() if n != 1} == {}, "reported more than once"
    missing = sorted(f"{name} ({broken.bad[name]})" for name in set(broken.bad) - set(reported))
    assert missing == [], "bad files not reported"
    assert sorted(set(reported) - set(broken.bad)) == [], "good files reported as bad"
    blank = [e["fileName"] for e in stats["invalidRecords"] if not e["reason"].strip()]
    assert blank == [], "reported without a reason"
    assert stats["invalidRecordCount"] == len(broken.bad)
    assert stats["totalRecords"] == len(broken.good)


def test_the_list_serves_each_good_run_once_and_exactly(broken: BrokenStore) -> None:
    nodes, total = walk_executions(broken.http, fields=DETAIL, page_size=7)
    assert duplicates(n["executionId"] for n in nodes) == []
    assert sorted(n["executionId"] for n in nodes) == sorted(broken.good)
    assert total == len(broken.good)
    problems = [problem for node in nodes for problem in broken.check_run(node)]
    assert problems == []


@pytest.mark.parametrize(
    ("field", "key"),
    [
        ("configNames", "config_name"),
        ("safetyLevels", "safety_level"),
        ("userIds", "user_id"),
        ("executionModes", "execution_mode"),
    ],
)
def test_filters_select_exactly_the_good_runs_that_match(
    broken: BrokenStore, field: str, key: str
) -> None:
    by_value: dict[str, set[str]] = {}
    for eid, record in broken.good.items():
        by_value.setdefault(record[key], set()).add(eid)
    for value, expected in by_value.items():
        nodes, total = walk_executions(
            broken.http, fields=RUN_FIELDS, variables={"filter": {field: [value]}}, page_size=10
        )
        assert {n["executionId"] for n in nodes} == expected, (field, value)
        assert total == len(expected), (field, value)
        assert [p for node in nodes for p in broken.check_run(node)] == []


def test_date_range_item_type_and_text_filters(broken: BrokenStore) -> None:
    times = sorted(datetime.fromisoformat(r["timestamp"]) for r in broken.good.values())
    since, until = times[len(times) // 4], times[3 * len(times) // 4]
    nodes, total = walk_executions(
        broken.http,
        variables={"filter": {"since": since.isoformat(), "until": until.isoformat()}},
    )
    expected = {
        eid
        for eid, r in broken.good.items()
        if since <= datetime.fromisoformat(r["timestamp"]) < until
    }
    assert {n["executionId"] for n in nodes} == expected
    assert total == len(expected)

    blocked = {
        eid
        for eid, r in broken.good.items()
        if any(i["item_type"] == "stage3_blocked" for i in r["items"])
    }
    nodes, _ = walk_executions(
        broken.http, variables={"filter": {"hasItemTypes": ["STAGE3_BLOCKED"]}}
    )
    assert {n["executionId"] for n in nodes} == blocked

    # Full-text search reads the index only: it must not trip over any bad file.
    for text in ("Fuchs", "cat", "고양이", "the colours"):
        nodes, _ = walk_executions(broken.http, variables={"filter": {"text": text}})
        assert {n["executionId"] for n in nodes} <= set(broken.good), text


def test_items_across_runs_are_the_good_items_in_order(broken: BrokenStore) -> None:
    query = f"""query($after: String, $filter: ItemFilter) {{
      items(first: 150, after: $after, filter: $filter) {{
        totalCount pageInfo {{ hasNextPage endCursor }}
        edges {{ node {{ {ITEM_FIELDS} execution {{ executionId }} }} }}
      }}
    }}"""
    for item_filter, keep in (
        (None, lambda item: True),
        (
            {"itemTypes": ["INTERCEPTION_ITERATION", "OUTPUT_IMAGE"]},
            lambda item: item["item_type"] in ("interception_iteration", "output_image"),
        ),
    ):
        served: list[dict[str, Any]] = []
        after = None
        total = -1
        for _ in range(200):
            page = broken.http.data(query, {"after": after, "filter": item_filter})["items"]
            total = page["totalCount"] if total < 0 else total
            served += [edge["node"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        expected = sum(1 for r in broken.good.values() for i in r["items"] if keep(i))
        assert len(served) == total == expected, item_filter
        problems = []
        for node in served:
            record = broken.good[node["execution"]["executionId"]]
            pos = node["sequenceNumber"] - 1
            want = expected_item(record, pos)
            problems += [f"{want['id']}.{k}" for k, v in want.items() if node.get(k) != v]
        assert problems == [], item_filter


def test_storage_stats_count_only_good_runs(broken: BrokenStore) -> None:
    stats = broken.http.data(
        """{ storageStats {
          totalRecords totalSizeBytes oldestTimestamp newestTimestamp
          byConfig { value count } bySafetyLevel { value count } byExecutionMode { value count }
          byUser { value count } byDay { value count } byItemType { value count }
          byModel { value count }
        } }"""
    )["storageStats"]
    good = broken.good.values()
    assert stats["totalRecords"] == len(broken.good)
    assert stats["totalSizeBytes"] == sum(broken.size(eid) for eid in broken.good)
    assert stats["oldestTimestamp"] == min(r["timestamp"] for r in good)
    assert stats["newestTimestamp"] == max(r["timestamp"] for r in good)
    as_dict = {key: {e["value"]: e["count"] for e in stats[key]} for key in stats if "by" in key}
    assert as_dict["byConfig"] == Counter(r["config_name"] for r in good)
    assert as_dict["bySafetyLevel"] == Counter(r["safety_level"] for r in good)
    assert as_dict["byUser"] == Counter(r["user_id"] for r in good)
    assert as_dict["byDay"] == Counter(r["timestamp"][:10] for r in good)
    assert as_dict["byItemType"] == Counter(i["item_type"] for r in good for i in r["items"])


def test_each_good_run_by_id_and_by_node_and_no_bad_one(broken: BrokenStore) -> None:
    detail = f"query($id: String!) {{ execution(executionId: $id) {{ {DETAIL} }} }}"
    node = f"""query($id: ID!) {{ node(id: $id) {{
      ... on Execution {{ {DETAIL} }}
      ... on ExecutionItem {{ {ITEM_FIELDS} execution {{ executionId }} }}
    }} }}"""
    problems: list[str] = []
    for eid, record in broken.good.items():
        served = broken.http.data(detail, {"id": eid})["execution"]
        assert served is not None, eid
        problems += broken.check_run(served)
        served = broken.http.data(node, {"id": global_id("Execution", eid)})["node"]
        assert served is not None, eid
        problems += broken.check_run(served)
        last = len(record["items"]) - 1
        item = broken.http.data(node, {"id": global_id("ExecutionItem", f"{eid}:{last}")})["node"]
        want = expected_item(record, last)
        problems += [f"{want['id']}.{k}" for k, v in want.items() if item.get(k) != v]
    assert problems == []
    # The id a bad file holds (or was named for) is never served from that file.
    for name in broken.bad:
        eid = "_".join(name.split("_")[:4])  # exec_YYYYMMDD_HHMMSS_xxxxxxxx
        served = broken.http.data(detail, {"id": eid})["execution"]
        if eid in broken.good:  # a duplicate's original: the original, not the copy
            assert broken.check_run(served) == [], name
        else:
            assert served is None, name


def test_the_server_still_answers_its_probe(broken: BrokenStore) -> None:
    assert broken.http.get("/healthz").status_code == 200
    assert broken.server.thread.is_alive()

"""Walking every page, both ways, with each filter and order, equals a direct reading."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from storage.models import KNOWN_ITEM_TYPES
from tests.conftest import data

PAGE_QUERY = """
query Page($filter: ExecutionFilter, $order: ExecutionOrder, $first: Int, $after: String,
           $last: Int, $before: String) {
  executions(filter: $filter, orderBy: $order, first: $first, after: $after,
             last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { executionId } }
  }
}
"""


def direct_reading(store: Path) -> list[dict[str, Any]]:
    """Every record a careful reader would serve, read with the json module alone."""
    records = []
    for path in sorted(store.glob("*.json")):
        try:
            obj = json.loads(path.read_text("utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(obj, dict) and isinstance(obj.get("items"), list):
            records.append(obj)
    return records


def expected_ids(records: list[dict[str, Any]], flt: dict[str, Any], order: str) -> list[str]:
    def keep(r: dict[str, Any]) -> bool:
        for key, field in (
            ("configNames", "config_name"),
            ("userIds", "user_id"),
            ("sessionIds", "session_id"),
            ("safetyLevels", "safety_level"),
            ("executionModes", "execution_mode"),
        ):
            if flt.get(key) and r[field] not in flt[key]:
                return False
        ts = datetime.fromisoformat(r["timestamp"])
        if "since" in flt and ts < datetime.fromisoformat(flt["since"]):
            return False
        if "until" in flt and ts >= datetime.fromisoformat(flt["until"]):
            return False
        if "hasItemTypes" in flt:
            wanted = {t.lower() for t in flt["hasItemTypes"]}
            types = {
                i["item_type"] if i["item_type"] in KNOWN_ITEM_TYPES else "unknown"
                for i in r["items"]
            }
            if not wanted & types:
                return False
        if "text" in flt:
            words = flt["text"].lower().split()
            if not any(
                all(w in (i["content"] or "").lower().split() for w in words) for i in r["items"]
            ):
                return False
        return True

    chosen = [r for r in records if keep(r)]
    field = "timestamp" if order.startswith("TIMESTAMP") else "total_execution_time"
    chosen.sort(key=lambda r: (r[field], r["execution_id"]), reverse=order.endswith("DESC"))
    return [r["execution_id"] for r in chosen]


def walk(
    client: TestClient, flt: dict[str, Any], order: str, size: int, *, backwards: bool
) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        variables: dict[str, Any] = {"filter": flt, "order": order}
        if backwards:
            variables |= {"last": size, "before": cursor}
        else:
            variables |= {"first": size, "after": cursor}
        conn = data(client, PAGE_QUERY, variables)["executions"]
        ids = [e["node"]["executionId"] for e in conn["edges"]]
        assert [e["cursor"] for e in conn["edges"]][:1] == (
            [conn["pageInfo"]["startCursor"]] if ids else []
        )
        seen = ids + seen if backwards else seen + ids
        info = conn["pageInfo"]
        more = info["hasPreviousPage"] if backwards else info["hasNextPage"]
        pages += 1
        assert pages < 200
        if not more:
            return seen
        cursor = info["startCursor"] if backwards else info["endCursor"]


FILTERS: list[dict[str, Any]] = [
    {},
    {"configNames": ["dada"]},
    {"configNames": ["bauhaus", "stillepost"]},
    {"userIds": ["user_1", "user_3"]},
    {"sessionIds": ["session_2"]},
    {"safetyLevels": ["kids"]},
    {"executionModes": ["fast"]},
    {"since": "2025-11-01T12:00:00", "until": "2025-11-01T20:00:00.000001"},
    {"hasItemTypes": ["STAGE3_BLOCKED"]},
    {"hasItemTypes": ["STAGE1_BLOCKED", "PIPELINE_ERROR"]},
    {"hasItemTypes": ["UNKNOWN"]},
    {"text": "Wolken"},
    {"configNames": ["dada", "bauhaus"], "safetyLevels": ["kids", "adult"], "userIds": ["user_0"]},
    {"configNames": ["no-such-config"]},
]


@pytest.fixture
def client(
    populated_store: tuple[Path, list[dict[str, Any]]], make_client: Callable[..., TestClient]
) -> TestClient:
    return make_client(populated_store[0])


@pytest.mark.slow
@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: ",".join(f) or "none")
def test_walk_forwards_and_backwards_matches_direct_reading(
    client: TestClient, populated_store: tuple[Path, list[dict[str, Any]]], flt: dict[str, Any]
) -> None:
    records = direct_reading(populated_store[0])
    for order in ("TIMESTAMP_DESC", "TIMESTAMP_ASC", "DURATION_DESC", "DURATION_ASC"):
        want = expected_ids(records, flt, order)
        for size in (1, 7, 500):
            assert walk(client, flt, order, size, backwards=False) == want, (order, size)
            assert walk(client, flt, order, size, backwards=True) == want, (order, size)
        total = data(client, PAGE_QUERY, {"filter": flt, "order": order, "first": 0})
        assert total["executions"]["totalCount"] == len(want)


def test_store_fixture_covers_the_hard_cases(populated_store: tuple[Path, list[Any]]) -> None:
    raw = "".join(p.read_text("utf-8") for p in populated_store[0].glob("exec_*.json"))
    assert '"backend_used"' in raw
    assert '"backend_type"' in raw
    assert "stage2_style_probe" in raw
    assert len(direct_reading(populated_store[0])) == 60


def test_default_order_is_newest_first_with_id_tiebreak(client: TestClient) -> None:
    conn = data(client, "{ executions(first: 4) { edges { node { executionId timestamp } } } }")
    nodes = [e["node"] for e in conn["executions"]["edges"]]
    keys = [(n["timestamp"], n["executionId"]) for n in nodes]
    assert keys == sorted(keys, reverse=True)
    assert nodes[0]["timestamp"] == nodes[1]["timestamp"]  # a tie, broken by id


def test_default_page_size_is_20(client: TestClient) -> None:
    conn = data(client, "{ executions { edges { cursor } pageInfo { hasNextPage } } }")
    assert len(conn["executions"]["edges"]) == 20
    assert conn["executions"]["pageInfo"]["hasNextPage"] is True


def test_walk_is_stable_while_records_are_added(
    populated_store: tuple[Path, list[dict[str, Any]]], make_client: Callable[..., TestClient]
) -> None:
    from graph.server.app import create_app  # noqa: F401 - the client fixture builds it
    from tests.conftest import mixed_records
    from tests.factory import write_record

    store, _ = populated_store
    client = make_client(store, watch=True)
    before = set(expected_ids(direct_reading(store), {}, "TIMESTAMP_DESC"))
    seen: list[str] = []
    cursor = None
    newcomers = mixed_records(30, start=datetime(2025, 11, 1, 8, 0))
    while True:
        conn = data(client, PAGE_QUERY, {"first": 9, "after": cursor})["executions"]
        seen += [e["node"]["executionId"] for e in conn["edges"]]
        if newcomers:  # write some records on both sides of the cursor between pages
            for rec in newcomers[:10]:
                rec["execution_id"] = rec["execution_id"].replace("exec_", "exec_new_")
                write_record(store, rec)
            newcomers = newcomers[10:]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        cursor = conn["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)), "no duplicates"
    assert before <= set(seen), "nothing that existed when the walk began is skipped"

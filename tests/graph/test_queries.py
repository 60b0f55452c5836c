"""Queries through the front door: one run, nested items, cross-run items, stats, node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import data, gql
from tests.factory import record_dict, write_record


@pytest.fixture
def client(
    populated_store: tuple[Path, list[dict[str, Any]]], make_client: Callable[..., TestClient]
) -> TestClient:
    return make_client(populated_store[0])


def first_id(records: list[dict[str, Any]], shape_type: str) -> dict[str, Any]:
    return next(r for r in records if any(i["item_type"] == shape_type for i in r["items"]))


def test_one_run_with_all_items_equals_its_file(
    client: TestClient, populated_store: tuple[Path, list[dict[str, Any]]]
) -> None:
    rec = first_id(populated_store[1], "interception_iteration")
    got = data(
        client,
        """query($id: String!) { execution(executionId: $id) {
            executionId configName timestamp userId sessionId executionMode safetyLevel usedSeed
            totalExecutionTime taxonomyVersion itemCount
            items { sequenceNumber timestamp stage stageIteration loopIteration mediaType
                    rawMediaType itemType rawItemType content filePath configUsed modelUsed
                    backendType executionTime metadata execution { executionId } } } }""",
        {"id": rec["execution_id"]},
    )["execution"]
    assert got["executionId"] == rec["execution_id"]
    assert got["usedSeed"] == rec["used_seed"]
    assert got["timestamp"] == rec["timestamp"]
    assert got["itemCount"] == len(rec["items"]) == len(got["items"])
    for mine, theirs in zip(got["items"], rec["items"], strict=True):
        assert mine["sequenceNumber"] == theirs["sequence_number"]
        assert mine["rawItemType"] == theirs["item_type"]
        assert mine["content"] == theirs["content"]
        assert mine["metadata"] == theirs["metadata"]
        assert mine["backendType"] == theirs.get("backend_type", theirs.get("backend_used"))
        assert mine["execution"]["executionId"] == rec["execution_id"]
    iterations = [
        i["stageIteration"] for i in got["items"] if i["itemType"] == "INTERCEPTION_ITERATION"
    ]
    assert iterations == list(range(1, 9))


def test_absent_run_is_null(client: TestClient) -> None:
    assert data(client, '{ execution(executionId: "exec_nope") { executionId } }') == {
        "execution": None
    }


def test_unknown_types_are_served_as_unknown_with_raw_names(client: TestClient) -> None:
    got = data(
        client,
        "{ items(filter: {itemTypes: [UNKNOWN]}, first: 50) { totalCount edges { node {"
        " itemType rawItemType mediaType rawMediaType } } } }",
    )["items"]
    assert got["totalCount"] == 6
    assert {(e["node"]["itemType"], e["node"]["rawItemType"]) for e in got["edges"]} == {
        ("UNKNOWN", "stage2_style_probe")
    }
    assert {e["node"]["mediaType"] for e in got["edges"]} == {"UNKNOWN"}


def test_research_question_stille_post_iterations_of_runs_blocked_at_stage_3(
    store: Path, make_client: Callable[..., TestClient]
) -> None:
    write_record(store, record_dict("exec_sp_blocked", shape="stillepost", extra_items=[]))
    blocked = record_dict("exec_sp_b3", shape="stillepost")
    blocked["items"][-3]["item_type"] = "stage3_blocked"
    write_record(store, blocked)
    write_record(store, record_dict("exec_other", shape="blocked3"))
    client = make_client(store)
    got = data(
        client,
        """{ executions(filter: {hasItemTypes: [STAGE3_BLOCKED], configNames: ["stillepost"]}) {
              edges { node { executionId
                items(filter: {itemTypes: [INTERCEPTION_ITERATION]}) { stageIteration modelUsed }
        } } } }""",
    )["executions"]["edges"]
    assert [e["node"]["executionId"] for e in got] == ["exec_sp_b3"]
    assert [i["stageIteration"] for i in got[0]["node"]["items"]] == list(range(1, 9))
    assert {i["modelUsed"] for i in got[0]["node"]["items"]} == {"gpt-oss"}
    # The same question asked across runs.
    items = data(
        client,
        """{ items(filter: {itemTypes: [INTERCEPTION_ITERATION]},
                   executionFilter: {hasItemTypes: [STAGE3_BLOCKED]}, first: 100) {
              totalCount edges { node { stageIteration execution { executionId } } } } }""",
    )["items"]
    assert items["totalCount"] == 8
    assert {e["node"]["execution"]["executionId"] for e in items["edges"]} == {"exec_sp_b3"}


def test_item_filters_combine(client: TestClient, populated_store: tuple[Path, list[Any]]) -> None:
    records = populated_store[1]
    want = sum(
        1 for r in records for i in r["items"] if i["stage"] == 3 and i["loop_iteration"] == 2
    )
    got = data(client, "{ items(filter: {stages: [3], loopIteration: 2}) { totalCount } }")[
        "items"
    ]["totalCount"]
    assert got == want > 0
    models = data(
        client,
        '{ items(filter: {modelsUsed: ["local/mistral-nemo:latest"], backendTypes: ["ollama"]})'
        " { totalCount } }",
    )["items"]["totalCount"]
    assert models == sum(
        1 for r in records for i in r["items"] if i["item_type"] == "translation_result"
    )


def test_cross_run_items_order_newest_run_first_then_sequence(client: TestClient) -> None:
    edges = data(
        client,
        "{ items(first: 40) { edges { node { sequenceNumber"
        " execution { timestamp executionId } } } } }",
    )["items"]["edges"]
    keys = [
        (
            e["node"]["execution"]["timestamp"],
            e["node"]["execution"]["executionId"],
            -e["node"]["sequenceNumber"],
        )
        for e in edges
    ]
    assert keys == sorted(keys, reverse=True)


def test_items_walk_backwards_equals_forwards(client: TestClient) -> None:
    query = """query($first: Int, $after: String, $last: Int, $before: String) {
        items(filter: {stages: [2]}, first: $first, after: $after, last: $last, before: $before) {
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
          edges { node { id } } } }"""
    forward: list[str] = []
    cursor = None
    while True:
        conn = data(client, query, {"first": 13, "after": cursor})["items"]
        forward += [e["node"]["id"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        cursor = conn["pageInfo"]["endCursor"]
    backward: list[str] = []
    cursor = None
    while True:
        conn = data(client, query, {"last": 11, "before": cursor})["items"]
        backward = [e["node"]["id"] for e in conn["edges"]] + backward
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        cursor = conn["pageInfo"]["startCursor"]
    assert forward == backward
    assert len(forward) == len(set(forward)) > 100


def test_node_refetches_runs_and_items(client: TestClient) -> None:
    edge = data(
        client, "{ items(first: 1) { edges { node { id content execution { id executionId } } } } }"
    )
    node = edge["items"]["edges"][0]["node"]
    again = data(
        client,
        "query($a: ID!, $b: ID!) { a: node(id: $a) { id ... on ExecutionItem { content } }"
        " b: node(id: $b) { ... on Execution { executionId } } }",
        {"a": node["id"], "b": node["execution"]["id"]},
    )
    assert again["a"]["content"] == node["content"]
    assert again["b"]["executionId"] == node["execution"]["executionId"]


def test_storage_stats_counts_match_the_files(
    client: TestClient, populated_store: tuple[Path, list[dict[str, Any]]]
) -> None:
    store, records = populated_store
    stats = data(
        client,
        """{ storageStats { totalRecords totalSizeBytes invalidRecordCount
             invalidRecords { fileName reason } oldestTimestamp newestTimestamp
             byConfig { value count } bySafetyLevel { value count } byItemType { value count }
             byModel { value count } byDay { value count } } }""",
    )["storageStats"]
    assert stats["totalRecords"] == len(records)
    assert stats["totalSizeBytes"] == sum(
        (store / f"{r['execution_id']}.json").stat().st_size for r in records
    )
    assert stats["invalidRecordCount"] == 2
    assert {i["fileName"] for i in stats["invalidRecords"]} == {
        "exec_20251101_000000_deadbeef.json",
        "exec_20251101_000001_deadbeef.json",
    }
    assert str(store) not in str(stats)
    assert stats["oldestTimestamp"] == min(r["timestamp"] for r in records)
    assert stats["newestTimestamp"] == max(r["timestamp"] for r in records)
    configs = {c["value"]: c["count"] for c in stats["byConfig"]}
    assert configs == {c: sum(r["config_name"] == c for r in records) for c in configs}
    assert sum(configs.values()) == len(records)
    days = {d["value"]: d["count"] for d in stats["byDay"]}
    assert days == {d: sum(r["timestamp"][:10] == d for r in records) for d in days}
    types = {t["value"]: t["count"] for t in stats["byItemType"]}
    assert types["interception_iteration"] == sum(
        i["item_type"] == "interception_iteration" for r in records for i in r["items"]
    )


def test_filtered_stats_feed_the_sidebar(
    client: TestClient, populated_store: tuple[Path, list[Any]]
) -> None:
    records = populated_store[1]
    stats = data(
        client,
        '{ storageStats(filter: {safetyLevels: ["kids"]})'
        " { totalRecords byConfig { value count } } }",
    )["storageStats"]
    kids = [r for r in records if r["safety_level"] == "kids"]
    assert stats["totalRecords"] == len(kids)
    assert sum(c["count"] for c in stats["byConfig"]) == len(kids)


def test_big_seed_is_served_exactly(store: Path, make_client: Callable[..., TestClient]) -> None:
    write_record(store, record_dict("exec_seed", used_seed=2**40 + 7))
    client = make_client(store)
    got = data(client, '{ execution(executionId: "exec_seed") { usedSeed } }')
    assert got["execution"]["usedSeed"] == 2**40 + 7


def test_text_filter_finds_words_in_any_script(
    client: TestClient, populated_store: tuple[Path, list[Any]]
) -> None:
    records = populated_store[1]
    for word, needle in (("고래", "고래"), ("köln", "Köln"), ("घोड़ा", "घोड़ा")):
        got = data(
            client,
            "query($t: String!) { executions(filter: {text: $t}) { totalCount } }",
            {"t": word},
        )
        assert (
            got["executions"]["totalCount"]
            == sum(any(needle in (i["content"] or "") for i in r["items"]) for r in records)
            > 0
        )


def test_graphiql_is_served_to_browsers(client: TestClient) -> None:
    page = client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    assert "https://" not in page.text
    assert client.get("/healthz").json()["status"] == "ok"


def test_errors_of_the_index_never_leak_paths(client: TestClient) -> None:
    body = gql(client, "{ executions(first: 1) { edges { node { executionId } } } }")
    assert "errors" not in body

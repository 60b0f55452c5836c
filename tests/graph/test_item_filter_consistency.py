"""Item filters never mix the index's positions with another version of the file.

The index knows which positions of a run match an item filter; the items themselves come from
the file, read now. When the file was rewritten after the index's last sync (the app runs with
``watch=False`` here, so nothing catches up behind the test's back), the positions belong to the
old version: the answer must then come from the file's own items, for ``items(filter:)`` and for
exports with an ``itemFilter``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from storage import query
from tests.conftest import data, gql
from tests.factory import dump, record_dict, write_record

EID = "exec_20251103_143025_0000abcd"

ITEMS = """query($id: String!, $f: ItemFilter) { execution(executionId: $id) {
  items(filter: $f) { rawItemType content sequenceNumber } } }"""

EXPORT = """mutation($input: ExportInput!) { exportExecutions(input: $input) { id status } }"""
JOB = """query($id: ID!) { exportJob(id: $id) { status error file { url } } }"""


def rewrite(path: Path, items: list[dict[str, Any]], data_: dict[str, Any]) -> None:
    """Replace the file by a new version with ``items`` (a new inode, as writers do)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(dump({**data_, "items": items}))
    os.replace(tmp, path)


def expected(items: list[dict[str, Any]], item_type: str) -> list[tuple[str, str | None, int]]:
    return [
        (i["item_type"], i["content"], i["sequence_number"])
        for i in items
        if i["item_type"] == item_type
    ]


def got(items: list[dict[str, Any]]) -> list[tuple[str, str | None, int]]:
    return [(i["rawItemType"], i["content"], i["sequenceNumber"]) for i in items]


@pytest.fixture
def rewritten(
    store: Path, make_client: Callable[..., TestClient], tmp_path: Path
) -> tuple[TestClient, list[Any]]:
    """A client whose index saw one version of a run, whose file now holds another: the same
    run with its items reversed (the index's positions of OUTPUT_IMAGE items now hold
    interception iterations)."""
    original = record_dict(EID, shape="stillepost")
    path = write_record(store, original)
    client = make_client(store, export_dir=tmp_path / "exports", audit_log=tmp_path / "audit.jsonl")
    items = list(reversed(original["items"]))
    rewrite(path, items, original)
    return client, items


def test_items_filter_on_a_rewritten_file_gives_the_files_items(
    rewritten: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, items = rewritten
    answer = data(client, ITEMS, {"id": EID, "f": {"itemTypes": ["OUTPUT_IMAGE"]}})
    found = got(answer["execution"]["items"])
    assert found == expected(items, "output_image")
    assert len(found) == 2
    # Several criteria at once, matched in Python exactly as the index would.
    answer = data(
        client,
        ITEMS,
        {"id": EID, "f": {"itemTypes": ["INTERCEPTION_ITERATION"], "stageIteration": 3}},
    )
    want = [
        (i["item_type"], i["content"], i["sequence_number"])
        for i in items
        if i["item_type"] == "interception_iteration" and i["stage_iteration"] == 3
    ]
    assert got(answer["execution"]["items"]) == want
    assert len(want) == 1


def test_text_filter_on_a_rewritten_file_is_refused_then_consistent(
    rewritten: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    """Full text cannot be matched outside the index: NOT_FOUND "changed while read", and the
    index catches up with the file, so asking again gives the current version's items."""
    client, items = rewritten
    variables = {"id": EID, "f": {"text": "Haus Wolken"}}
    body = gql(client, ITEMS, variables)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
    assert "changed while read" in body["errors"][0]["message"]
    deadline = time.monotonic() + 5
    while "errors" in (body := gql(client, ITEMS, variables)):
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    want = [
        (i["item_type"], i["content"], i["sequence_number"])
        for i in items
        if i["content"] and "Haus" in i["content"] and "Wolken" in i["content"]
    ]
    assert want
    assert got(body["data"]["execution"]["items"]) == want


def test_an_unchanged_file_uses_the_index_positions(
    store: Path, make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = record_dict(EID, shape="stillepost")
    write_record(store, original)
    client = make_client(store)

    def never(*args: Any) -> bool:
        raise AssertionError("matched in Python although the file is the indexed version")

    monkeypatch.setattr(query, "item_matches", never)
    answer = data(client, ITEMS, {"id": EID, "f": {"itemTypes": ["OUTPUT_IMAGE"]}})
    assert got(answer["execution"]["items"]) == expected(original["items"], "output_image")


def test_export_with_item_filter_of_a_rewritten_file_gives_the_files_items(
    rewritten: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, items = rewritten
    job = data(
        client,
        EXPORT,
        {
            "input": {
                "format": "JSONL",
                "executionIds": [EID],
                "itemFilter": {"itemTypes": ["OUTPUT_IMAGE"]},
            }
        },
    )["exportExecutions"]
    deadline = time.monotonic() + 30
    while (job := data(client, JOB, {"id": job["id"]})["exportJob"])["status"] not in (
        "DONE",
        "FAILED",
    ):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["status"] == "DONE", job
    response = client.get(job["file"]["url"])
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.content.decode().splitlines()]
    [record] = [line for line in lines if line.get("execution_id") == EID]
    found = [(i["item_type"], i["content"], i["sequence_number"]) for i in record["items"]]
    assert found == expected(items, "output_image")
    assert len(found) == 2


@pytest.mark.slow
def test_a_real_server_never_serves_wrong_items_while_records_are_rewritten(
    store: Path, index_path: Path
) -> None:
    """Front door: a real server watching the store while a writer rewrites 20 runs over and
    over (items reversed, then back), and a client asks for their OUTPUT_IMAGE items: every
    item served has that type, whichever version of a file the index and the read saw."""
    from tests.e2e.server import serve

    originals = [
        record_dict(f"exec_20251103_1430{n:02d}_0000abcd", shape="stillepost") for n in range(20)
    ]
    paths = [write_record(store, original) for original in originals]
    query_text = """{ executions(first: 20) { edges { node {
        items(filter: {itemTypes: [OUTPUT_IMAGE]}) { rawItemType } } } } }"""
    stop = threading.Event()

    def writer() -> None:
        flip = False
        while not stop.is_set():
            flip = not flip
            for path, original in zip(paths, originals, strict=True):
                items = original["items"][::-1] if flip else original["items"]
                rewrite(path, items, original)
            time.sleep(0.005)

    served = wrong = errors = 0
    with serve(store, index_path, watch=True) as server:
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 3
            payload = json.dumps({"query": query_text}).encode()
            while time.monotonic() < deadline:
                request = urllib.request.Request(
                    f"{server.http_url}/graphql",
                    data=payload,
                    headers={"content-type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    body = json.loads(response.read())
                for error in body.get("errors") or []:
                    assert error["extensions"]["code"] == "NOT_FOUND", error
                    errors += 1
                for edge in (body.get("data") or {}).get("executions", {}).get("edges", []):
                    for item in ((edge or {}).get("node") or {}).get("items") or []:
                        served += 1
                        wrong += item["rawItemType"] != "output_image"
        finally:
            stop.set()
            thread.join(5)
    print(f"served {served} OUTPUT_IMAGE items, {wrong} of another type, {errors} errors")
    assert served > 100
    assert wrong == 0

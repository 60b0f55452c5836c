"""Exports through the front door: the mutation, job status, downloads, errors, pseudonyms."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from starlette.testclient import TestClient

from exports.registry import xsd_path
from tests.conftest import data, gql

EXPORT = """mutation($input: ExportInput!) { exportExecutions(input: $input) {
  id status progress recordCount error
  file { fileName format mimeType sizeBytes sha256 url createdAt expiresAt } } }"""


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    return tmp_path / "exports"


@pytest.fixture
def client(
    populated_store: tuple[Path, list[dict[str, Any]]],
    make_client: Callable[..., TestClient],
    export_dir: Path,
    tmp_path: Path,
) -> TestClient:
    return make_client(
        populated_store[0],
        export_dir=export_dir,
        audit_log=tmp_path / "audit.jsonl",
        pseudonym_key="a-test-key-of-enough-length",
    )


def export(client: TestClient, **input: Any) -> dict[str, Any]:
    job: dict[str, Any] = data(client, EXPORT, {"input": input})["exportExecutions"]
    return job


JOB = """query($id: ID!) { exportJob(id: $id) {
  id status progress recordCount error file { fileName mimeType sizeBytes url } } }"""


def finished(client: TestClient, job: dict[str, Any], limit: float = 60) -> dict[str, Any]:
    """The job once it is DONE or FAILED (large exports run in the background)."""
    deadline = time.monotonic() + limit
    while job["status"] not in ("DONE", "FAILED"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = data(client, JOB, {"id": job["id"]})["exportJob"]
    return job


def download(client: TestClient, job: dict[str, Any]) -> bytes:
    job = finished(client, job)
    assert job["status"] == "DONE", job
    response = client.get(job["file"]["url"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(job["file"]["mimeType"].split(";")[0])
    assert job["file"]["fileName"] in response.headers["content-disposition"]
    assert len(response.content) == job["file"]["sizeBytes"]
    return response.content


def newest_ids(records: list[dict[str, Any]], config: str) -> list[str]:
    chosen = [r for r in records if r["config_name"] == config]
    chosen.sort(key=lambda r: (r["timestamp"], r["execution_id"]), reverse=True)
    return [r["execution_id"] for r in chosen]


def test_json_export_holds_the_filtered_runs_in_order(
    client: TestClient, populated_store: tuple[Path, list[dict[str, Any]]]
) -> None:
    job = export(client, format="JSON", filter={"configNames": ["bauhaus"]})
    doc = json.loads(download(client, job))
    want = newest_ids(populated_store[1], "bauhaus")
    assert [r["execution_id"] for r in doc["records"]] == want
    assert job["recordCount"] == len(want)
    assert job["progress"] == 1.0
    assert "backend_used" not in json.dumps(doc)


def test_every_format_downloads_and_opens(client: TestClient) -> None:
    for fmt in ("JSONL", "CSV", "XML", "PDF", "DOCX"):
        job = export(client, format=fmt, filter={"configNames": ["dada"]})
        body = download(client, job)
        if fmt == "JSONL":
            assert len(body.decode().splitlines()) == job["recordCount"]
        elif fmt == "CSV":
            rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
            assert {r["config_name"] for r in rows} == {"dada"}
        elif fmt == "XML":
            schema = etree.XMLSchema(etree.parse(str(xsd_path())))
            schema.assertValid(etree.fromstring(body))
        elif fmt == "PDF":
            assert body.startswith(b"%PDF")
        else:
            assert "word/document.xml" in zipfile.ZipFile(io.BytesIO(body)).namelist()


def test_execution_ids_export_in_the_given_order_with_item_filter(
    client: TestClient, populated_store: tuple[Path, list[dict[str, Any]]]
) -> None:
    ids = [r["execution_id"] for r in populated_store[1][:5]][::-1]
    job = export(
        client,
        format="JSONL",
        executionIds=ids,
        itemFilter={"itemTypes": ["USER_INPUT_TEXT", "TRANSLATION_RESULT"]},
    )
    lines = [json.loads(line) for line in download(client, job).decode().splitlines()]
    assert [r["execution_id"] for r in lines] == ids
    for rec in lines:
        assert {i["item_type"] for i in rec["items"]} <= {"user_input_text", "translation_result"}
        assert rec["items"]


@pytest.mark.parametrize(
    ("input", "message"),
    [
        ({"format": "CSV"}, "exactly one of"),
        ({"format": "CSV", "executionIds": [], "filter": {}}, "exactly one of"),
        ({"format": "CSV", "executionIds": []}, "at least one"),
        ({"format": "CSV", "executionIds": ["exec_nope", "../../etc/passwd"]}, "unknown execution"),
    ],
)
def test_bad_export_requests_produce_no_file(
    client: TestClient, export_dir: Path, input: dict[str, Any], message: str
) -> None:
    body = gql(client, EXPORT, {"input": input})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in body["errors"][0]["message"]
    assert not export_dir.exists() or list(export_dir.iterdir()) == []


def test_unknown_ids_are_named(client: TestClient, populated_store: tuple[Path, Any]) -> None:
    known = populated_store[1][0]["execution_id"]
    body = gql(client, EXPORT, {"input": {"format": "JSON", "executionIds": [known, "exec_x"]}})
    assert body["errors"][0]["extensions"]["unknownIds"] == ["exec_x"]


@pytest.mark.slow
def test_pseudonymised_export_holds_no_raw_ids(
    client: TestClient, populated_store: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    raw_ids = {r["user_id"] for r in populated_store[1]} | {
        r["session_id"] for r in populated_store[1]
    }
    for fmt in ("JSON", "CSV", "XML", "DOCX"):
        job = export(client, format=fmt, filter={}, pseudonymize=True)
        body = download(client, job)
        texts = [body]
        if fmt == "DOCX":
            texts = [
                zipfile.ZipFile(io.BytesIO(body)).read(n)
                for n in zipfile.ZipFile(io.BytesIO(body)).namelist()
            ]
        for text in texts:
            for raw in raw_ids:
                assert raw.encode() not in text, (fmt, raw)
    # Stable under the same key: the same user gets the same pseudonym twice.
    first = json.loads(
        download(client, export(client, format="JSON", filter={}, pseudonymize=True))
    )
    second = json.loads(
        download(client, export(client, format="JSON", filter={}, pseudonymize=True))
    )
    assert [r["user_id"] for r in first["records"]] == [r["user_id"] for r in second["records"]]
    audit = (tmp_path / "audit.jsonl").read_text("utf-8")
    assert len(audit.splitlines()) == 6
    for raw in raw_ids:
        assert raw not in audit
    assert "Wolken" not in audit


def test_download_route_refuses_guessed_and_hostile_tokens(client: TestClient) -> None:
    for token in ("x", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "A" * 22, "%00", "a" * 5000):
        assert client.get(f"/exports/{token}").status_code == 404
    xsd = client.get("/exports/schema.xsd")
    assert xsd.status_code == 200
    etree.XMLSchema(etree.fromstring(xsd.content))


def test_large_export_runs_in_the_background_with_progress(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graph.services import export_jobs

    monkeypatch.setattr(export_jobs, "INLINE_RECORDS_DEFAULT", 5)
    job = export(client, format="CSV", filter={})
    assert job["status"] in {"PENDING", "RUNNING", "DONE"}
    query = "query($id: ID!) { exportJob(id: $id) { status progress recordCount file { url } } }"
    deadline = time.monotonic() + 20
    while True:
        state = data(client, query, {"id": job["id"]})["exportJob"]
        assert 0.0 <= state["progress"] <= 1.0
        if state["status"] == "DONE":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert state["progress"] == 1.0
    assert client.get(state["file"]["url"]).status_code == 200
    assert data(client, query, {"id": "no-such-job"}) == {"exportJob": None}


def test_failed_export_reports_and_leaves_nothing(
    client: TestClient, export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exports.csv_exporter import CsvExporter

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(CsvExporter, "write", boom)
    job = export(client, format="CSV", filter={})
    assert job["status"] == "FAILED"
    assert job["file"] is None
    assert "disk on fire" not in job["error"]
    assert [p for p in export_dir.iterdir() if not p.name.startswith(".")] == []

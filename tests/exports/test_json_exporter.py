"""The JSON export: one document, header then records in the on-disk shape."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from exports.base import ExportOptions
from exports.json_exporter import JsonExporter
from storage.models import ExecutionRecord
from tests.exports.hostile import CASES, HOSTILE_CONFIG, HUGE_PROMPT, LONG_WORD, hostile_record
from tests.exports.support import EXPORTED_AT, SHAPES, make_meta, mixed, render
from tests.factory import record_dict


def as_current_shape(data: dict[str, Any]) -> dict[str, Any]:
    """A file's dict with ``backend_used`` spelt ``backend_type``, as every export writes it."""
    items = []
    for item in data["items"]:
        item = dict(item)
        if "backend_used" in item:
            item["backend_type"] = item.pop("backend_used")
        items.append(item)
    return {**data, "items": items}


def test_document_has_export_header_and_every_record_in_order() -> None:
    records = list(mixed(14))
    meta = make_meta(14, pseudonymized=False, selection={"executionIds": ["a", "b"]})

    document = json.loads(render(JsonExporter(), records, meta))

    assert document["export"] == {
        "exported_at": EXPORTED_AT.isoformat(),
        "execgraph_version": "0.1.0",
        "selection": {"executionIds": ["a", "b"]},
        "record_count": 14,
        "pseudonymized": False,
        "format_version": "1",
    }
    assert [r["execution_id"] for r in document["records"]] == [r.execution_id for r in records]
    for exported, original in zip(document["records"], records, strict=True):
        assert [i["sequence_number"] for i in exported["items"]] == [
            i.sequence_number for i in original.items
        ]
        assert [i["item_type"] for i in exported["items"]] == [i.item_type for i in original.items]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("backend_key", ["backend_type", "backend_used"])
def test_a_record_exported_alone_equals_its_file(shape: Any, backend_key: str) -> None:
    file_dict = record_dict(
        shape=shape, backend_key=backend_key, used_seed=2**40 + 7, user_id="user_3"
    )
    record = ExecutionRecord.model_validate(json.loads(json.dumps(file_dict)))

    document = json.loads(render(JsonExporter(), [record]))

    assert document["records"] == [as_current_shape(file_dict)]
    if backend_key == "backend_used":
        assert all("backend_used" not in item for item in document["records"][0]["items"])


def test_empty_export_is_a_valid_document() -> None:
    document = json.loads(render(JsonExporter(), []))

    assert document["records"] == []
    assert document["export"]["record_count"] == 0


def test_hostile_text_comes_back_as_written_or_repaired() -> None:
    data = render(JsonExporter(), [hostile_record()])

    document = json.loads(data.decode("utf-8"))  # strict UTF-8: no surrogates in the bytes
    exported = document["records"][0]
    assert exported["config_name"] == HOSTILE_CONFIG
    by_case = {i["metadata"]["case"]: i for i in exported["items"] if "case" in i["metadata"]}
    for case in CASES:
        assert by_case[case.name]["content"] == case.utf8, case.name
        assert by_case[case.name]["metadata"]["text"] == case.utf8, case.name
        assert by_case[case.name]["metadata"]["nested"]["list"] == [case.utf8, 1, None]
    assert by_case["long_word"]["content"] == LONG_WORD
    assert exported["items"][1]["content"] == HUGE_PROMPT


def test_progress_is_reported_after_each_record() -> None:
    seen: list[int] = []
    records = list(mixed(5))

    JsonExporter().write(
        records, make_meta(5), io.BytesIO(), options=ExportOptions(), progress=seen.append
    )

    assert seen == [1, 2, 3, 4, 5]

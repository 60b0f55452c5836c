"""The XML export: one document that always validates against the published schema."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from functools import cache

import pytest
from lxml import etree

from exports.registry import xsd_path
from exports.xml_exporter import XmlExporter
from storage.models import ExecutionRecord
from tests.exports.hostile import CASES, HOSTILE_CONFIG, HUGE_PROMPT, LONG_WORD, hostile_record
from tests.exports.support import EXPORTED_AT, make_meta, mixed, render
from tests.factory import record, record_dict

NS = "urn:execgraph:export:1"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
RUN_FIELDS = [
    "execution_id",
    "config_name",
    "timestamp",
    "user_id",
    "session_id",
    "execution_mode",
    "safety_level",
    "used_seed",
    "total_execution_time",
    "taxonomy_version",
    "items",
]
ITEM_FIELDS = [
    "sequence_number",
    "timestamp",
    "stage",
    "stage_iteration",
    "loop_iteration",
    "media_type",
    "item_type",
    "content",
    "file_path",
    "config_used",
    "model_used",
    "backend_type",
    "execution_time",
    "metadata",
]


@cache
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(xsd_path())))


def parse_valid(data: bytes) -> etree._Element:
    """Parse with lxml (no entity expansion, large texts allowed) and validate."""
    parser = etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(data, parser)
    schema().assertValid(root)
    return root


def q(name: str) -> str:
    return f"{{{NS}}}{name}"


def value(element: etree._Element) -> str | None:
    """An element's text, ``None`` when it is ``xsi:nil``."""
    if element.get(XSI_NIL) == "true":
        return None
    return element.text or ""


def test_schema_declares_the_export_namespace() -> None:
    xsd = etree.parse(str(xsd_path())).getroot()

    assert xsd.get("targetNamespace") == NS


def test_every_run_and_item_in_order_with_all_fields() -> None:
    records = list(mixed(14))

    root = parse_valid(render(XmlExporter(), records))

    runs = root.findall(f"{q('runs')}/{q('run')}")
    assert len(runs) == 14
    for run_el, run in zip(runs, records, strict=True):
        assert [etree.QName(child).localname for child in run_el] == RUN_FIELDS
        assert value(run_el.find(q("execution_id"))) == run.execution_id
        assert value(run_el.find(q("timestamp"))) == run.timestamp.isoformat()
        assert value(run_el.find(q("user_id"))) == run.user_id
        seed = value(run_el.find(q("used_seed")))
        assert (None if seed is None else int(seed)) == run.used_seed
        total = value(run_el.find(q("total_execution_time")))
        assert total is not None
        assert float(total) == run.total_execution_time
        items = run_el.findall(f"{q('items')}/{q('item')}")
        assert len(items) == len(run.items)
        for item_el, item in zip(items, run.items, strict=True):
            assert [etree.QName(child).localname for child in item_el] == ITEM_FIELDS
            fields = {etree.QName(child).localname: value(child) for child in item_el}
            assert int(fields["sequence_number"] or "") == item.sequence_number
            assert fields["timestamp"] == item.timestamp.isoformat()
            assert fields["item_type"] == item.item_type
            assert fields["content"] == item.content
            assert fields["file_path"] == item.file_path
            assert fields["model_used"] == item.model_used
            assert fields["backend_type"] == item.backend_type
            for name in ("stage_iteration", "loop_iteration"):
                raw = fields[name]
                assert (None if raw is None else int(raw)) == getattr(item, name)
            raw_time = fields["execution_time"]
            assert (None if raw_time is None else float(raw_time)) == item.execution_time
            assert json.loads(fields["metadata"] or "") == item.metadata


def test_export_metadata_is_written() -> None:
    meta = make_meta(1, pseudonymized=True, selection={"executionIds": ["exec_1"]})

    root = parse_valid(render(XmlExporter(), [record()], meta))

    fields = {etree.QName(el).localname: el.text for el in root.find(q("meta"))}
    assert fields == {
        "exported_at": EXPORTED_AT.isoformat(),
        "execgraph_version": "0.1.0",
        "format_version": "1",
        "record_count": "1",
        "pseudonymized": "true",
        "selection": '{"executionIds":["exec_1"]}',
    }


def test_null_is_nil_and_empty_text_is_empty() -> None:
    data = record_dict(shape="text")
    data["items"][1]["content"] = ""

    root = parse_valid(render(XmlExporter(), [ExecutionRecord.model_validate(data)]))

    items = root.findall(f".//{q('item')}")
    assert items[1].find(q("content")).get(XSI_NIL) is None
    assert value(items[1].find(q("content"))) == ""
    assert items[0].find(q("content")).get(XSI_NIL) == "true"


def test_empty_export_validates() -> None:
    root = parse_valid(render(XmlExporter(), []))

    assert root.find(q("runs")) is not None
    assert len(root.find(q("runs"))) == 0


def test_hostile_text_is_escaped_or_replaced_and_always_valid() -> None:
    data = render(XmlExporter(), [hostile_record(), record()])

    root = parse_valid(data)

    assert b"<img" not in data
    run = root.find(f"{q('runs')}/{q('run')}")
    assert value(run.find(q("config_name"))) == HOSTILE_CONFIG
    items = run.findall(f"{q('items')}/{q('item')}")
    by_case = {json.loads(value(i.find(q("metadata"))) or "").get("case"): i for i in items}
    for case in CASES:
        assert value(by_case[case.name].find(q("content"))) == case.xml, case.name
    assert value(by_case["long_word"].find(q("content"))) == LONG_WORD
    assert value(items[1].find(q("content"))) == HUGE_PROMPT


@pytest.mark.parametrize(
    "at",
    [
        datetime(2025, 11, 3, 14, 30, 25, 123456),
        datetime(2025, 11, 3, 14, 30, 25, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2025, 11, 3, 14, 30, 25, tzinfo=timezone(timedelta(hours=1, seconds=30))),
    ],
)
def test_timestamps_are_schema_datetimes(at: datetime) -> None:
    # model_copy skips validation, which rejects offsets with seconds: the writer must not.
    root = parse_valid(render(XmlExporter(), [record().model_copy(update={"timestamp": at})]))

    written = value(root.find(f".//{q('run')}/{q('timestamp')}"))
    assert written is not None
    assert datetime.fromisoformat(written) == at


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf"), 1e-300, -0.0])
def test_any_float_is_a_schema_double(number: float) -> None:
    # Validation refuses NaN and infinities; a record built without it must still export.
    unchecked = record(shape="text").model_copy(update={"total_execution_time": number})

    root = parse_valid(render(XmlExporter(), [unchecked]))

    written = value(root.find(f".//{q('total_execution_time')}"))
    assert written in {"NaN", "INF", "-INF", repr(number)}

"""Every export writes every field of the models (``exports.record_fields``), and the published
XML schema declares exactly the fields the XML export writes, with the models' types and nulls.

A field added to ``storage.models`` reaches the CSV, XML and JSON exports and the pseudonymiser
by itself; the XSD is a published document written by hand, so these tests name what it lacks.
"""

from __future__ import annotations

import csv
import io
import json
import types
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from lxml import etree

from exports.csv_exporter import CsvExporter
from exports.json_exporter import JsonExporter
from exports.pseudonymize import Pseudonymizer
from exports.record_fields import (
    ITEM_FIELDS,
    NOT_EXPORTED_ITEM_FIELDS,
    NOT_EXPORTED_RUN_FIELDS,
    RUN_FIELDS,
)
from exports.registry import xsd_path
from exports.xml_exporter import XmlExporter
from storage.models import ExecutionItem, ExecutionRecord
from tests.exports.support import render
from tests.factory import record

XS = "{http://www.w3.org/2001/XMLSchema}"
NS = "{urn:execgraph:export:1}"
#: The XSD type of each Python type a model field holds (metadata is JSON text).
XSD_TYPES = {
    str: "xs:string",
    int: "xs:integer",
    float: "xs:double",
    datetime: "xs:dateTime",
    dict: "xs:string",
}


def _base(annotation: Any) -> tuple[type, bool]:
    """The Python type of a field's annotation, and whether it may be None."""
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        (annotation,) = args
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return get_origin(annotation) or annotation, nullable


@cache
def xsd_sequence(type_name: str) -> list[tuple[str, str, bool]]:
    """(name, type, nillable) of each element of an XSD complex type, in order."""
    xsd = etree.parse(str(xsd_path())).getroot()
    (complex_type,) = xsd.iterfind(f"{XS}complexType[@name='{type_name}']")
    return [
        (str(element.get("name")), str(element.get("type")), element.get("nillable") == "true")
        for element in complex_type.iterfind(f"{XS}sequence/{XS}element")
    ]


@pytest.mark.parametrize(
    ("model", "type_name", "exported", "after"),
    [(ExecutionRecord, "Run", RUN_FIELDS, ["items"]), (ExecutionItem, "Item", ITEM_FIELDS, [])],
)
def test_the_xsd_declares_each_model_field_with_its_type_and_nullability(
    model: type[ExecutionRecord | ExecutionItem],
    type_name: str,
    exported: tuple[str, ...],
    after: list[str],
) -> None:
    declared = xsd_sequence(type_name)
    assert [name for name, _, _ in declared] == [*exported, *after], (
        f"exports/assets/execgraph-export.xsd: complexType {type_name} must declare "
        f"{[*exported, *after]} in this order"
    )
    for name, xsd_type, nillable in declared[: len(exported)]:
        python_type, nullable = _base(model.model_fields[name].annotation)
        assert (xsd_type, nillable) == (XSD_TYPES[python_type], nullable), name


def test_every_model_field_is_exported_unless_listed_as_not_exported() -> None:
    assert set(RUN_FIELDS) | NOT_EXPORTED_RUN_FIELDS == set(ExecutionRecord.model_fields) - {
        "items"
    }
    assert set(ITEM_FIELDS) | NOT_EXPORTED_ITEM_FIELDS == set(ExecutionItem.model_fields)


def test_the_xml_export_writes_exactly_the_elements_the_xsd_declares() -> None:
    root = etree.fromstring(render(XmlExporter(), [record(shape="multi")]))
    run = root.find(f"{NS}runs/{NS}run")
    assert run is not None
    item = run.find(f"{NS}items/{NS}item")
    assert item is not None
    for element, type_name in ((run, "Run"), (item, "Item")):
        written = [etree.QName(child).localname for child in element]
        assert written == [name for name, _, _ in xsd_sequence(type_name)]


def test_the_csv_header_and_the_json_keys_are_the_model_fields() -> None:
    sample = record(shape="multi")
    header = next(csv.reader(io.StringIO(render(CsvExporter(), [sample]).decode())))
    items = ["item_timestamp" if name == "timestamp" else name for name in ITEM_FIELDS]
    assert header == [*RUN_FIELDS, *items]
    (written,) = json.loads(render(JsonExporter(), [sample]))["records"]
    assert set(written) == {*RUN_FIELDS, "items"}
    assert all(set(item) == set(ITEM_FIELDS) for item in written["items"])


def _text_fields(model: type[ExecutionRecord | ExecutionItem]) -> list[str]:
    return [name for name, info in model.model_fields.items() if _base(info.annotation)[0] is str]


def test_the_ids_are_replaced_in_every_text_field_of_the_models() -> None:
    """A text field added to a model is searched for ids without a change to the pseudonymiser."""
    user, session = "pupil-7f3a9c", "workshop-2025-11-koeln"
    sample = record(shape="text", user_id=user, session_id=session)
    leak = f"{user} / {session}"
    ids = {"execution_id", "user_id", "session_id"}
    items = [
        item.model_copy(update=dict.fromkeys(_text_fields(ExecutionItem), leak))
        for item in sample.items
    ]
    run_texts = set(_text_fields(ExecutionRecord)) - ids
    leaky = sample.model_copy(update={**dict.fromkeys(run_texts, leak), "items": items})
    result = Pseudonymizer(b"k" * 32).record(leaky)
    assert run_texts
    assert _text_fields(ExecutionItem)
    dumped = json.dumps(result.to_disk_dict())
    assert user not in dumped
    assert session not in dumped
    assert result.execution_id == sample.execution_id

"""The CSV export: one row per item, run columns repeated, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import pytest

from exports.csv_exporter import CsvExporter
from storage.models import ExecutionRecord
from tests.exports.hostile import CASES, HOSTILE_CONFIG, HUGE_PROMPT, LONG_WORD, hostile_record
from tests.exports.support import mixed, render
from tests.factory import record, record_dict

# The published column order, written out independently of the implementation.
HEADER = [
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
    "sequence_number",
    "item_timestamp",
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


def read_rows(data: bytes, encoding: str = "utf-8") -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)  # the hostile corpus has 1 MB cells
    reader = csv.DictReader(io.StringIO(data.decode(encoding), newline=""))
    assert reader.fieldnames == HEADER
    return list(reader)


def cell(value: Any) -> str:
    return "" if value is None else str(value)


def test_one_row_per_item_with_run_columns_repeated_in_order() -> None:
    records = list(mixed(14))

    rows = read_rows(render(CsvExporter(), records))

    expected = [(r, i) for r in records for i in r.items]
    assert len(rows) == len(expected)
    for row, (run, item) in zip(rows, expected, strict=True):
        assert row["execution_id"] == run.execution_id
        assert row["config_name"] == run.config_name
        assert row["timestamp"] == run.timestamp.isoformat()
        assert row["user_id"] == run.user_id
        assert row["session_id"] == run.session_id
        assert row["execution_mode"] == run.execution_mode
        assert row["safety_level"] == run.safety_level
        assert row["used_seed"] == cell(run.used_seed)
        assert float(row["total_execution_time"]) == run.total_execution_time
        assert row["taxonomy_version"] == "1.0"
        assert int(row["sequence_number"]) == item.sequence_number
        assert row["item_timestamp"] == item.timestamp.isoformat()
        assert int(row["stage"]) == item.stage
        assert row["stage_iteration"] == cell(item.stage_iteration)
        assert row["loop_iteration"] == cell(item.loop_iteration)
        assert row["media_type"] == item.media_type
        assert row["item_type"] == item.item_type
        assert row["content"] == cell(item.content)
        assert row["file_path"] == cell(item.file_path)
        assert row["config_used"] == cell(item.config_used)
        assert row["model_used"] == cell(item.model_used)
        assert row["backend_type"] == cell(item.backend_type)
        assert row["execution_time"] == cell(item.execution_time)
        assert json.loads(row["metadata"]) == item.metadata


def test_large_seeds_and_old_backend_spelling_survive() -> None:
    data = record_dict(shape="image", used_seed=2**40 + 1, backend_key="backend_used")

    rows = read_rows(render(CsvExporter(), [ExecutionRecord.model_validate(data)]))

    assert {row["used_seed"] for row in rows} == {str(2**40 + 1)}
    assert [row["backend_type"] for row in rows][2] == "ollama"


def test_a_run_without_items_still_has_one_row() -> None:
    empty = ExecutionRecord.model_validate({**record_dict("exec_empty"), "items": []})

    rows = read_rows(render(CsvExporter(), [record(), empty, record(shape="text")]))

    assert [row["execution_id"] for row in rows].count("exec_empty") == 1
    (row,) = (row for row in rows if row["execution_id"] == "exec_empty")
    assert row["config_name"] == "dada"
    assert all(row[column] == "" for column in HEADER[10:])
    assert len(rows) == 7 + 1 + 5


def test_no_byte_order_mark_by_default_and_one_on_request() -> None:
    plain = render(CsvExporter(), [record()])
    with_bom = render(CsvExporter(bom=True), [record()])

    assert plain.startswith(b"execution_id,config_name,")
    assert with_bom.startswith(b"\xef\xbb\xbfexecution_id,config_name,")
    assert read_rows(with_bom, encoding="utf-8-sig") == read_rows(plain)


def test_rows_end_with_crlf() -> None:
    data = render(CsvExporter(), [record(shape="text")])

    assert data.count(b"\r\n") == 6
    assert data.endswith(b"\r\n")


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+49 221", "'+49 221"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("a=1", "a=1"),
        (" =1", " =1"),
    ],
)
def test_text_that_a_spreadsheet_would_execute_is_neutralised(text: str, written: str) -> None:
    data = record_dict(shape="text", prompt=text, user_id=text, session_id=text)

    rows = read_rows(render(CsvExporter(), [ExecutionRecord.model_validate(data)]))

    assert rows[1]["content"] == written
    assert rows[1]["user_id"] == written
    assert rows[1]["session_id"] == written


def test_negative_numbers_stay_numbers() -> None:
    data = record_dict(shape="text", used_seed=-42)
    data["total_execution_time"] = -0.5
    data["items"][2]["execution_time"] = -1.25
    data["items"][2]["stage_iteration"] = -3

    rows = read_rows(render(CsvExporter(), [ExecutionRecord.model_validate(data)]))

    assert rows[2]["used_seed"] == "-42"
    assert rows[2]["total_execution_time"] == "-0.5"
    assert rows[2]["execution_time"] == "-1.25"
    assert rows[2]["stage_iteration"] == "-3"


def test_neutralisation_can_be_switched_off() -> None:
    data = record_dict(shape="text", prompt="=1+1")

    rows = read_rows(
        render(CsvExporter(neutralize_formulas=False), [ExecutionRecord.model_validate(data)])
    )

    assert rows[1]["content"] == "=1+1"


def test_hostile_text_survives() -> None:
    rows = read_rows(render(CsvExporter(), [hostile_record()]))

    by_case = {json.loads(row["metadata"]).get("case"): row for row in rows}
    for case in CASES:
        expected = ("'" if case.formula else "") + case.utf8
        assert by_case[case.name]["content"] == expected, case.name
        assert json.loads(by_case[case.name]["metadata"])["text"] == case.utf8, case.name
    assert by_case["long_word"]["content"] == LONG_WORD
    assert rows[1]["content"] == HUGE_PROMPT
    assert {row["config_name"] for row in rows} == {HOSTILE_CONFIG}


def test_an_empty_export_has_only_the_header() -> None:
    assert read_rows(render(CsvExporter(), [])) == []

"""The JSON Lines export: one record per line, nothing else, streamed in constant memory."""

from __future__ import annotations

import json

from exports.jsonl_exporter import JsonlExporter
from tests.exports.hostile import CASES, HUGE_PROMPT, hostile_record
from tests.exports.support import mixed, render
from tests.factory import record


def test_each_line_is_one_record_in_order() -> None:
    records = list(mixed(21))

    data = render(JsonlExporter(), records)

    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == ""  # the file ends with a newline
    parsed = [json.loads(line) for line in lines[:-1]]
    assert parsed == [r.to_disk_dict() for r in records]
    assert [p["execution_id"] for p in parsed] == [r.execution_id for r in records]


def test_no_metadata_line_only_records() -> None:
    data = render(JsonlExporter(), [record(shape="text")])

    (line,) = data.decode("utf-8").splitlines()
    assert set(json.loads(line)) >= {"execution_id", "items", "user_id"}
    assert "export" not in json.loads(line)


def test_an_empty_export_is_an_empty_file() -> None:
    assert render(JsonlExporter(), []) == b""


def test_hostile_text_keeps_one_record_per_line_for_every_line_splitter() -> None:
    records = [hostile_record(), record(shape="image"), hostile_record(large=False)]

    text = render(JsonlExporter(), records).decode("utf-8")

    # str.splitlines also breaks at U+2028, U+2029, U+0085 and other separators.
    assert len(text.splitlines()) == 3
    first = json.loads(text.splitlines()[0])
    by_case = {
        i["metadata"]["case"]: i["content"] for i in first["items"] if "case" in i["metadata"]
    }
    for case in CASES:
        assert by_case[case.name] == case.utf8, case.name
    assert first["items"][1]["content"] == HUGE_PROMPT
    assert "\\u2028" in text
    assert "\u2028" not in text

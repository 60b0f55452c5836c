"""The index's columns come from one list each, and hold the record fields they are named after.

``storage.schema.RUN_COLUMNS`` / ``ITEM_COLUMNS`` make the DDL, the inserts and the staging
tables; ``storage.extract`` fills a column named after a record (or item) field with that field's
value; ``storage.query.RunRow`` is read by field name (``RUN_SELECT``). These tests hold the
pieces to each other, so that a field added in one place and forgotten in another fails here,
naming it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from storage.extract import COPIED_ITEM_FIELDS, COPIED_RUN_FIELDS, rows_of
from storage.fields import ItemFields, RecordFields, parse_index_record
from storage.index import RecordIndex
from storage.models import ExecutionItem, ExecutionRecord
from storage.query import RUN_SELECT, UNREAD_RUN_COLUMNS, RunRow, get_runs
from storage.reader import FileSignature
from storage.schema import DDL, FORMAT_VERSION, ITEM_COLUMN_NAMES, RUN_COLUMN_NAMES
from tests.factory import dump, record_dict, write_record

#: The layout of each format version, as a digest of every table's columns and every index.
#: Changing the layout without bumping FORMAT_VERSION would keep serving old index files that
#: lack the change: bump it, and record the new digest here.
LAYOUT_DIGESTS = {"7": "571a35a03573589404e817ca41ce4d77906ea57bea49d115df8bd17bf7f2989b"}

#: Record fields the run summary holds under another name or in another shape.
SUMMARY_SHAPES = {"timestamp": "timestamp (parsed from ts_raw)", "items": "item_count"}


def _distinct_record() -> dict[str, Any]:
    """A record whose every text field of the run and of its first item has its own value."""
    data = record_dict(
        "exec_20251103_143025_cafef00d",
        user_id="user-7",
        session_id="session-9",
        safety_level="youth",
        execution_mode="fast",
        used_seed=2**70 + 3,
    )
    data["taxonomy_version"] = "taxonomy-1.0"
    data["total_execution_time"] = 12.5
    first = data["items"][0]
    first.update(
        model_used="model-x",
        config_used="config-y",
        backend_type="backend-z",
        stage_iteration=4,
        loop_iteration=5,
    )
    return data


def test_the_layout_of_this_format_version_is_the_recorded_one() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(DDL)
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        )
    ]
    layout = [(name, conn.execute(f"PRAGMA table_xinfo({name})").fetchall()) for name in tables]
    indexes = conn.execute(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
    ).fetchall()
    digest = hashlib.sha256(repr((layout, indexes)).encode()).hexdigest()
    assert LAYOUT_DIGESTS.get(FORMAT_VERSION) == digest, (
        f"the index layout changed: bump FORMAT_VERSION and record {digest}"
    )


def test_copied_columns_are_fields_of_the_models_and_of_the_structs() -> None:
    record_fields = set(ExecutionRecord.model_fields)
    assert set(COPIED_RUN_FIELDS) <= record_fields
    assert set(COPIED_RUN_FIELDS) <= set(RecordFields.__struct_fields__)
    # ``backend`` is the structs' reading of backend_type (either spelling on disk).
    item_names = {
        "backend" if name == "backend_type" else name for name in ExecutionItem.model_fields
    }
    assert set(COPIED_ITEM_FIELDS) <= item_names
    assert set(COPIED_ITEM_FIELDS) - {"backend"} <= set(ItemFields.__struct_fields__)


def test_each_column_holds_the_value_of_the_field_it_is_named_after() -> None:
    data = _distinct_record()
    fields, timestamp = parse_index_record(dump(data))
    extracted = rows_of("x.json", fields, timestamp, FileSignature(321, 0, 0), rid=9)
    run = dict(zip(RUN_COLUMN_NAMES, extracted.run, strict=True))
    for name in RUN_COLUMN_NAMES:
        if name in data and name != "timestamp":
            expected = str(data[name]) if name == "used_seed" else data[name]
            assert run[name] == expected, name
    assert (run["rid"], run["file_name"], run["size"]) == (9, "x.json", 321)
    assert (run["ts_raw"], run["day"]) == (data["timestamp"], data["timestamp"][:10])
    assert (run["item_count"], run["duration"]) == (len(data["items"]), 12.5)
    for pos, (row, item) in enumerate(zip(extracted.items, data["items"], strict=True)):
        values = dict(zip(ITEM_COLUMN_NAMES, row, strict=True))
        assert (values["rid"], values["pos"], values["seq"]) == (9, pos, item["sequence_number"])
        for name in ITEM_COLUMN_NAMES:
            if name in item:
                assert values[name] == item[name], name


def test_the_summary_reads_every_column_of_runs_by_name() -> None:
    selected = [column.removeprefix("r.") for column in RUN_SELECT.split(", ")]
    assert len(selected) == len(dataclasses.fields(RunRow))
    assert set(selected) | UNREAD_RUN_COLUMNS == set(RUN_COLUMN_NAMES)


def test_every_record_field_is_in_the_summary_listing_reads(store: Path, index_path: Path) -> None:
    """Listing runs reads no record file: every record field is a RunRow field of its name."""
    summary = {field.name for field in dataclasses.fields(RunRow)}
    missing = set(ExecutionRecord.model_fields) - summary - {"items"}
    assert not missing, (
        f"{sorted(missing)}: add a column to storage.schema.RUN_COLUMNS and a RunRow field"
    )
    data = _distinct_record()
    write_record(store, data)
    with RecordIndex(store, index_path).open() as index:
        index.sync()
        row = get_runs(index.reader(), [data["execution_id"]])[data["execution_id"]]
    model = ExecutionRecord.model_validate(data)
    for name in ExecutionRecord.model_fields:
        if name not in SUMMARY_SHAPES:
            assert getattr(row, name) == getattr(model, name), name
    assert row.timestamp == model.timestamp == datetime.fromisoformat(data["timestamp"])
    assert row.item_count == len(model.items)

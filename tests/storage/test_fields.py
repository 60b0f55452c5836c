"""The index's validation (``storage.fields``) accepts and refuses exactly what the models do.

The index validates thousands of files per sync into msgspec structs; the API reads a record
into the pydantic models. Should the two disagree, the index would list runs the API cannot read
(or hide readable ones). These tests hold them to the same answer, with the same values, on the
demo store (every run shape and every malformed kind the writer produces), on generated damage,
on timestamps of every spelling, and on the cases where the two parsers are known to differ.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, get_args

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import storage.fields
from storage.demo import write_demo_store
from storage.fields import ItemFields, RecordFields, parse_index_record
from storage.models import ExecutionItem, ExecutionRecord
from storage.reader import MAX_NESTING, InvalidRecordError, parse_record
from tests.factory import Shape, dump, record_dict


def _as_model_dump(fields: RecordFields, timestamp: Any) -> dict[str, Any]:
    """The structs' values in the shape of ``ExecutionRecord.model_dump()``."""
    record = msgspec.structs.asdict(fields)
    items = []
    for item in fields.items:
        values = msgspec.structs.asdict(item)
        values["backend_type"] = item.backend
        del values["backend_used"]
        values["metadata"] = {} if item.metadata is None else item.metadata
        items.append(values)
    return {**record, "timestamp": timestamp, "items": items}


def _outcome(parse: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "ok", parse(data)
    except InvalidRecordError as exc:
        return "refused", exc.reason


def assert_same_answer(data: bytes) -> str:
    """Both validations give the same answer; returns it ("ok" or "refused")."""
    model = _outcome(parse_record, data)
    fast = _outcome(parse_index_record, data)
    assert model[0] == fast[0], (model, fast)
    if model[0] == "ok":
        assert _as_model_dump(*fast[1]) == model[1].model_dump()
    else:
        assert fast[1] == model[1]
    return str(model[0])


@pytest.mark.parametrize(
    ("struct", "model"), [(RecordFields, ExecutionRecord), (ItemFields, ExecutionItem)]
)
def test_the_structs_mirror_the_models(struct: Any, model: Any) -> None:
    fields = {info.name: info for info in msgspec.structs.fields(struct)}
    assert set(fields) - {"backend_used"} == set(model.model_fields)
    for name, info in model.model_fields.items():
        mirror = fields[name]
        assert info.is_required() == mirror.required, name
        if info.is_required() or name == "backend_type":
            continue
        default = info.get_default(call_default_factory=True)
        assert mirror.default == (None if default == {} else default), name


def test_every_file_of_the_demo_store_gets_the_same_answer(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_demo_store(store, 300, seed=3)
    answers = {"ok": 0, "refused": 0}
    for entry in os.scandir(store):
        if entry.is_file() and entry.name.endswith(".json"):
            answers[assert_same_answer(Path(entry.path).read_bytes())] += 1
    assert answers["ok"] >= 300
    assert answers["refused"] >= 8  # the malformed kinds that are regular files


def test_well_formed_files_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Otherwise the answers above would agree only because the models gave both."""

    def no_models(data: bytes) -> ExecutionRecord:
        raise AssertionError("the models were asked")

    monkeypatch.setattr(storage.fields, "parse_record", no_models)
    backends = set()
    for shape in get_args(Shape):
        for key in ("backend_type", "backend_used"):
            data = dump(record_dict(shape=shape, backend_key=key))
            fields, _ = parse_index_record(data)
            found = [item.backend for item in fields.items]
            assert found == [item.backend_type for item in parse_record(data).items]
            backends.update(found)
    assert len(backends - {None}) >= 2


HUGE = "__HUGE__"  # written as 1e400: beyond a double


@pytest.mark.parametrize(
    ("level", "key", "value"),
    [
        ("item", "metadata", {"big": 2**70}),  # msgspec takes it too; kept exact
        ("item", "execution_time", 2**70),  # read as its nearest double by both
        ("record", "used_seed", 2**70),
        ("record", "timestamp", "2025-11-03T14:30"),  # no seconds
        ("item", "timestamp", "2025-11-03T14:30"),
        ("record", "timestamp", "2025-11-03T14:30:25,5"),  # decimal comma
        ("record", "timestamp", "1762180225"),  # seconds since the epoch, as text
        ("record", "timestamp", "2025-11-03T14:30:25.1234567"),  # truncated by the models
        ("record", "timestamp", "2025-11-03T14:30:25.9999999+01:00"),
    ],
)
def test_where_the_parsers_differ_the_models_decide(level: str, key: str, value: Any) -> None:
    record = record_dict(shape="text")
    (record if level == "record" else record["items"][1])[key] = value
    data = json.dumps(record).replace(f'"{HUGE}"', "1e400").encode()
    assert assert_same_answer(data) == "ok"


#: Values under keys the format does not have, as JSON text: (token, the answer both give).
UNKNOWN_KEY_VALUES = [
    ("9" * 5000, "ok"),  # beyond the validator's 4,300 digits; ignored like the key
    ("-" + "9" * 5000, "ok"),
    ("9" * 400, "ok"),
    ("1e400", "ok"),
    ("1e-400", "ok"),
    ("NaN", "refused"),  # not JSON, wherever it stands
    ("-Infinity", "refused"),
    ('"\\ud800"', "refused"),
]


@pytest.mark.parametrize(("token", "answer"), UNKNOWN_KEY_VALUES)
@pytest.mark.parametrize("level", ["record", "item"])
def test_absurd_values_under_unknown_keys_get_the_same_answer(
    token: str, answer: str, level: str
) -> None:
    record = record_dict(shape="text")
    (record if level == "record" else record["items"][1])["zz_unknown"] = "__VALUE__"
    data = json.dumps(record).replace('"__VALUE__"', token).encode()
    assert assert_same_answer(data) == answer
    if answer == "ok":  # and the record read is the one without the key
        assert parse_record(data) == parse_record(json.dumps(record_dict(shape="text")).encode())


@pytest.mark.parametrize("key", ["sequence_number", "stage", "stage_iteration", "loop_iteration"])
@pytest.mark.parametrize("value", [2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63, 2**70])
def test_positions_and_stages_must_fit_a_graphql_int(key: str, value: int) -> None:
    """The API serves them as ``Int`` (32 bits); the index stores them as SQLite integers."""
    record = record_dict(shape="text")
    record["items"][1][key] = value
    answer = assert_same_answer(dump(record))
    assert answer == ("ok" if -(2**31) <= value < 2**31 else "refused")


#: Numbers as a file may spell them, the value the models read (None: refused).
NUMBERS: list[tuple[str, float | int | None, float | int | None]] = [
    # (JSON token, as a time, as an integer field)
    ("0", 0.0, 0),
    ("-0", 0.0, 0),
    ("-0.0", -0.0, None),
    ("7", 7.0, 7),
    ("-3", -3.0, -3),
    ("1.5", 1.5, None),
    ("1.0", 1.0, None),
    ("1e0", 1.0, None),
    ("1.5E2", 150.0, None),
    ("1e-400", 0.0, None),
    ("1e308", 1e308, None),
    ("-1.7976931348623157e308", -1.7976931348623157e308, None),
    ("1e400", None, None),
    ("-1e400", None, None),
    (str(2**53 + 1), float(2**53 + 1), 2**53 + 1),
    (str(2**70), float(2**70), 2**70),
    ("1" + "0" * 400, None, 10**400),
    ("-" + "9" * 4300, None, -(10**4300 - 1)),
    ("1" + "0" * 4300, None, None),  # beyond Python's (and both parsers') 4,300 digits
    ("NaN", None, None),
    ("Infinity", None, None),
    ("-Infinity", None, None),
    ("true", None, None),
    ("false", None, None),
    ('"1"', None, None),
]
NUMERIC_FIELDS = [
    ("record", "total_execution_time", "time"),
    ("record", "used_seed", "int"),
    ("item", "execution_time", "time"),
    ("item", "sequence_number", "int32"),
    ("item", "stage", "int32"),
    ("item", "stage_iteration", "int32"),
    ("item", "loop_iteration", "int32"),
    ("item", "metadata", "metadata"),
]


def _expected(kind: str, as_time: float | None, as_int: int | None, token: str) -> Any:
    if kind == "time":
        return as_time
    if kind == "int32":
        return as_int if as_int is not None and -(2**31) <= as_int < 2**31 else None
    if kind == "int":
        return as_int
    # metadata: any JSON value but NaN, Infinity and numbers beyond a double (or 4,300 digits)
    return None if as_time is None and as_int is None and token[0] not in 'tf"' else token


@pytest.mark.parametrize(("level", "key", "kind"), NUMERIC_FIELDS)
@pytest.mark.parametrize(("token", "as_time", "as_int"), NUMBERS)
def test_every_numeric_field_is_read_exactly_or_refused_naming_it(
    level: str, key: str, kind: str, token: str, as_time: Any, as_int: Any
) -> None:
    """One rule per field (see storage.models), the same in both validations: a value the
    API can serve as written (or as its nearest double, for times), else a reason with the
    field's name."""
    record = record_dict(shape="text")
    target = record if level == "record" else record["items"][1]
    target[key] = {"n": [HUGE]} if kind == "metadata" else HUGE
    data = json.dumps(record).replace(f'"{HUGE}"', token).encode()
    answer = assert_same_answer(data)
    expected = _expected(kind, as_time, as_int, token)
    model = _outcome(parse_record, data)[1]
    where = key if level == "record" else f"items[1].{key}"
    if expected is None:
        assert answer == "refused"
        assert f"'{where}'" in model, model
        return
    assert answer == "ok", model
    value = getattr(model if level == "record" else model.items[1], key)
    if kind == "metadata":
        assert value == {"n": [json.loads(token)]}
        assert type(value["n"][0]) is type(json.loads(token))
    else:
        assert value == expected
        assert type(value) is type(expected)
        if isinstance(expected, float):
            assert math.copysign(1, value) == math.copysign(1, expected)


def test_item_timestamps_beyond_the_microsecond_are_accepted_alike() -> None:
    """msgspec rounds them, the models truncate: the index does not use item timestamps."""
    record = record_dict(shape="text")
    record["items"][1]["timestamp"] = "2025-11-03T14:30:25.1234567"
    fields, _ = parse_index_record(dump(record))
    model = parse_record(dump(record))
    gap = fields.items[1].timestamp - model.items[1].timestamp
    assert abs(gap.total_seconds()) * 1e6 <= 1


@pytest.mark.parametrize("depth", [MAX_NESTING - 20, MAX_NESTING + 2, MAX_NESTING + 300])
@pytest.mark.parametrize("key", ["metadata", "unknown_key"])
def test_deep_nesting_gets_the_models_answer(depth: int, key: str) -> None:
    record = record_dict(shape="text")
    record["items"][0][key] = {"k": "__DEEP__"}
    text = dump(record).replace(b'"__DEEP__"', b"[" * depth + b"]" * depth)
    assert b"[" * depth in text
    answer = assert_same_answer(text)
    assert answer == ("ok" if depth < MAX_NESTING else "refused")


def test_records_with_many_items_are_read_whole() -> None:
    """More brackets than MAX_NESTING (the models validate it): the same values."""
    record = record_dict(shape="stillepost", iterations=8, outputs=120)
    data = dump(record)
    assert data.count(b"{") > MAX_NESTING
    assert assert_same_answer(data) == "ok"


VALUES = st.sampled_from(
    [None, 0, -1, 1.5, 2**70, True, "", "text", "2025-11-03T14:30:25", [], {}, {"k": [1]}]
)
RECORD_KEYS = [*sorted(ExecutionRecord.model_fields), "backend_used", "surprise"]
ITEM_KEYS = [*sorted(ExecutionItem.model_fields), "backend_used", "surprise"]


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    shape: Shape = draw(st.sampled_from(get_args(Shape)))
    record = record_dict(
        shape=shape, backend_key=draw(st.sampled_from(["backend_type", "backend_used"]))
    )
    for _ in range(draw(st.integers(1, 3))):
        items = record.get("items")
        if draw(st.booleans()) and isinstance(items, list) and items:
            target = items[draw(st.integers(0, len(items) - 1))]
            key = draw(st.sampled_from(ITEM_KEYS))
        else:
            target, key = record, draw(st.sampled_from(RECORD_KEYS))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(VALUES)
    if draw(st.integers(0, 9)) == 0:
        return json.dumps(record, allow_nan=True).replace("1.5", "NaN").encode()
    return dump(record)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_records_get_the_same_answer(data: bytes) -> None:
    assert_same_answer(data)


TIMESTAMPS = st.builds(
    "{}{}{}{}{}".format,
    st.sampled_from(
        ["2025-11-03", "2025-02-29", "2024-02-29", "0001-01-01", "2025-1-3", "20251103"]
    ),
    st.sampled_from(["T", "t", " ", "_", "", "TT"]),
    st.sampled_from(["14:30:25", "14:30", "24:00:00", "23:59:60", "14:30:5", "143025", ""]),
    st.sampled_from(["", ".", ".1", ".123456", ".1234567", ".999999999", ",5"]),
    st.sampled_from(["", "Z", "z", "+01:00", "+0100", "+01", "-00:00", "+23:59", "+24:00", " "]),
)


@settings(max_examples=300, deadline=None)
@given(TIMESTAMPS, st.booleans())
def test_timestamps_of_every_spelling_get_the_same_answer(timestamp: str, on_item: bool) -> None:
    record = record_dict(shape="text")
    (record["items"][0] if on_item else record)["timestamp"] = timestamp
    data = dump(record)
    model = _outcome(parse_record, data)
    fast = _outcome(parse_index_record, data)
    assert model[0] == fast[0], (timestamp, model, fast)
    if model[0] == "refused":
        assert fast[1] == model[1]
    elif not on_item:  # the index uses the record's timestamp, not the items'
        assert fast[1][1] == model[1].timestamp

"""The index's dict validation (``RECORD_FIELDS``) accepts and refuses exactly what the models do.

The index validates thousands of files per sync into plain dicts; the API reads a record into
the models. Should the two disagree, the index would list runs the API cannot read (or hide
readable ones). These tests hold them to the same answer, with the same values, on the demo
store (every run shape and every malformed kind the writer produces) and on generated damage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.demo import write_demo_store
from storage.models import ITEM_DEFAULTS, RECORD_DEFAULTS, ExecutionItem, ExecutionRecord
from storage.reader import InvalidRecordError, parse_record, parse_record_fields
from tests.factory import Shape, dump, record_dict


def _complete(fields: dict[str, Any]) -> dict[str, Any]:
    """The dict validation's result with the defaults of absent keys filled in."""
    items = [{**ITEM_DEFAULTS, **item} for item in fields["items"]]
    return {**RECORD_DEFAULTS, **fields, "items": items}


def _outcome(parse: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "ok", parse(data)
    except InvalidRecordError as exc:
        return "refused", exc.reason


def assert_same_answer(data: bytes) -> None:
    model = _outcome(parse_record, data)
    fields = _outcome(parse_record_fields, data)
    assert model[0] == fields[0], (model, fields)
    if model[0] == "ok":
        assert _complete(fields[1]) == model[1].model_dump()
    else:
        assert fields[1] == model[1]


def test_defaults_are_the_models_own() -> None:
    for model, defaults in ((ExecutionRecord, RECORD_DEFAULTS), (ExecutionItem, ITEM_DEFAULTS)):
        optional = {
            name: info.get_default(call_default_factory=True)
            for name, info in model.model_fields.items()
            if not info.is_required()
        }
        assert defaults == optional


def test_every_file_of_the_demo_store_gets_the_same_answer(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_demo_store(store, 300, seed=3)
    answers = {"ok": 0, "refused": 0}
    for entry in os.scandir(store):
        if not entry.is_file() or not entry.name.endswith(".json"):
            continue
        data = Path(entry.path).read_bytes()
        assert_same_answer(data)
        answers[_outcome(parse_record, data)[0]] += 1
    assert answers["ok"] >= 300
    assert answers["refused"] >= 8  # the malformed kinds that are regular files


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

"""Deliberately broken files: every kind a tolerant reader must skip and report.

:data:`MALFORMED_KINDS` names them; :func:`write_malformed` writes one (several distinct ones
with different ``index`` values), built from a generated record so it looks like the real thing
up to the point where it breaks.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from storage.demo.content import _INTERCEPTION_SENTENCES
from storage.demo.records import generate_records
from storage.demo.writer import serialize_record, write_file

_T = TypeVar("_T")

#: Every kind of file a tolerant reader must skip and report, with what it holds.
MALFORMED_KINDS: Final[dict[str, str]] = {
    "empty": "a zero-byte file, as seen just after the tracker truncated it",
    "truncated": "a real record cut mid-way where the tracker met unserialisable metadata",
    "invalid_utf8": "a record with bytes that are not UTF-8 (Latin-1 text, a stray byte, a cut "
    "multi-byte sequence)",
    "bom": "a valid record preceded by a UTF-8 byte order mark",
    "top_level_array": "a JSON array of records instead of one record object",
    "top_level_scalar": "a JSON string or number instead of a record object",
    "missing_field": "a record without a required field (execution_id, items or config_name)",
    "wrong_type": 'a field of the wrong type (stage "three", items {}, used_seed as a string)',
    "deep_nesting": "item metadata nested 5,000 levels deep",
    "nan_literal": "a NaN or Infinity literal where a number belongs (not JSON)",
    "oversize": "a valid-looking record padded past the size cap",
    "directory": "a directory whose name ends in .json",
    "symlink_outside": "a symbolic link to a valid record file outside the store",
    "duplicate_id": "a second file (<id>_copy.json, sorting after <id>.json) claiming an "
    "execution_id a valid file already has",
    "lone_surrogate": "valid JSON whose string holds an unpaired UTF-16 surrogate escape",
    "null_items": "a record whose items list is null",
}

_DEEP_NESTING: Final = 5000
_SURROGATES: Final = ("\\ud800", "\\udc00", "\\ud83d")
_MARKER: Final = "@@demo-marker@@"


@dataclass(frozen=True, slots=True)
class _Target:
    """Where and from what one malformed file is made."""

    directory: Path
    index: int
    record: dict[str, Any]
    execution_id: str  # kept apart: some kinds delete it from the record
    outside: Path
    size_cap: int

    def path(self, kind: str) -> Path:
        return self.directory / f"{self.execution_id}_{kind}.json"

    def write(self, kind: str, data: bytes) -> Path:
        path = self.path(kind)
        write_file(path, data)
        return path

    def variant(self, options: tuple[_T, ...]) -> _T:
        return options[self.index % len(options)]

    def text_item(self) -> dict[str, Any]:
        items: list[dict[str, Any]] = self.record["items"]
        return next(item for item in items if item["item_type"] == "user_input_text")


def write_malformed(
    directory: Path,
    kind: str,
    *,
    index: int = 0,
    outside: Path | None = None,
    size_cap: int = 5 * 1024 * 1024,
) -> Path:
    """Write one malformed file of ``kind`` (see :data:`MALFORMED_KINDS`) and return its path.

    Names are ``<execution_id>_<kind>.json``; different ``index`` values give distinct files
    (and cycle through a kind's variants). ``symlink_outside`` writes its target record into
    ``outside`` (default: a hidden sibling ``.<store>-outside``); ``duplicate_id`` also writes
    the valid original it duplicates and returns the copy.
    """
    if kind not in MALFORMED_KINDS:
        raise ValueError(f"unknown malformed kind {kind!r}; known: {', '.join(MALFORMED_KINDS)}")
    seed = zlib.crc32(f"{kind}:{index}".encode())
    record = next(generate_records(1, seed=seed))
    target = _Target(
        directory=directory,
        index=index,
        record=record,
        execution_id=record["execution_id"],
        outside=outside or directory.parent / f".{directory.name}-outside",
        size_cap=size_cap,
    )
    return _BUILDERS[kind](target)


def _empty(target: _Target) -> Path:
    return target.write("empty", b"")


def _truncated(target: _Target) -> Path:
    """Stream the record with :mod:`json` as the tracker does, until it meets a datetime."""
    items = target.record["items"]
    items[target.index % len(items)]["metadata"]["started_at"] = datetime(2025, 12, 24, 9, 30)
    path = target.path("truncated")
    # The tracker's file stays cut off where json.dump raised.
    with path.open("w", encoding="utf-8") as stream, contextlib.suppress(TypeError):
        json.dump(target.record, stream, indent=2, sort_keys=True, ensure_ascii=False)
    return path


def _invalid_utf8(target: _Target) -> Path:
    item = target.text_item()
    item["content"] = _MARKER
    data = serialize_record(target.record)
    bad = target.variant(("Schöne Grüße aus Köln".encode("latin-1"), b"\xff", "한".encode()[:2]))
    return target.write("invalid_utf8", data.replace(_MARKER.encode(), bad))


def _bom(target: _Target) -> Path:
    return target.write("bom", b"\xef\xbb\xbf" + serialize_record(target.record))


def _top_level_array(target: _Target) -> Path:
    records = [target.record] * (target.index % 3 + 1)
    return target.write("top_level_array", serialize_record(records))


def _top_level_scalar(target: _Target) -> Path:
    values: tuple[object, ...] = (
        target.record["execution_id"],
        target.index,
        target.record["total_execution_time"],
    )
    return target.write("top_level_scalar", serialize_record(target.variant(values)))


def _missing_field(target: _Target) -> Path:
    del target.record[target.variant(("execution_id", "items", "config_name"))]
    return target.write("missing_field", serialize_record(target.record))


def _wrong_type(target: _Target) -> Path:
    variant = target.index % 3
    if variant == 0:
        target.record["items"][-1]["stage"] = "three"
    elif variant == 1:
        target.record["items"] = {}
    else:
        target.record["used_seed"] = "12345"
    return target.write("wrong_type", serialize_record(target.record))


def _deep_nesting(target: _Target) -> Path:
    target.text_item()["metadata"] = {"nested": _MARKER}
    opening, closing = target.variant((('{"d":', "}"), ("[", "]")))
    nested = opening * _DEEP_NESTING + "0" + closing * _DEEP_NESTING
    data = serialize_record(target.record).replace(f'"{_MARKER}"'.encode(), nested.encode())
    return target.write("deep_nesting", data)


def _nan_literal(target: _Target) -> Path:
    value = target.variant((float("nan"), float("inf"), float("-inf")))
    if target.index % 2:
        target.record["items"][-1]["execution_time"] = value
    else:
        target.record["total_execution_time"] = value
    return target.write("nan_literal", serialize_record(target.record))


def _oversize(target: _Target) -> Path:
    item = target.text_item()
    filler = " ".join(_INTERCEPTION_SENTENCES) + " "
    missing = target.size_cap - len(serialize_record(target.record)) + 1
    item["content"] += filler * max(1, -(-missing // len(filler)))
    return target.write("oversize", serialize_record(target.record))


def _directory(target: _Target) -> Path:
    path = target.path("directory")
    path.mkdir(exist_ok=True)
    return path


def _symlink_outside(target: _Target) -> Path:
    target.outside.mkdir(parents=True, exist_ok=True)
    original = target.outside / f"{target.record['execution_id']}.json"
    write_file(original, serialize_record(target.record))
    path = target.path("symlink_outside")
    path.unlink(missing_ok=True)
    path.symlink_to(original.resolve())
    return path


def _duplicate_id(target: _Target) -> Path:
    write_file(
        target.directory / f"{target.record['execution_id']}.json",
        serialize_record(target.record),
    )
    return write_duplicate(target.directory, target.record)


def write_duplicate(directory: Path, original: dict[str, Any]) -> Path:
    """Write ``<id>_copy.json``: a different, valid record claiming ``original``'s id."""
    copy = {**original, "user_id": "anonymous", "session_id": "default"}
    copy["total_execution_time"] = round(float(original["total_execution_time"]) + 1.0, 3)
    path = directory / f"{original['execution_id']}_copy.json"
    write_file(path, serialize_record(copy))
    return path


def _lone_surrogate(target: _Target) -> Path:
    item = target.text_item()
    item["content"] = f"Ein Gedicht {_MARKER}"
    escape = target.variant(_SURROGATES).encode()
    data = serialize_record(target.record).replace(_MARKER.encode(), escape)
    return target.write("lone_surrogate", data)


def _null_items(target: _Target) -> Path:
    target.record["items"] = None
    return target.write("null_items", serialize_record(target.record))


_BUILDERS: Final[dict[str, Callable[[_Target], Path]]] = {
    "empty": _empty,
    "truncated": _truncated,
    "invalid_utf8": _invalid_utf8,
    "bom": _bom,
    "top_level_array": _top_level_array,
    "top_level_scalar": _top_level_scalar,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "deep_nesting": _deep_nesting,
    "nan_literal": _nan_literal,
    "oversize": _oversize,
    "directory": _directory,
    "symlink_outside": _symlink_outside,
    "duplicate_id": _duplicate_id,
    "lone_surrogate": _lone_surrogate,
    "null_items": _null_items,
}

"""The tolerant record reader: a file either yields a valid record or a reason it cannot be served.

The upstream writer truncates the final path and streams into it, so a reader may see an empty or
half-written file, and a writer that hits unserialisable metadata leaves a truncated file forever.
Every check here turns such a file into an :class:`InvalidRecordError` with a reason a person can
act on; nothing here raises anything else for bad data, and a record is only ever returned whole.

Safety: files are opened only by plain names inside the store (see :func:`open_in_store`). A name
is never derived from client input; the index maps execution ids to names it found by listing the
store itself.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import ValidationError

from storage.models import ExecutionRecord

#: Default cap on a record file's size; real records are 5-15 KB.
DEFAULT_MAX_FILE_BYTES: Final = 5 * 1024 * 1024
#: JSON nesting deeper than this is refused (real metadata nests 2-3 levels).
MAX_NESTING: Final = 64

_BOM: Final = b"\xef\xbb\xbf"
_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


class InvalidRecordError(Exception):
    """A record file that cannot be served; ``reason`` is safe to show to clients."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FileSignature:
    """What identifies one version of a file: if any of it changes, the file is read again."""

    size: int
    mtime_ns: int
    inode: int


def is_record_name(name: str) -> bool:
    """Whether a directory entry name can be a record file (``*.json``, not hidden)."""
    return (
        name.endswith(".json")
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
    )


def open_in_store(root: Path, name: str) -> int:
    """Open ``root/name`` for reading and return the descriptor, refusing anything unsafe.

    ``name`` must be a plain record file name. A symlink is followed only when its target lies
    inside the store; the final file must be a regular file. Raises :class:`InvalidRecordError`.
    """
    if not is_record_name(name):
        raise InvalidRecordError("not a record file name")
    path = root / name
    try:
        if path.is_symlink():
            target = path.resolve(strict=True)
            if not target.is_relative_to(root.resolve()):
                raise InvalidRecordError("symbolic link pointing outside the store")
            path = target
        fd = os.open(path, _OPEN_FLAGS)
    except InvalidRecordError:
        raise
    except FileNotFoundError as exc:
        raise InvalidRecordError("file disappeared while being read") from exc
    except RuntimeError as exc:  # symlink loop on older Pythons
        raise InvalidRecordError("symbolic link loop") from exc
    except OSError as exc:
        raise InvalidRecordError(f"cannot be opened ({exc.strerror or 'I/O error'})") from exc
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InvalidRecordError("a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise InvalidRecordError("not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(root: Path, name: str, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """Read a record file's bytes, enforcing the size cap before reading it whole."""
    fd = open_in_store(root, name)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise InvalidRecordError(f"larger than the {max_bytes:,} byte limit ({size:,} bytes)")
        chunks: list[bytes] = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise InvalidRecordError(f"cannot be read ({exc.strerror or 'I/O error'})") from exc
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InvalidRecordError(f"larger than the {max_bytes:,} byte limit (grew while read)")
    return data


def parse_record(data: bytes) -> ExecutionRecord:
    """Validate a record file's bytes; raise :class:`InvalidRecordError` with a readable reason."""
    if not data.strip():
        raise InvalidRecordError("empty file (the writer may still be writing it)")
    if data.startswith(_BOM):
        raise InvalidRecordError("starts with a UTF-8 byte order mark (BOM)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecordError(f"not valid UTF-8 (bad byte at offset {exc.start})") from exc
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecordError(_json_reason(exc)) from exc
    if not isinstance(obj, dict):
        raise InvalidRecordError(f"top level is a JSON {_json_kind(obj)}, not an object")
    try:
        record = ExecutionRecord.model_validate(obj)
    except ValidationError as exc:
        # orjson reads integers beyond 64 bits as floats; seeds may be that large. The slower
        # stdlib parser keeps them exact, so give the file a second chance with it.
        record = _validate_with_big_ints(data, exc)
    # Only item metadata is free-form; every other field is a validated scalar.
    for item in record.items:
        if _too_deep(item.metadata, depth=3):
            raise InvalidRecordError(f"item metadata nested deeper than {MAX_NESTING} levels")
    return record


def read_record(
    root: Path, name: str, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> ExecutionRecord:
    """Read and validate one record file of the store."""
    return parse_record(read_bytes(root, name, max_bytes=max_bytes))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _validate_with_big_ints(data: bytes, first_error: ValidationError) -> ExecutionRecord:
    try:
        obj = json.loads(data, parse_constant=_reject_constant)
        return ExecutionRecord.model_validate(obj)
    except (ValueError, RecursionError):
        raise InvalidRecordError(_validation_reason(first_error)) from first_error


def _json_reason(exc: orjson.JSONDecodeError) -> str:
    message = exc.msg
    if "surrogate" in message:
        return "not valid JSON: contains an unpaired UTF-16 surrogate escape"
    if exc.pos >= len(exc.doc) - 1 or "unexpected end" in message.lower() or "EOF" in message:
        return (
            f"truncated or incomplete JSON at line {exc.lineno}, column {exc.colno} "
            "(the writer may still be writing it, or stopped mid-file)"
        )
    if "recursion" in message.lower():
        return f"nested deeper than {MAX_NESTING} levels"
    return f"not valid JSON: {message} (line {exc.lineno}, column {exc.colno})"


def _json_kind(obj: object) -> str:
    if isinstance(obj, list):
        return "array"
    if isinstance(obj, str):
        return "string"
    if isinstance(obj, bool):
        return "boolean"
    if obj is None:
        return "null"
    return "number"


def _too_deep(obj: Any, *, depth: int) -> bool:
    if not any(isinstance(v, dict | list) for v in obj.values()):
        return False
    stack: list[tuple[Any, int]] = [(obj, depth)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_NESTING:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return False


def _validation_reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for error in errors[:3]:
        location = _location(error["loc"])
        if error["type"] == "missing":
            parts.append(f"required field '{location}' is missing")
        else:
            parts.append(f"field '{location}': {error['msg']}")
    more = f" (and {len(errors) - 3} more problems)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(record)"

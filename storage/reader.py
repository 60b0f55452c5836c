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

import contextlib
import errno
import json
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Final, NamedTuple

import orjson
from pydantic import AliasChoices, BaseModel, ValidationError

from storage.models import ExecutionItem, ExecutionRecord

#: Default cap on a record file's size; real records are 5-15 KB.
DEFAULT_MAX_FILE_BYTES: Final = 5 * 1024 * 1024
#: JSON nested deeper than this is refused by the JSON parser (real metadata nests 2-3 levels).
MAX_NESTING: Final = 200

_BOM: Final = b"\xef\xbb\xbf"
#: Errors of opening a file that say nothing of the file (no descriptor or memory left).
_EXHAUSTED: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})
_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


class InvalidRecordError(Exception):
    """A record file that cannot be served; ``reason`` is safe to show to clients."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FileSignature(NamedTuple):
    """What identifies one version of a file: if any of it changes, the file is read again.

    A tuple, so that comparing 100,000 of them against the index costs next to nothing.
    """

    size: int
    mtime_ns: int
    inode: int


class FileEntry(NamedTuple):
    """One directory entry as listed: its signature, or why it cannot even be stat'ed."""

    signature: FileSignature
    problem: str | None


def stat_entry(root: Path, name: str, dir_fd: int | None = None) -> FileEntry | None:
    """The signature of a listed file, why it cannot be read, or None if it is gone.

    With ``dir_fd`` (a descriptor of ``root``, see :func:`open_directory`) the name is looked
    up relative to it, without building a path.
    """
    # The hot path of every sync (100,000 calls): no Path objects, plain tuples.
    path = name if dir_fd is not None else os.path.join(root, name)
    try:
        st = os.stat(path, dir_fd=dir_fd)
    except FileNotFoundError:
        try:
            lst = os.lstat(path, dir_fd=dir_fd)
        except FileNotFoundError:
            return None  # gone between listing and stat
        return FileEntry(FileSignature(0, lst.st_mtime_ns, lst.st_ino), "broken symbolic link")
    except OSError as exc:
        return FileEntry(FileSignature(0, 0, 0), f"cannot be read ({exc.strerror})")
    return FileEntry(FileSignature(st.st_size, st.st_mtime_ns, st.st_ino), None)


@contextlib.contextmanager
def open_directory(path: Path) -> Iterator[int | None]:
    """A descriptor of ``path`` for ``os.stat(name, dir_fd=...)``, or None where unsupported."""
    if os.stat not in os.supports_dir_fd:
        yield None
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def is_record_name(name: str) -> bool:
    """Whether a directory entry name can be a record file (``*.json``, not hidden)."""
    return (
        name.endswith(".json")
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
    )


def open_in_store(root: Path, name: str) -> tuple[int, os.stat_result]:
    """Open ``root/name`` for reading; return the descriptor and its status.

    ``name`` must be a plain record file name. The file is opened without following a symlink;
    a symlink is then followed only when its target lies inside the store. The final file must
    be a regular file. Raises :class:`InvalidRecordError`, or the :class:`OSError` itself when
    the process has no descriptor (or memory) left: the file is not at fault.
    """
    if not is_record_name(name):
        raise InvalidRecordError("not a record file name")
    path = os.path.join(root, name)
    try:
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            fd = os.open(_inner_target(root, path), _OPEN_FLAGS)
    except InvalidRecordError:
        raise
    except FileNotFoundError as exc:
        raise InvalidRecordError("file disappeared while being read") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidRecordError("symbolic link loop") from exc
        if exc.errno in _EXHAUSTED:
            raise  # the process's trouble, not the file's: the sync fails and is retried
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
    return fd, st


def _inner_target(root: Path, link: str) -> str:
    """The real path a symlink in the store points to, if it stays inside the store."""
    try:
        target = os.path.realpath(link, strict=True)
    except OSError as exc:
        raise InvalidRecordError("broken symbolic link") from exc
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, target]) != real_root:
        raise InvalidRecordError("symbolic link pointing outside the store")
    return target


def read_bytes(root: Path, name: str, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """Read a record file's bytes, enforcing the size cap before reading it whole."""
    return read_file(root, name, max_bytes=max_bytes)[0]


def read_file(
    root: Path, name: str, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> tuple[bytes, FileSignature]:
    """Read a record file; return its bytes and the signature the open file had before reading.

    A file whose size differs from what was read is still being written and is refused for now;
    the next change event reads it again. Any change during or after the read gives the file
    another signature (a later modification time at least), so the next sync reads it again
    rather than keeping bytes that were half old, half new.
    """
    fd, st = open_in_store(root, name)
    try:
        if st.st_size > max_bytes:
            raise InvalidRecordError(
                f"larger than the {max_bytes:,} byte limit ({st.st_size:,} bytes)"
            )
        chunks: list[bytes] = []
        remaining = max_bytes + 1
        wanted = st.st_size + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, wanted))
            chunks.append(chunk)
            remaining -= len(chunk)
            if len(chunk) < wanted:  # a short read of a regular file: its end
                break
            wanted = 65536
    except OSError as exc:
        raise InvalidRecordError(f"cannot be read ({exc.strerror or 'I/O error'})") from exc
    finally:
        os.close(fd)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(data) > max_bytes:
        raise InvalidRecordError(f"larger than the {max_bytes:,} byte limit (grew while read)")
    if st.st_size != len(data):
        raise InvalidRecordError("changed while being read (the writer may still be writing it)")
    return data, FileSignature(st.st_size, st.st_mtime_ns, st.st_ino)


def parse_record(data: bytes) -> ExecutionRecord:
    """Validate a record file's bytes; raise :class:`InvalidRecordError` with a readable reason.

    The fast path validates the bytes in one pass (pydantic's strict JSON mode: exact types,
    integers of any size, timestamps only as strings). Its parser refuses an empty file, a
    byte order mark and invalid UTF-8 anywhere in the file, so those checks, and the second
    parse with orjson that says precisely what is wrong, run only for a file it refused.
    """
    try:
        record = ExecutionRecord.model_validate_json(data, strict=True)
    except ValidationError as exc:
        kept = _unknown_keys_aside(data, exc)
        if kept is None:
            raise InvalidRecordError(_refusal(data, exc)) from exc
        return kept
    if (b"NaN" in data or b"Infinity" in data) and _has_non_finite(data):
        raise InvalidRecordError("not valid JSON: contains NaN or Infinity")
    return record


def read_record(
    root: Path, name: str, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> ExecutionRecord:
    """Read and validate one record file of the store."""
    return parse_record(read_bytes(root, name, max_bytes=max_bytes))


def _has_non_finite(data: bytes) -> bool:
    """Whether NaN/Infinity occur as JSON values (not inside strings): orjson refuses them."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return True
    return False


def _refusal(data: bytes, exc: ValidationError) -> str:
    """Why the validator refused ``data``: the file's encoding first, then :func:`_diagnose`."""
    if not data.strip():
        return "empty file (the writer may still be writing it)"
    if data.startswith(_BOM):
        return "starts with a UTF-8 byte order mark (BOM)"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not valid UTF-8 (bad byte at offset {bad.start})"
    return _diagnose(data, exc)


def _diagnose(data: bytes, exc: ValidationError) -> str:
    """A readable reason for bytes that failed validation: JSON problems first, then fields."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as json_exc:
        reason = _number_reason(data, json_exc, exc)
        if reason is not None:
            return reason
        if (b"NaN" in data or b"Infinity" in data) and "unexpected character" in json_exc.msg:
            return "not valid JSON: contains NaN or Infinity"
        return _json_reason(json_exc)
    if not isinstance(obj, dict):
        return f"top level is a JSON {_json_kind(obj)}, not an object"
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
        return f"nested deeper than {MAX_NESTING} levels"
    return _validation_reason(exc)


def _number_reason(
    data: bytes, json_exc: orjson.JSONDecodeError, exc: ValidationError
) -> str | None:
    """The reason, naming the field, for a file orjson refuses for a number: NaN or Infinity
    (which Python's json writes) or a number beyond a double (valid JSON, beyond orjson).
    None when the file is not JSON for another reason, or the fields do not say."""
    message = json_exc.msg
    nan = (b"NaN" in data or b"Infinity" in data) and (
        "unexpected character" in message or "after sign" in message  # -Infinity
    )
    if not nan and "number" not in message:
        return None
    obj = _lenient_json(data)
    if not isinstance(obj, dict):
        return None
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
        # An integer longer than the validator reads (4,300 digits), read as Infinity by
        # _lenient_json: validated again, the fields say where it is.
        try:
            ExecutionRecord.model_validate_json(json.dumps(obj), strict=True)
        except ValidationError as field_exc:
            exc = field_exc
        else:
            return None
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            return None
    prefix = "not valid JSON: contains NaN or Infinity; " if nan else ""
    return prefix + _validation_reason(exc)


def _field_keys(model: type[BaseModel]) -> frozenset[str]:
    """The keys a model reads (names, aliases and alias choices); it ignores every other."""
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                keys.add(alias)
            elif isinstance(alias, AliasChoices):
                keys.update(choice for choice in alias.choices if isinstance(choice, str))
    return frozenset(keys)


_RECORD_KEYS: Final = _field_keys(ExecutionRecord)
_ITEM_KEYS: Final = _field_keys(ExecutionItem)


def _unknown_keys_aside(data: bytes, exc: ValidationError) -> ExecutionRecord | None:
    """The record of a file refused only for a number under a key the models ignore, or None.

    The validator parses the whole document before it looks at fields, so an integer of more
    than 4,300 digits under an unknown key (of the record or of an item) refuses the file, while
    the index's decoder skips unknown keys unread. Both must decide alike, and unknown keys are
    ignored by the format's rules: the file is validated again without them. Runs only for a
    file the validator refused for a number.
    """
    errors = exc.errors(include_url=False)
    if not errors or errors[0]["type"] != "json_invalid":
        return None
    if "number" not in str(errors[0].get("ctx", {}).get("error", "")):
        return None
    try:  # NaN and Infinity stay refused, as the index's decoder refuses them anywhere
        obj = json.loads(data, parse_int=_int_or_infinity, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    record = {key: value for key, value in obj.items() if key in _RECORD_KEYS}
    items = record.get("items")
    if isinstance(items, list):
        record["items"] = [
            {key: value for key, value in item.items() if key in _ITEM_KEYS}
            if isinstance(item, dict)
            else item
            for item in items
        ]
    try:
        return ExecutionRecord.model_validate_json(json.dumps(record), strict=True)
    except (ValidationError, ValueError):
        return None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _lenient_json(data: bytes) -> object:
    """``data`` parsed by Python's :mod:`json` (which takes NaN, Infinity and numbers beyond a
    double; integers beyond 4,300 digits are read as Infinity), or None when even that
    refuses it."""
    try:
        return json.loads(data, parse_int=_int_or_infinity)
    except (ValueError, RecursionError):
        return None


def _int_or_infinity(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        return math.inf


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

"""Write record files the way the upstream execution tracker does, for tests and the demo store.

The tracker serialises with ``json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False)``
and, crucially, writes *non-atomically*: it truncates the final ``<execution_id>.json`` and
streams into it. Readers, the index and subscriptions must cope with a file that is empty or
half-written for a moment. :func:`write_like_tracker` reproduces that window on purpose (slowed
down so a test can observe it); :func:`write_atomically` is the well-behaved alternative a
fixed writer would use, so tests can compare both.

:func:`serialize_record` is the single place that defines the writer's bytes. It uses orjson
(much faster than the pure-Python indenting encoder, which matters for a 100,000-record
demo store) only where orjson's output is provably identical, and falls back to :mod:`json`
otherwise: orjson spells floats below 1e-4 differently (``0.00001`` vs ``1e-05``), writes NaN
as ``null`` where the writer writes ``NaN``, and handles types that :mod:`json` refuses. A
round trip through orjson catches the last two; a byte search catches the first.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from storage.files import write_atomic

_ORJSON_OPTIONS: Final = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
#: A negative exponent ending a number token (false alarms in strings only cost speed).
_EXPONENT: Final = re.compile(rb"e-[0-9]+(?:[,\n\]]|\Z)")


def serialize_record(record: object) -> bytes:
    """The exact bytes the tracker writes for ``record`` (UTF-8, indent 2, sorted keys).

    Any JSON value is accepted, so that broken files (say, a top-level array) are spelled alike.
    Raises :class:`TypeError` for values the tracker cannot serialise either, and
    :class:`UnicodeEncodeError` for strings holding lone surrogates.
    """
    try:
        data = orjson.dumps(record, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        data = b""  # e.g. an int beyond 64 bits or a non-string key: json decides
    if data and _spelled_as_json(data) and orjson.loads(data) == record:
        return data
    return json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")


def _spelled_as_json(data: bytes) -> bool:
    """Whether orjson's output holds no float that :mod:`json` would spell differently.

    Only floats below 1e-4 differ (``0.00001``/``1e-7`` against ``1e-05``/``1e-07``). A match
    inside a string is a false alarm that merely costs the slower encoder. Everything else that
    differs (NaN written as null, datetimes or UUIDs json refuses) fails the round trip instead.
    """
    return b"0.0000" not in data and _EXPONENT.search(data) is None


def write_like_tracker(
    path: Path, record: dict[str, Any], *, chunks: int = 4, pause: float = 0.05
) -> None:
    """Truncate ``path`` and stream the record into it in ``chunks`` pieces, as the tracker does.

    The file is empty for ``pause`` seconds after truncation, then grows by one piece every
    ``pause`` seconds; every piece is flushed and fsynced so another process sees it at once.
    """
    if chunks < 1:
        raise ValueError("chunks must be at least 1")
    data = serialize_record(record)
    step = max(1, -(-len(data) // chunks))
    with path.open("wb") as stream:
        for start in range(0, len(data), step):
            _flush(stream)
            time.sleep(pause)
            stream.write(data[start : start + step])
        _flush(stream)


def write_atomically(path: Path, record: dict[str, Any]) -> None:
    """Write the record as :func:`storage.files.write_atomic` does (mode 0644, as the tracker's).

    The temporary name (``.<name>.tmp-<random>``) starts with a dot and does not end in
    ``.json``, so no reader or watcher takes it for a record; readers see the old state or the
    whole file, never a part of it.
    """
    write_atomic(path, serialize_record(record), mode=0o644)


def _flush(stream: BinaryIO) -> None:
    stream.flush()
    os.fsync(stream.fileno())


def write_file(path: Path, data: bytes) -> None:
    """Create (or truncate) ``path`` and write ``data`` with plain system calls (mode 0644).

    Faster than ``Path.write_bytes`` for the many small files of a demo store.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)

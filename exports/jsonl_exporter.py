"""JSON Lines export: one record per line and nothing else, for pandas, R and line tools.

Only records go into the file, no metadata line, so ``pandas.read_json(path, lines=True)`` and
``jsonlite::stream_in`` read it as one table without skipping anything; the export's metadata
(time, version, selection, pseudonymisation) travels with the download and the audit log
instead. Each line is a record in the current on-disk shape, as in the JSON export.

Every line is written as soon as its record is serialised: memory stays flat however many records
are exported. Newlines inside strings are escaped by JSON itself; U+0085, U+2028 and U+2029, which
JSON allows raw but ``str.splitlines`` and some readers treat as line breaks, are written as
``\\uXXXX`` escapes so that one physical line is always one record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import BinaryIO, ClassVar, Final

from exports.base import ExportMeta, ExportOptions, ProgressCallback
from exports.json_exporter import dumps, utf8_bytes
from exports.record_fields import disk_dict
from storage.models import ExecutionRecord

_UNICODE_LINE_BREAKS: Final = re.compile("[\u0085\u2028\u2029]")


def _escape_line_break(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def record_line(record: ExecutionRecord) -> bytes:
    """One record as one UTF-8 line, newline included."""
    line = dumps(disk_dict(record))
    if _UNICODE_LINE_BREAKS.search(line):
        line = _UNICODE_LINE_BREAKS.sub(_escape_line_break, line)
    return utf8_bytes(line + "\n")


class JsonlExporter:
    """Records only, one JSON object per line, streamed."""

    format: ClassVar[str] = "JSONL"
    extension: ClassVar[str] = "jsonl"
    mime_type: ClassVar[str] = "application/x-ndjson"

    def write(
        self,
        records: Iterable[ExecutionRecord],
        meta: ExportMeta,
        out: BinaryIO,
        *,
        options: ExportOptions,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Write each record as one line, in the order given."""
        for written, record in enumerate(records, start=1):
            out.write(record_line(record))
            if progress is not None:
                progress(written)

"""JSON export: one document holding the export's metadata and every record, as on disk.

Researchers load this with any JSON library, so each record is written in the current on-disk
shape (``ExecutionRecord.to_disk_dict()``): a file still spelling ``backend_used`` comes out as
``backend_type``, and otherwise a record exported alone equals its source file value for value.

The document is streamed record by record (the ``records`` array is opened, each record is
serialised and written, then the array is closed), so memory depends on the largest record, not
on how many are exported. Non-ASCII text is kept as UTF-8, as the upstream writer keeps it.

UTF-8 cannot carry a lone surrogate (which a Python string, and so a record, can hold). Rather
than failing the whole export on one damaged string, ``utf8_bytes`` joins surrogate pairs into the
character they spell and replaces any lone surrogate by U+FFFD. The JSONL and CSV exporters share
that rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, BinaryIO, ClassVar, Final

from exports.base import ExportMeta, ExportOptions, ProgressCallback
from exports.record_fields import disk_dict
from storage.models import ExecutionRecord

#: Version of the export layout (the ``export`` header, the CSV columns, the XML namespace).
EXPORT_FORMAT_VERSION: Final[str] = "1"


def utf8_bytes(text: str) -> bytes:
    """Encode ``text`` as UTF-8, repairing surrogates instead of failing.

    A surrogate pair held as two code points becomes the character it encodes; a lone surrogate
    becomes U+FFFD. Text without surrogates takes the fast path unchanged.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        repaired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return repaired.encode("utf-8")


def dumps(value: Any) -> str:
    """Serialise one value compactly, keeping non-ASCII characters and key order as given."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def export_header(meta: ExportMeta) -> dict[str, Any]:
    """The ``export`` object: what was exported, when, by which version, pseudonymised or not."""
    return {
        "exported_at": meta.exported_at.isoformat(),
        "execgraph_version": meta.execgraph_version,
        "selection": meta.selection,
        "record_count": meta.record_count,
        "pseudonymized": meta.pseudonymized,
        "format_version": EXPORT_FORMAT_VERSION,
    }


class JsonExporter:
    """``{"export": {...}, "records": [...]}``, streamed one record at a time."""

    format: ClassVar[str] = "JSON"
    extension: ClassVar[str] = "json"
    mime_type: ClassVar[str] = "application/json"

    def write(
        self,
        records: Iterable[ExecutionRecord],
        meta: ExportMeta,
        out: BinaryIO,
        *,
        options: ExportOptions,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Write the header, then each record as one line inside the ``records`` array."""
        out.write(utf8_bytes('{"export":' + dumps(export_header(meta)) + ',\n"records":['))
        written = 0
        for record in records:
            separator = "\n" if written == 0 else ",\n"
            out.write(utf8_bytes(separator + dumps(disk_dict(record))))
            written += 1
            if progress is not None:
                progress(written)
        out.write(b"\n]}\n" if written else b"]}\n")

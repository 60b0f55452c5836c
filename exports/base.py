"""The one interface every export format implements.

An exporter receives records that are already selected, ordered, item-filtered and (if asked)
pseudonymised, plus the export's metadata, and writes bytes to a binary stream. It knows nothing
of GraphQL, HTTP, the index or where the file ends up: the export service (``exports.service``)
owns temporary names, atomic renames, hashing and audit lines.

Exporters must be streaming where their format allows it (JSON, JSONL, CSV, XML): memory must not
grow with the number of records. They call ``progress(n)`` after each record with the number of
records written so far, so long exports can show progress.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol

from storage.models import ExecutionRecord

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ExportMeta:
    """Facts about one export, written into the file where the format has room for them."""

    exported_at: datetime
    execgraph_version: str
    record_count: int
    pseudonymized: bool
    #: The selection as the client gave it (filter fields or execution ids), JSON-serialisable.
    selection: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Format-independent knobs an exporter may honour."""

    #: Images are embedded in reports only when ``file_path`` names a file under this directory.
    media_dir: Path | None = None


class Exporter(Protocol):
    """A writer for one format."""

    #: Registry key, upper case, equal to the GraphQL ``ExportFormat`` value (``"CSV"``).
    format: ClassVar[str]
    #: File name extension without the dot (``"csv"``).
    extension: ClassVar[str]
    #: Media type sent with the download (``"text/csv; charset=utf-8"``).
    mime_type: ClassVar[str]

    def write(
        self,
        records: Iterable[ExecutionRecord],
        meta: ExportMeta,
        out: BinaryIO,
        *,
        options: ExportOptions,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Write ``records`` (in the order given) and ``meta`` to ``out``."""
        ...

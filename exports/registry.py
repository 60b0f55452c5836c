"""Which exporter writes which format: the one place a format name becomes a writer.

Keys are the GraphQL ``ExportFormat`` values (``"CSV"``, ``"PDF"``, ...). The streaming formats
are imported directly; the report formats (PDF, DOCX) pull in heavy layout libraries and are
imported only when first looked up, so a server without them still lists every format and serves
the others, and the failure (``FormatUnavailableError``) appears only when one is requested.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final, cast

from exports.base import Exporter
from exports.csv_exporter import CsvExporter
from exports.errors import FormatUnavailableError, UnknownFormatError
from exports.json_exporter import JsonExporter
from exports.jsonl_exporter import JsonlExporter
from exports.xml_exporter import XmlExporter

_XSD_PATH: Final[Path] = Path(__file__).resolve().parent / "assets" / "execgraph-export.xsd"


class _Registry(Mapping[str, type[Exporter]]):
    """A read-only mapping whose lazy entries are imported on first access."""

    def __init__(
        self, loaded: Mapping[str, type[Exporter]], lazy: Mapping[str, tuple[str, str]]
    ) -> None:
        self._loaded: dict[str, type[Exporter]] = dict(loaded)
        self._lazy: dict[str, tuple[str, str]] = dict(lazy)
        self._order: tuple[str, ...] = (*loaded, *lazy)

    def __getitem__(self, format: str) -> type[Exporter]:
        if format in self._loaded:
            return self._loaded[format]
        if format not in self._lazy:
            raise KeyError(format)
        module_name, class_name = self._lazy[format]
        try:
            module = importlib.import_module(module_name)
            exporter = cast(type[Exporter], getattr(module, class_name))
        except (ImportError, AttributeError) as exc:
            raise FormatUnavailableError(format) from exc
        self._loaded[format] = exporter
        return exporter

    def __contains__(self, format: object) -> bool:
        return format in self._loaded or format in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)


#: Every export format by name. Looking up PDF or DOCX imports its module.
EXPORTERS: Final[Mapping[str, type[Exporter]]] = _Registry(
    {
        JsonExporter.format: JsonExporter,
        JsonlExporter.format: JsonlExporter,
        CsvExporter.format: CsvExporter,
        XmlExporter.format: XmlExporter,
    },
    {
        "PDF": ("exports.pdf_exporter", "PdfExporter"),
        "DOCX": ("exports.docx_exporter", "DocxExporter"),
    },
)


def get_exporter(format: str) -> Exporter:
    """A fresh exporter for ``format`` (case-insensitive: ``"csv"`` and ``"CSV"`` both work).

    Raises ``UnknownFormatError`` for a name no exporter is registered under, and
    ``FormatUnavailableError`` when the format's module cannot be imported on this server.
    """
    key = format.strip().upper()
    if key not in EXPORTERS:
        raise UnknownFormatError(format, EXPORTERS)
    return EXPORTERS[key]()


def xsd_path() -> Path:
    """Where the XML export's schema (``urn:execgraph:export:1``) is installed."""
    return _XSD_PATH

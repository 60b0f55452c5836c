"""CSV export: one row per item ("long" format), the shape R, pandas and SPSS analyse best.

Every row repeats its run's columns, so a table can be filtered or grouped by any of them
without a join. A run without items still yields one row, its item columns empty, so no run is
lost by a reader that counts rows per run. The column order is part of the published format
(``COLUMNS``): the run's fields, then the item's, in the models' order (``exports.record_fields``);
the item's own time is ``item_timestamp``.
Item ``metadata`` is one compact JSON object per cell.

Encoding and dialect: UTF-8 *without* a byte-order mark, comma separated, ``"``-quoted where
needed, CRLF row ends (RFC 4180), one header row. pandas and R read this as UTF-8 directly; R's
``read.csv`` would keep a BOM as part of the first column's name, which is why none is written by
default. Excel guesses a legacy code page for BOM-less files: use ``CsvExporter(bom=True)`` (or
Excel's "From Text/CSV" import) for Excel users. Empty cells mean null. Cells can be large
(interception texts run to ~8k characters): Python's ``csv`` module needs
``csv.field_size_limit`` raised for cells over 128 KiB; pandas and R need nothing.

Spreadsheets execute cells that start with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
(CSV or formula injection; prompts are typed by pupils). Text cells starting with one of these are
prefixed with ``'`` as OWASP recommends. Numbers are written as numbers and never prefixed, so a
negative value stays numeric. Disable with ``CsvExporter(neutralize_formulas=False)`` when the
file feeds only statistics software and must hold the text exactly.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from datetime import datetime
from operator import attrgetter
from typing import Any, BinaryIO, ClassVar, Final

from exports.base import ExportMeta, ExportOptions, ProgressCallback
from exports.json_exporter import dumps, utf8_bytes
from exports.record_fields import ITEM_FIELDS, RUN_FIELDS
from storage.models import ExecutionItem, ExecutionRecord

#: Columns describing the run, repeated on each of its rows: the run's fields.
RUN_COLUMNS: Final[tuple[str, ...]] = RUN_FIELDS

#: Columns describing one item (its fields; its time is ``item_timestamp``); empty for a run
#: without items.
ITEM_COLUMNS: Final[tuple[str, ...]] = tuple(
    "item_timestamp" if name == "timestamp" else name for name in ITEM_FIELDS
)

#: The header row, in order.
COLUMNS: Final[tuple[str, ...]] = RUN_COLUMNS + ITEM_COLUMNS

#: First characters that make a spreadsheet evaluate a cell (OWASP CSV injection).
FORMULA_TRIGGERS: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r")

_BOM: Final[bytes] = b"\xef\xbb\xbf"
_FLUSH_AT: Final[int] = 1 << 16
_EMPTY_ITEM: Final[tuple[str, ...]] = ("",) * len(ITEM_COLUMNS)
_run_values: Final = attrgetter(*RUN_FIELDS)
_item_values: Final = attrgetter(*ITEM_FIELDS)


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return repr(value)


class CsvExporter:
    """One row per item with the run's columns repeated; see the module docstring."""

    format: ClassVar[str] = "CSV"
    extension: ClassVar[str] = "csv"
    mime_type: ClassVar[str] = "text/csv; charset=utf-8"

    def __init__(self, *, bom: bool = False, neutralize_formulas: bool = True) -> None:
        self.bom = bom
        self.neutralize_formulas = neutralize_formulas

    def cell(self, value: Any) -> str:
        """Format one value: empty for null, numbers as numbers, times in ISO 8601, objects as
        JSON, text neutralised if needed."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return _number(value)
        if isinstance(value, str):
            text = value
        elif isinstance(value, datetime):
            text = value.isoformat()
        else:
            text = dumps(value)
        if self.neutralize_formulas and text.startswith(FORMULA_TRIGGERS):
            return "'" + text
        return text

    def run_cells(self, record: ExecutionRecord) -> list[str]:
        """The run columns of ``record``."""
        cell = self.cell
        return [cell(value) for value in _run_values(record)]

    def item_cells(self, item: ExecutionItem) -> list[str]:
        """The item columns of ``item``."""
        cell = self.cell
        return [cell(value) for value in _item_values(item)]

    def write(
        self,
        records: Iterable[ExecutionRecord],
        meta: ExportMeta,
        out: BinaryIO,
        *,
        options: ExportOptions,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Write the header row, then every item of every record, flushing in small chunks."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")

        def flush() -> None:
            out.write(utf8_bytes(buffer.getvalue()))
            buffer.seek(0)
            buffer.truncate()

        if self.bom:
            out.write(_BOM)
        writer.writerow(COLUMNS)
        for written, record in enumerate(records, start=1):
            run = self.run_cells(record)
            if not record.items:
                writer.writerow(run + list(_EMPTY_ITEM))
            for item in record.items:
                writer.writerow(run + self.item_cells(item))
            if buffer.tell() >= _FLUSH_AT:
                flush()
            if progress is not None:
                progress(written)
        flush()

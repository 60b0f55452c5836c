"""Export figures for the benchmark: throughput of the streaming formats, time of the reports,
and the memory of a large JSONL export.

Measured in-process on generated records (exporters never see the web layer), writing to a sink
that only counts bytes, so disk speed does not blur the exporters' own cost.
"""

from __future__ import annotations

import io
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exports.base import ExportMeta, ExportOptions
from exports.registry import get_exporter
from graph import __version__
from storage.demo import generate_records
from storage.models import ExecutionRecord


class _CountingSink(io.RawIOBase):
    """A binary stream that keeps only the number of bytes written."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        self.size += size
        return size


@dataclass(slots=True)
class ExportFigures:
    """What the export benchmark measured."""

    records: int
    report_runs: int
    jsonl_records_per_s: float
    csv_records_per_s: float
    pdf_s: float
    docx_s: float
    jsonl_peak_mb: float


def _records(count: int, seed: int) -> Iterator[ExecutionRecord]:
    for data in generate_records(count, seed=seed):
        yield ExecutionRecord.model_validate(data)


def _meta(count: int) -> ExportMeta:
    return ExportMeta(
        exported_at=datetime.now(UTC),
        execgraph_version=__version__,
        record_count=count,
        pseudonymized=False,
    )


def _export_seconds(fmt: str, records: list[ExecutionRecord]) -> float:
    sink = io.BufferedWriter(_CountingSink())
    started = time.perf_counter()
    get_exporter(fmt).write(records, _meta(len(records)), sink, options=ExportOptions())
    sink.flush()
    return time.perf_counter() - started


def measure_exports(records: int = 10_000, report_runs: int = 100, seed: int = 0) -> ExportFigures:
    """Throughput of JSONL and CSV over ``records``, seconds for a ``report_runs``-run PDF and
    DOCX, and the peak Python memory of a ``records``-run JSONL export fed one record at a time."""
    loaded = list(_records(records, seed))
    jsonl = _export_seconds("JSONL", loaded)
    csv = _export_seconds("CSV", loaded)
    reports = loaded[:report_runs]
    pdf = _export_seconds("PDF", reports)
    docx = _export_seconds("DOCX", reports)
    del loaded, reports
    tracemalloc.start()
    try:
        sink = io.BufferedWriter(_CountingSink())
        get_exporter("JSONL").write(
            _records(records, seed), _meta(records), sink, options=ExportOptions()
        )
        sink.flush()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return ExportFigures(
        records=records,
        report_runs=report_runs,
        jsonl_records_per_s=records / jsonl,
        csv_records_per_s=records / csv,
        pdf_s=pdf,
        docx_s=docx,
        jsonl_peak_mb=peak / 1e6,
    )


def render_exports(figures: ExportFigures) -> str:
    """The benchmark's export lines."""
    return "\n".join(
        [
            "exports (in-process, generated records, writing to a byte counter)",
            f"  JSONL over {figures.records:,} records: "
            f"{figures.jsonl_records_per_s:,.0f} records/s",
            f"  CSV over {figures.records:,} records:   {figures.csv_records_per_s:,.0f} records/s",
            f"  PDF of {figures.report_runs} runs:  {figures.pdf_s:.1f} s",
            f"  DOCX of {figures.report_runs} runs: {figures.docx_s:.1f} s",
            f"  peak memory of a {figures.records:,}-record JSONL export (records streamed): "
            f"{figures.jsonl_peak_mb:.2f} MB (Python heap, tracemalloc)",
        ]
    )

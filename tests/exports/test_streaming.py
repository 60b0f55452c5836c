"""The streaming formats write as they go and use memory independent of the record count."""

from __future__ import annotations

import io
import os
import tracemalloc
from collections.abc import Iterator

import pytest

from exports.base import Exporter, ExportOptions
from exports.csv_exporter import CsvExporter
from exports.json_exporter import JsonExporter
from exports.jsonl_exporter import JsonlExporter
from exports.xml_exporter import XmlExporter
from storage.models import ExecutionRecord
from tests.exports.support import make_meta, mixed

STREAMING = [JsonExporter, JsonlExporter, CsvExporter, XmlExporter]


@pytest.mark.parametrize("exporter_class", STREAMING)
def test_bytes_reach_the_stream_before_the_last_record_is_read(
    exporter_class: type[Exporter],
) -> None:
    out = io.BytesIO()
    written_before_last: list[int] = []

    def records() -> Iterator[ExecutionRecord]:
        for n, rec in enumerate(mixed(200)):
            if n == 199:
                written_before_last.append(len(out.getvalue()))
            yield rec

    exporter_class().write(records(), make_meta(200), out, options=ExportOptions())

    assert written_before_last[0] > len(out.getvalue()) // 2


def peak_memory(exporter: Exporter, count: int) -> int:
    with open(os.devnull, "wb") as sink:
        tracemalloc.start()
        try:
            exporter.write(mixed(count), make_meta(count), sink, options=ExportOptions())
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


@pytest.mark.slow
@pytest.mark.parametrize("exporter_class", STREAMING)
def test_peak_memory_does_not_grow_with_the_number_of_records(
    exporter_class: type[Exporter],
) -> None:
    peak_memory(exporter_class(), 20)  # warm caches (imports, regexes, pydantic validators)

    small = peak_memory(exporter_class(), 200)
    large = peak_memory(exporter_class(), 2_000)

    assert large < small * 1.5 + 256 * 1024, (small, large)

"""The registry maps format names to exporters and loads the report formats lazily."""

from __future__ import annotations

import sys

import pytest
from lxml import etree

from exports.errors import FormatUnavailableError, UnknownFormatError
from exports.registry import EXPORTERS, _Registry, get_exporter, xsd_path

EXPECTED = {
    "JSON": ("json", "application/json"),
    "JSONL": ("jsonl", "application/x-ndjson"),
    "CSV": ("csv", "text/csv; charset=utf-8"),
    "XML": ("xml", "application/xml"),
}


def test_every_format_is_registered() -> None:
    assert set(EXPORTERS) == {"JSON", "JSONL", "CSV", "XML", "PDF", "DOCX"}
    assert len(EXPORTERS) == 6


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items())
def test_streaming_exporters_declare_their_format(name: str, expected: tuple[str, str]) -> None:
    exporter = get_exporter(name)

    assert (exporter.format, exporter.extension, exporter.mime_type) == (name, *expected)


@pytest.mark.parametrize("name", ["PDF", "DOCX"])
def test_report_exporters_load_on_first_use(name: str) -> None:
    exporter_class = EXPORTERS[name]

    assert exporter_class.format == name
    assert exporter_class.extension == name.lower()


def test_names_are_case_insensitive() -> None:
    assert get_exporter("csv").format == "CSV"
    assert get_exporter(" jsonl ").format == "JSONL"


def test_unknown_format_raises_a_typed_error_listing_the_known_ones() -> None:
    with pytest.raises(UnknownFormatError) as caught:
        get_exporter("XLSX")

    assert caught.value.format == "XLSX"
    assert "CSV" in str(caught.value)
    assert "DOCX" in str(caught.value)


def test_a_missing_module_fails_only_when_its_format_is_used() -> None:
    registry = _Registry({}, {"ODT": ("exports.no_such_exporter", "OdtExporter")})

    assert "ODT" in registry
    assert list(registry) == ["ODT"]
    assert "exports.no_such_exporter" not in sys.modules
    with pytest.raises(FormatUnavailableError, match="ODT export is not available"):
        registry["ODT"]
    with pytest.raises(KeyError):
        registry["RTF"]


def test_the_schema_ships_with_the_package_and_parses() -> None:
    path = xsd_path()

    assert path.name == "execgraph-export.xsd"
    etree.XMLSchema(etree.parse(str(path)))

"""The DOCX exporter, read back with python-docx and lxml.

Golden file: ``golden/report.docx.txt`` lists every body block of the document made from
``golden_records()`` (paragraph style and text, tables row by row) and its core properties. After
an intended change, regenerate it with ``EXECGRAPH_UPDATE_GOLDEN=1 pytest tests/exports`` and
review the diff.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from docx.document import Document as WordDocument
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree
from PIL import Image

from exports.base import ExportMeta, ExportOptions
from exports.docx_exporter import DocxExporter
from storage.models import ExecutionRecord
from tests.exports.hostile import CASES
from tests.exports.hostile import hostile_record as shared_hostile_record
from tests.exports.test_report import (
    GOLDEN_META,
    HOSTILE_SNIPPETS,
    golden_records,
    hostile_record,
)
from tests.factory import record, record_dict

GOLDEN = Path(__file__).parent / "golden" / "report.docx.txt"
META = ExportMeta(
    exported_at=datetime(2025, 12, 1, 9, 30, tzinfo=UTC),
    execgraph_version="0.1.0",
    record_count=1,
    pseudonymized=True,
)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def export(records: Iterable[ExecutionRecord], *, meta: ExportMeta = META, **options: Any) -> bytes:
    out = io.BytesIO()
    DocxExporter().write(records, meta, out, options=ExportOptions(**options))
    return out.getvalue()


def read(data: bytes) -> WordDocument:
    return Document(io.BytesIO(data))


def blocks(document: WordDocument) -> Iterator[Paragraph | Table]:
    yield from document.iter_inner_content()


def headings(document: WordDocument) -> list[tuple[str, str]]:
    return [
        (p.style.name, p.text)
        for p in document.paragraphs
        if p.style is not None and p.style.name.startswith(("Heading", "Title"))
    ]


def all_text(document: WordDocument) -> str:
    parts: list[str] = []
    for block in blocks(document):
        if isinstance(block, Paragraph):
            parts.append(block.text)
        else:
            parts.extend(cell.text for row in block.rows for cell in row.cells)
    return "\n".join(parts)


def test_declares_its_format() -> None:
    assert (DocxExporter.format, DocxExporter.extension, DocxExporter.mime_type) == (
        "DOCX",
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )


def test_runs_sections_and_items_use_word_heading_styles_in_order() -> None:
    runs = [
        record(execution_id="exec_20251103_143025_aaaaaaaa", shape="stillepost", outputs=2),
        record(execution_id="exec_20251103_150000_bbbbbbbb", shape="blocked1"),
    ]
    found = headings(read(export(runs)))
    assert found[0] == ("Title", "execgraph export")
    assert [text for style, text in found if style == "Heading 1"] == [
        "Run exec_20251103_143025_aaaaaaaa",
        "Run exec_20251103_150000_bbbbbbbb",
    ]
    first_run = found[1 : found.index(("Heading 1", "Run exec_20251103_150000_bbbbbbbb"))]
    assert [text for style, text in first_run if style == "Heading 2"] == [
        "Facts",
        "Timeline",
        "Input",
        "Translation",
        "Safety decisions",
        "Interception",
        "Outputs",
        "Pipeline events",
    ]
    assert [text for style, text in first_run if style == "Heading 3"] == [
        "Text input",
        "Translation",
        "Output 1: pre-output safety check",
        "Output 2: pre-output safety check",
        *(f"Iteration {n} of 8" for n in range(1, 9)),
        "Final interception",
        "Output 1 of 2: image",
        "Output 2 of 2: image",
        "Pipeline start",
        "Pipeline complete",
    ]


def test_item_text_and_details_follow_their_heading() -> None:
    document = read(export([record(shape="stillepost")]))
    paragraphs = [p.text for p in document.paragraphs]
    start = paragraphs.index("Iteration 3 of 8")
    assert paragraphs[start + 1] == "Iteration 3: Ein Haus aus Wolken"
    assert "Item: #6 interception_iteration" in paragraphs[start + 2 : start + 12]
    assert "metadata.language: hi" in paragraphs[start + 2 : start + 12]


def test_facts_and_timeline_are_tables() -> None:
    document = read(export([record(shape="image", user_id="p_7c1e9a2b4d")]))
    cover, facts, timeline = (
        [[c.text for c in row.cells] for row in t.rows] for t in document.tables
    )
    assert cover[0][0] == "Exported at"
    assert ["User ID", "p_7c1e9a2b4d"] in facts
    assert ["Items", "7"] in facts
    assert timeline[0] == ["Stage", "Name", "Items", "Duration"]
    assert timeline[5] == ["4", "Output", "1", "12.500 s"]
    assert all(run.bold for run in document.tables[2].rows[0].cells[0].paragraphs[0].runs)


def test_each_run_starts_on_a_new_page() -> None:
    document = read(export([record(), record()]))
    runs = [p for p in document.paragraphs if p.style is not None and p.style.name == "Heading 1"]
    assert len(runs) == 2
    assert all(p.paragraph_format.page_break_before for p in runs)


def test_progress_is_reported_after_each_record() -> None:
    seen: list[int] = []
    out = io.BytesIO()
    DocxExporter().write(
        [record(shape="text")] * 3, META, out, options=ExportOptions(), progress=seen.append
    )
    assert seen == [1, 2, 3]


def test_core_properties_are_pinned_and_name_no_person() -> None:
    props = read(export([record()])).core_properties
    assert props.title == "execgraph export"
    assert props.created == datetime(2025, 12, 1, 9, 30, tzinfo=UTC)
    assert props.modified == datetime(2025, 12, 1, 9, 30, tzinfo=UTC)
    assert props.author == ""
    assert props.last_modified_by == ""
    assert props.revision == 1


def test_same_input_gives_the_same_bytes() -> None:
    first = export(golden_records(), meta=GOLDEN_META)
    assert export(golden_records(), meta=GOLDEN_META) == first
    dates = {info.date_time for info in zipfile.ZipFile(io.BytesIO(first)).infolist()}
    assert dates == {(2025, 12, 1, 9, 30, 0)}


def test_document_xml_parses_and_carries_no_illegal_characters() -> None:
    data = export([shared_hostile_record(), hostile_record()])
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml")
    root = etree.fromstring(xml)
    assert _XML_ILLEGAL.search("".join(root.itertext())) is None


def test_hostile_corpus_survives_as_text() -> None:
    document = read(export([shared_hostile_record(), hostile_record()]))
    body = all_text(document)
    for case in CASES:
        if case.name in {
            "html",
            "cdata_end",
            "formula_equals",
            "cjk",
            "hindi",
            "quotes_and_commas",
        }:
            assert case.text in body, case.name
    assert "bell\ufffd nul\ufffd esc\ufffd" in body
    assert "pair 😀 held" in body
    assert "<script>alert(1)</script>" in body
    assert "future_item_<b>\ufffd (unknown item type)" in body
    assert "Donaudampfschifffahrt" in body
    assert "more characters not shown in this report" in body


def test_right_to_left_paragraphs_are_marked() -> None:
    data = export([record(prompt=HOSTILE_SNIPPETS["rtl"] + " then latin")])
    document = read(data)
    prompt = next(p for p in document.paragraphs if p.text.startswith("حوت"))
    assert prompt._p.pPr is not None
    assert (
        prompt._p.pPr.find("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}bidi")
        is not None
    )
    latin = next(p for p in document.paragraphs if p.text == "Text input")
    assert "bidi" not in etree.tostring(latin._p).decode()


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(root / "out.png")
    Image.new("RGB", (40, 30), (30, 30, 200)).save(tmp_path / "secret.png")
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    (root / "broken.png").write_bytes(b"not a png")
    return root


def image_run(file_path: str) -> ExecutionRecord:
    data = record_dict(shape="image")
    data["items"][5]["file_path"] = file_path
    return ExecutionRecord.model_validate(data)


def test_images_are_embedded_only_from_media_dir(media: Path) -> None:
    assert len(read(export([image_run("out.png")], media_dir=media)).inline_shapes) == 1
    assert len(read(export([image_run("out.png")])).inline_shapes) == 0
    for outside in ("link.png", "../secret.png", "https://x.invalid/out.png"):
        document = read(export([image_run(outside)], media_dir=media))
        assert len(document.inline_shapes) == 0, outside
        assert f"File: {outside}" in all_text(document)
    broken = read(export([image_run("broken.png")], media_dir=media))
    assert "image not embedded" in all_text(broken)


def test_only_the_pseudonymous_ids_given_are_present() -> None:
    runs = [record(shape="stillepost", user_id="p_7c1e9a2b4d", session_id="p_03f8b6de51")]
    data = export(runs)
    package = zipfile.ZipFile(io.BytesIO(data))
    xml = b"".join(package.read(name) for name in package.namelist() if name.endswith(".xml"))
    assert set(re.findall(rb"p_[0-9a-f]{10}", xml)) == {b"p_7c1e9a2b4d", b"p_03f8b6de51"}
    assert b"anonymous" not in xml
    assert b"python-docx" not in package.read("docProps/core.xml")


def describe(document: WordDocument) -> str:
    lines: list[str] = []
    for block in blocks(document):
        if isinstance(block, Paragraph):
            style = block.style.name if block.style is not None else "?"
            lines.append(f"[{style}] {block.text}")
        else:
            lines.extend("| " + " | ".join(cell.text for cell in row.cells) for row in block.rows)
    props = document.core_properties
    lines.append(f"core: {props.title!r} {props.subject!r} {props.comments!r} {props.created}")
    return "\n".join(lines) + "\n"


def test_matches_the_golden_file() -> None:
    actual = describe(read(export(golden_records(), meta=GOLDEN_META)))
    if os.environ.get("EXECGRAPH_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(actual, encoding="utf-8")
    assert actual == GOLDEN.read_text(encoding="utf-8")

"""The PDF exporter, read back with pypdf.

Golden file: ``golden/report.pdf.txt`` holds the text, page by page, and the bookmark tree of the
PDF made from ``golden_records()``. After an intended change, regenerate it with
``EXECGRAPH_UPDATE_GOLDEN=1 pytest tests/exports`` and review the diff.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from exports.base import ExportMeta, ExportOptions
from exports.pdf_exporter import PdfExporter
from storage.models import ExecutionRecord
from tests.exports.hostile import hostile_record as shared_hostile_record
from tests.exports.test_report import (
    GOLDEN_META,
    HOSTILE_SNIPPETS,
    LONG_WORD,
    golden_records,
    hostile_record,
)
from tests.factory import BASE_TIME, item_dict, record, record_dict

#: Each test lays out and renders a PDF report: about 0.5-1 s apiece.
pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden" / "report.pdf.txt"
META = ExportMeta(
    exported_at=datetime(2025, 12, 1, 9, 30, tzinfo=UTC),
    execgraph_version="0.1.0",
    record_count=1,
    pseudonymized=True,
)


def export(records: Iterable[ExecutionRecord], *, meta: ExportMeta = META, **options: Any) -> bytes:
    out = io.BytesIO()
    PdfExporter().write(records, meta, out, options=ExportOptions(**options))
    return out.getvalue()


def pages(data: bytes) -> list[str]:
    # pypdf reads the CID-keyed CJK font's two-byte codes with a NUL before each glyph.
    reader = PdfReader(io.BytesIO(data))
    return [page.extract_text().replace("\x00", "") for page in reader.pages]


def text(data: bytes) -> str:
    return "\n".join(pages(data))


def outline(data: bytes) -> list[str]:
    lines: list[str] = []

    def walk(items: list[Any], depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
            else:
                lines.append("  " * depth + str(item.title))

    walk(PdfReader(io.BytesIO(data)).outline, 0)
    return lines


def test_declares_its_format() -> None:
    assert (PdfExporter.format, PdfExporter.extension, PdfExporter.mime_type) == (
        "PDF",
        "pdf",
        "application/pdf",
    )


def test_cover_block_describes_the_export() -> None:
    meta = ExportMeta(
        exported_at=datetime(2025, 12, 1, 9, 30, tzinfo=UTC),
        execgraph_version="9.8.7",
        record_count=2,
        pseudonymized=False,
        selection={"safetyLevel": "kids"},
    )
    cover = pages(export([record()], meta=meta))[0]
    for expected in (
        "execgraph export",
        "2025-12-01 09:30:00+00:00",
        "9.8.7",
        "Records",
        "Pseudonymised",
        '{"safetyLevel": "kids"}',
    ):
        assert expected in cover


def test_every_record_and_item_appears_in_reading_order() -> None:
    runs = [
        record(execution_id="exec_20251103_143025_aaaaaaaa", shape="stillepost", outputs=2),
        record(execution_id="exec_20251103_150000_bbbbbbbb", shape="image"),
    ]
    data = export(runs)
    body = text(data)
    expected = [
        "Run exec_20251103_143025_aaaaaaaa",
        "Text input",
        "Ein Haus aus Wolken",
        "EN: Ein Haus aus Wolken",
        "Output 1: pre-output safety check",
        *(f"Iteration {n} of 8" for n in range(1, 9)),
        "Final interception",
        "Output 1 of 2: image",
        "Output 2 of 2: image",
        "Run exec_20251103_150000_bbbbbbbb",
        "Text input",
        "Output 1 of 1: image",
    ]
    position = 0
    for needle in expected:
        found = body.find(needle, position)
        assert found >= 0, f"{needle!r} missing after position {position}"
        position = found + len(needle)


def test_each_run_starts_on_a_new_page_and_pages_are_numbered() -> None:
    data = export([record(shape="text"), record(shape="blocked1")])
    texts = pages(data)
    runs = [page for page in texts if "Run exec_" in page]
    assert len(runs) == 2
    assert all(page.startswith("Run exec_") for page in runs)
    for number, page in enumerate(texts, start=1):
        assert f"page {number} of {len(texts)}" in page


def test_bookmarks_follow_runs_sections_and_items() -> None:
    tree = outline(export([record(shape="stillepost")]))
    assert tree[0] == "Run exec_20251103_143025_0000abcd"
    assert "  Interception" in tree
    assert "    Iteration 8 of 8" in tree


def test_progress_is_reported_after_each_record() -> None:
    seen: list[int] = []
    out = io.BytesIO()
    PdfExporter().write(
        [record(shape="text")] * 3, META, out, options=ExportOptions(), progress=seen.append
    )
    assert seen == [1, 2, 3]


def test_same_input_gives_the_same_bytes_dated_by_the_export() -> None:
    first = export(golden_records(), meta=GOLDEN_META)
    assert export(golden_records(), meta=GOLDEN_META) == first
    info = PdfReader(io.BytesIO(first)).metadata
    assert info is not None
    assert info.creation_date == datetime(2025, 12, 1, 9, 30, tzinfo=UTC)
    assert info.author is None


def test_naive_export_time_is_taken_as_utc() -> None:
    meta = ExportMeta(datetime(2025, 12, 1, 9, 30), "0.1.0", 1, True)
    info = PdfReader(io.BytesIO(export([record()], meta=meta))).metadata
    assert info is not None
    assert info.creation_date == datetime(2025, 12, 1, 9, 30, tzinfo=UTC)


def test_every_script_is_drawn_with_an_embedded_font() -> None:
    scripts = ("umlaut", "cjk", "devanagari", "rtl", "emoji")
    data = export([record(prompt=" ".join(HOSTILE_SNIPPETS[name] for name in scripts))])
    reader = PdfReader(io.BytesIO(data))
    fonts = {
        str(cast(DictionaryObject, font)["/BaseFont"]).split("+")[-1]
        for page in reader.pages
        for font in cast(
            DictionaryObject, cast(DictionaryObject, page["/Resources"])["/Font"]
        ).values()
    }
    assert fonts == {
        "NotoSans",
        "NotoSansBold",
        "NotoSansCJKJP",
        "NotoSansDevanagari",
        "NotoSansArabic",
        "NotoSansHebrew",
        "NotoEmoji",
    }
    body = text(data)
    for word in ("Grüße", "하늘을", "クジラ", "आसमान"):
        assert word in body
    assert re.search(r"\[U\+[0-9A-F]{4,6}\]", body) is None


def test_text_is_never_read_as_markup_or_page_alias() -> None:
    body = text(
        export([record(prompt=HOSTILE_SNIPPETS["markup"] + " " + HOSTILE_SNIPPETS["formula"])])
    )
    for literal in ("<img src=x>", "]]>", "<script>alert(1)</script>", "{nb}", "**b**", "=cmd|"):
        assert literal in body


def test_characters_without_any_glyph_are_marked() -> None:
    body = text(export([record(prompt="Ethiopic ሀ and private \U0010fffd")]))
    assert "[U+1200]" in body
    assert "[U+10FFFD]" in body


def test_hostile_corpus_does_not_break_the_report() -> None:
    data = export([shared_hostile_record(), hostile_record()])
    body = text(data)
    assert body.count("Run exec_") == 2
    for literal in ("<img src=x onerror=alert(1)>", "]]> <![CDATA[ x ]]> &amp;", "=cmd|"):
        assert literal in body
    assert "future_item_<b>" in body
    assert "more characters not shown in this report" in body
    assert "Donaudampfschifffahrt" in body


def test_tall_field_values_still_fit_a_page() -> None:
    extra = item_dict(
        0,
        "stage_transition",
        stage=2,
        at=BASE_TIME,
        metadata={"lines": "\n" * 5000, "wide": "鯨😀" * 3000, "key" * 100: "x" * 9000},
    )
    body = text(export([record(shape="text", extra_items=[extra])]))
    assert "more lines not shown in this report" in body


def test_long_word_is_wrapped_within_the_page() -> None:
    data = export([record(shape="text", prompt=LONG_WORD[:3000])])
    lines = [line for page in pages(data) for line in page.splitlines() if "xxxx" in line]
    assert len(lines) > 20
    assert max(len(line) for line in lines) < 150


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(root / "out.png")
    Image.new("RGB", (40, 30), (30, 30, 200)).save(tmp_path / "secret.png")
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    return root


def image_run(file_path: str) -> ExecutionRecord:
    data = record_dict(shape="image")
    data["items"][5]["file_path"] = file_path
    return ExecutionRecord.model_validate(data)


def image_count(data: bytes) -> int:
    return sum(len(page.images) for page in PdfReader(io.BytesIO(data)).pages)


def test_images_are_embedded_only_from_media_dir(media: Path, tmp_path: Path) -> None:
    assert image_count(export([image_run("out.png")], media_dir=media)) == 1
    assert image_count(export([image_run("out.png")])) == 0
    for outside in (
        "link.png",
        "../secret.png",
        str(tmp_path / "secret.png"),
        "https://x.invalid/out.png",
    ):
        data = export([image_run(outside)], media_dir=media)
        assert image_count(data) == 0, outside
        assert outside in text(data).replace("\n", "")


def test_a_broken_image_file_is_named_not_fatal(media: Path) -> None:
    (media / "broken.png").write_bytes(b"not a png")
    body = text(export([image_run("broken.png")], media_dir=media))
    assert "image not embedded" in body
    assert "broken.png" in body


def test_only_the_pseudonymous_ids_given_are_present() -> None:
    runs = [record(shape="stillepost", user_id="p_7c1e9a2b4d", session_id="p_03f8b6de51")]
    data = export(runs)
    assert set(re.findall(r"p_[0-9a-f]{10}", text(data))) == {"p_7c1e9a2b4d", "p_03f8b6de51"}
    assert "anonymous" not in text(data)
    info = PdfReader(io.BytesIO(data)).metadata
    assert info is not None
    assert info.author is None


def test_matches_the_golden_file() -> None:
    data = export(golden_records(), meta=GOLDEN_META)
    parts = [f"=== page {n} ===\n{page}" for n, page in enumerate(pages(data), start=1)]
    actual = "\n".join(["=== outline ===", *outline(data), *parts]) + "\n"
    if os.environ.get("EXECGRAPH_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(actual, encoding="utf-8")
    assert actual == GOLDEN.read_text(encoding="utf-8")

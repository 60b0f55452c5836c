"""PDF reports of runs, for reading and printing, written with fpdf2.

A PDF export opens with a cover block (when, by which version, how many runs, whether ids are
pseudonymised, the selection), then gives each run its own page(s) in the order of
:mod:`exports.report`, with a bookmark per run, section and iteration, and page numbers.

Why it looks the way it does:

* Fonts are the vendored Noto faces (:mod:`exports.fonts`); fpdf2 embeds subsets of them, so the
  file shows Korean, Japanese, Hindi, Arabic and emoji on any viewer. Emoji are monochrome.
* Text shaping (HarfBuzz, through uharfbuzz) is switched on only for text that needs it: Arabic
  and Devanagari, bidirectional text and emoji sequences. It is correct for all text but much
  slower, and most workshop text is Latin, Hangul or kana.
* Content is printed as plain text, never interpreted as markup: ``<img src=x>`` in a prompt is
  shown as those characters. fpdf2 breaks words longer than a line.
* Images are embedded only when :func:`exports.report.resolve_media` finds the file under
  ``ExportOptions.media_dir``; otherwise the file reference is printed.
* The output is deterministic: the creation date is the export time and nothing else varies, so
  the same input gives the same bytes (the golden tests rely on it).

fpdf2 builds the whole document in memory before writing it; PDF exports are meant for the tens
or hundreds of runs a person reads, not for bulk data (use JSONL or CSV for that).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, ClassVar, Final

from fpdf import FPDF
from fpdf.enums import TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace

from exports.base import ExportMeta, ExportOptions, ProgressCallback
from exports.fonts import PRIMARY_FAMILY, mark_missing_glyphs, register_fonts
from exports.report import (
    TIMELINE_HEADER,
    Entry,
    Field,
    RunReport,
    build_report,
    clean_text,
    export_facts,
    export_time,
)
from storage.models import ExecutionRecord

_MARGIN: Final = 18.0
_LABEL_WIDTH: Final = 44.0
_BODY_SIZE: Final = 10.0
_SMALL_SIZE: Final = 8.5
_HEADING_SIZES: Final = {0: 20.0, 1: 16.0, 2: 13.0, 3: 11.0}
_GREY: Final = (90, 90, 90)
# fpdf2 replaces this alias with the page count wherever it occurs in text. Cleaned report text
# never contains NUL, so a prompt that says "{nb}" (fpdf2's default alias) stays as written. Its
# length reserves room for six digits.
_PAGE_COUNT: Final = "\x00pages"
_NOTE: Final = (
    "Each run starts on a new page. Item numbers (#n) are the sequence numbers in the run's JSON "
    "record. Characters no document can carry are shown as \ufffd; characters none of the "
    "embedded fonts can draw are shown as [U+XXXX]."
)
# Scripts and sequences that need HarfBuzz: Hebrew to Myanmar (incl. Arabic and the Indic
# scripts), Khmer, Devanagari extended, Arabic presentation forms and variation selectors,
# joiners and bidi controls, emoji.
_NEEDS_SHAPING: Final = re.compile(
    "[\u0590-\u109f\u1780-\u17ff\ua8e0-\ua8ff\ufb1d-\ufeff"
    "\u200c-\u200f\u202a-\u202e\u2066-\u2069\U0001f000-\U0001faff]"
)


class _ReportPdf(FPDF):
    """An FPDF document whose pages carry a page number in the footer."""

    def footer(self) -> None:
        shaping = self.text_shaping
        self.text_shaping = None
        self.set_y(-12)
        self.set_font(PRIMARY_FAMILY, "", _SMALL_SIZE)
        self.set_text_color(*_GREY)
        self.cell(0, 5, f"execgraph export - page {self.page_no()} of {_PAGE_COUNT}", align="C")
        self.set_text_color(0)
        self.text_shaping = shaping


class PdfExporter:
    """Writes a readable PDF report: a cover block, then one section per run."""

    format: ClassVar[str] = "PDF"
    extension: ClassVar[str] = "pdf"
    mime_type: ClassVar[str] = "application/pdf"

    def write(
        self,
        records: Iterable[ExecutionRecord],
        meta: ExportMeta,
        out: BinaryIO,
        *,
        options: ExportOptions,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Write the report of ``records`` (in the order given) to ``out``."""
        pdf = _new_document(meta)
        _cover(pdf, meta)
        for count, record in enumerate(records, start=1):
            _run(pdf, build_report(record, media_dir=options.media_dir))
            if progress is not None:
                progress(count)
        out.write(pdf.output())


def _new_document(meta: ExportMeta) -> _ReportPdf:
    pdf = _ReportPdf(format="A4")
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN)
    pdf.alias_nb_pages(_PAGE_COUNT)
    pdf.set_creation_date(export_time(meta))
    pdf.set_title("execgraph export")
    pdf.set_creator(clean_text(f"execgraph {meta.execgraph_version}"))
    pdf.set_lang("en")
    register_fonts(pdf)
    return pdf


def _cover(pdf: _ReportPdf, meta: ExportMeta) -> None:
    pdf.add_page()
    _heading(pdf, "execgraph export", 0)
    _fields(pdf, export_facts(meta))
    pdf.ln(3)
    _paragraph(pdf, _NOTE, size=_SMALL_SIZE)


def _run(pdf: _ReportPdf, report: RunReport) -> None:
    pdf.add_page()
    _heading(pdf, report.title, 1)
    _heading(pdf, "Facts", 2)
    _fields(pdf, report.facts)
    _heading(pdf, "Timeline", 2)
    _table(pdf, TIMELINE_HEADER, [row.cells() for row in report.timeline])
    for section in report.sections:
        _heading(pdf, section.title, 2)
        for entry in section.entries:
            _entry(pdf, entry)


def _entry(pdf: _ReportPdf, entry: Entry) -> None:
    _heading(pdf, entry.title, 3)
    if entry.text is not None:
        _paragraph(pdf, entry.text)
        pdf.ln(1.5)
    if entry.image is not None:
        _image(pdf, entry.image)
    _fields(pdf, entry.fields)
    pdf.ln(1)


def _heading(pdf: _ReportPdf, text: str, level: int) -> None:
    """A bold heading that never ends a page, with a bookmark below the cover title."""
    size = _HEADING_SIZES[level]
    if pdf.will_page_break(size * 0.35 + 20):
        pdf.add_page()
    pdf.ln(size * 0.2)
    if level > 0:
        pdf.start_section(text, level=level - 1)
    _paragraph(pdf, text, size=size, style="B")
    pdf.ln(1)


def _paragraph(pdf: _ReportPdf, text: str, *, size: float = _BODY_SIZE, style: str = "") -> None:
    pdf.set_font(PRIMARY_FAMILY, style, size)
    _set_shaping(pdf, text)
    pdf.multi_cell(0, size * 0.5, _printable(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")


def _fields(pdf: _ReportPdf, fields: Sequence[Field]) -> None:
    """Label/value rows; report.py caps values so that every row fits on a page."""
    _table(pdf, None, [(field.label, field.value) for field in fields])


def _table(pdf: _ReportPdf, header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> None:
    cells = [[_printable(cell) for cell in row] for row in rows]
    pdf.set_font(PRIMARY_FAMILY, "", _SMALL_SIZE + 0.5)
    _set_shaping(pdf, " ".join(" ".join(row) for row in cells))
    if header is None:
        widths: tuple[float, ...] = (_LABEL_WIDTH, pdf.epw - _LABEL_WIDTH)
        layout = TableBordersLayout.NONE
    else:
        widths = (16.0, 60.0, 20.0, 30.0)
        cells.insert(0, list(header))
        layout = TableBordersLayout.SINGLE_TOP_LINE
    with pdf.table(
        col_widths=widths,
        width=sum(widths),
        align="LEFT",
        text_align="LEFT",
        borders_layout=layout,
        first_row_as_headings=header is not None,
        headings_style=FontFace(emphasis="BOLD"),
        line_height=4.4,
        padding=(0.6, 1.2),
    ) as table:
        for row in cells:
            table_row = table.row()
            for number, cell in enumerate(row):
                style = (
                    FontFace(emphasis="BOLD", color=_GREY)
                    if header is None and number == 0
                    else None
                )
                table_row.cell(cell, style=style)
    pdf.ln(1)


def _image(pdf: _ReportPdf, path: Path) -> None:
    """Embed a media file; a file the image decoder rejects is named instead."""
    height = 80.0
    if pdf.will_page_break(height + 4):
        pdf.add_page()
    try:
        pdf.image(path, x=pdf.l_margin, w=120.0, h=height, keep_aspect_ratio=True)
    except Exception as exc:  # a broken media file must not break the export
        _paragraph(pdf, f"(image not embedded: {type(exc).__name__})", size=_SMALL_SIZE)
    pdf.ln(2)


def _set_shaping(pdf: _ReportPdf, text: str) -> None:
    pdf.set_text_shaping(_NEEDS_SHAPING.search(text) is not None)


def _printable(text: str) -> str:
    return mark_missing_glyphs(text.replace("\t", "    "))

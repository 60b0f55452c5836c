"""DOCX reports of runs, for qualitative data analysis software, written with python-docx.

Researchers import these files into MAXQDA, ATLAS.ti or NVivo and code them by section, which
those programs do through Word's built-in heading styles. So the structure of
:mod:`exports.report` maps onto real styles: "Title" for the export, "Heading 1" per run,
"Heading 2" per section (Facts, Timeline, Input, ...), "Heading 3" per item (each interception
iteration, each output). Facts and the stage timeline are Word tables; item details are short
"Label: value" paragraphs under the item's text.

Word refuses (or "repairs") a file whose XML holds characters XML 1.0 cannot carry; the report
model has already replaced those (:func:`exports.report.clean_text`). Paragraphs whose text
starts right-to-left (Arabic) get Word's paragraph direction so they read and align correctly.

The file is deterministic: core properties carry the export time and no person's name, and the
zip entries are rewritten with the export time as their date, so the same input gives the same
bytes. Images are embedded only when the report model resolved them under ``media_dir``.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import BinaryIO, ClassVar, Final

from docx import Document
from docx.document import Document as WordDocument
from docx.oxml.ns import qn
from docx.shared import Cm
from docx.text.paragraph import Paragraph

from exports.base import ExportMeta, ExportOptions, ProgressCallback
from exports.report import (
    TIMELINE_HEADER,
    Entry,
    Field,
    RunReport,
    build_report,
    export_facts,
    export_time,
)
from storage.models import ExecutionRecord

_TITLE: Final = "execgraph export"
_NOTE: Final = (
    "Each run starts on a new page. Item numbers (#n) are the sequence numbers in the run's JSON "
    "record. Characters no document can carry are shown as \ufffd."
)
_IMAGE_WIDTH: Final = Cm(12)
_ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry
# Children of w:pPr that the schema puts after w:bidi (ECMA-376 CT_PPrBase order).
_AFTER_BIDI: Final = (
    "w:adjustRightInd", "w:snapToGrid", "w:spacing", "w:ind", "w:contextualSpacing",
    "w:mirrorIndents", "w:suppressOverlap", "w:jc", "w:textDirection", "w:textAlignment",
    "w:textboxTightWrap", "w:outlineLvl", "w:divId", "w:cnfStyle", "w:rPr", "w:sectPr",
    "w:pPrChange",
)  # fmt: skip


class DocxExporter:
    """Writes a Word document: a cover block, then one Heading 1 section per run."""

    format: ClassVar[str] = "DOCX"
    extension: ClassVar[str] = "docx"
    mime_type: ClassVar[str] = (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )

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
        writer = _Writer(Document())
        _set_properties(writer.document, meta)
        writer.heading(_TITLE, 0)
        writer.fields_table(export_facts(meta))
        writer.paragraph(_NOTE)
        for count, record in enumerate(records, start=1):
            writer.run(build_report(record, media_dir=options.media_dir))
            if progress is not None:
                progress(count)
        buffer = io.BytesIO()
        writer.document.save(buffer)
        out.write(_with_fixed_dates(buffer.getvalue(), export_time(meta)))


def _set_properties(document: WordDocument, meta: ExportMeta) -> None:
    when = export_time(meta).replace(tzinfo=None)  # python-docx writes naive times as UTC
    props = document.core_properties
    props.title = _TITLE
    props.subject = f"{meta.record_count} execution records"
    props.author = ""
    props.last_modified_by = ""
    props.comments = f"execgraph {meta.execgraph_version}"
    props.created = when
    props.modified = when
    props.revision = 1


class _Writer:
    """Adds report blocks to one document.

    python-docx looks a style up by name on every paragraph, which scans all styles and made
    paragraphs the bulk of the export time; the style ids are resolved once here instead.
    """

    def __init__(self, document: WordDocument) -> None:
        self.document = document
        self._style_ids = {
            level: document.styles[name].style_id
            for level, name in enumerate(("Title", "Heading 1", "Heading 2", "Heading 3"))
        }
        self._detail_style_id = document.styles["No Spacing"].style_id

    def run(self, report: RunReport) -> None:
        self.heading(report.title, 1).paragraph_format.page_break_before = True
        self.heading("Facts", 2)
        self.fields_table(report.facts)
        self.heading("Timeline", 2)
        self.table([TIMELINE_HEADER, *(row.cells() for row in report.timeline)], header=True)
        for section in report.sections:
            self.heading(section.title, 2)
            for entry in section.entries:
                self.entry(entry)

    def entry(self, entry: Entry) -> None:
        self.heading(entry.title, 3)
        if entry.text is not None:
            self.paragraph(entry.text)
        if entry.image is not None:
            try:
                self.document.add_picture(str(entry.image), width=_IMAGE_WIDTH)
            except Exception as exc:  # a broken media file must not break the export
                self.paragraph(f"(image not embedded: {type(exc).__name__})")
        for field in entry.fields:
            paragraph = self.paragraph("", style_id=self._detail_style_id)
            paragraph.add_run(f"{field.label}: ").bold = True
            paragraph.add_run(field.value)
            _set_direction(paragraph, field.value)

    def heading(self, text: str, level: int) -> Paragraph:
        return self.paragraph(text, style_id=self._style_ids[level])

    def paragraph(self, text: str, *, style_id: str | None = None) -> Paragraph:
        paragraph = self.document.add_paragraph(text)
        if style_id is not None:
            paragraph._p.style = style_id
        _set_direction(paragraph, text)
        return paragraph

    def fields_table(self, fields: Sequence[Field]) -> None:
        self.table([(field.label, field.value) for field in fields], header=False)

    def table(self, rows: Sequence[Sequence[str]], *, header: bool) -> None:
        table = self.document.add_table(rows=0, cols=len(rows[0]))
        table.style = "Table Grid"
        for number, values in enumerate(rows):
            cells = table.add_row().cells
            for column, (cell, value) in enumerate(zip(cells, values, strict=True)):
                paragraph = cell.paragraphs[0]
                run = paragraph.add_run(value)
                run.bold = (header and number == 0) or (not header and column == 0)
                _set_direction(paragraph, value)
        self.document.add_paragraph()


def _set_direction(paragraph: Paragraph, text: str) -> None:
    """Mark a paragraph right-to-left when its first strong character is."""
    for char in text:
        direction = unicodedata.bidirectional(char)
        if direction == "L":
            return
        if direction in {"R", "AL"}:
            properties = paragraph._p.get_or_add_pPr()
            bidi = properties.makeelement(qn("w:bidi"), {})
            successor = properties.first_child_found_in(*_AFTER_BIDI)
            if successor is None:
                properties.append(bidi)
            else:
                successor.addprevious(bidi)
            return


def _with_fixed_dates(data: bytes, when: datetime) -> bytes:
    """The same zip with every entry dated ``when``, so equal input gives equal bytes."""
    stamp = max((when.year, when.month, when.day, when.hour, when.minute, when.second), _ZIP_EPOCH)
    result = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(result, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, source.read(info.filename))
    return result.getvalue()

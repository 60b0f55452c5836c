"""XML export: one document that validates against the published schema, for QDA and XML tools.

The schema ships as ``exports/assets/execgraph-export.xsd`` (namespace ``urn:execgraph:export:1``,
see ``exports.registry.xsd_path``) so that researchers can validate a file and import it with
XPath/XSLT or their qualitative data analysis software's XML import. Element names are the JSON
export's keys, in the models' order (``exports.record_fields``); runs come in the order requested
and items in chronological order, with every field present (null as ``xsi:nil="true"``). Item
metadata and the export's selection are compact JSON objects as text: lossless and independent
of which metadata keys the tracker writes.

The document is streamed with lxml's incremental writer (``etree.xmlfile``): each run is written
as it arrives and memory does not grow with the number of runs. lxml escapes markup (``<``,
``&``, ``]]>``) itself; characters that XML 1.0 cannot carry at all (control characters other than
tab, LF and CR, lone surrogates, U+FFFE, U+FFFF) are replaced by U+FFFD, so a damaged string can
never produce a broken file. A CR is kept (written as ``&#13;``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Final

from lxml import etree

from exports.base import ExportMeta, ExportOptions, ProgressCallback
from exports.json_exporter import EXPORT_FORMAT_VERSION, dumps
from exports.record_fields import ITEM_FIELDS, RUN_FIELDS
from storage.models import ExecutionItem, ExecutionRecord

if TYPE_CHECKING:
    from lxml.etree._serializer import _IncrementalFileWriter

#: Namespace of layout version 1; it changes only with an incompatible layout.
NAMESPACE: Final[str] = f"urn:execgraph:export:{EXPORT_FORMAT_VERSION}"
XSI_NAMESPACE: Final[str] = "http://www.w3.org/2001/XMLSchema-instance"

_NIL: Final[dict[str, str]] = {f"{{{XSI_NAMESPACE}}}nil": "true"}
_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

#: A value of an element: a JSON object (metadata, the selection) is written as JSON text.
Scalar = str | int | float | bool | datetime | dict[str, Any] | None


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry replaced by U+FFFD.

    Surrogate pairs held as two code points are first joined into the character they encode.
    """
    if _NOT_XML_CHAR.search(text) is None:
        return text
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return _NOT_XML_CHAR.sub("\ufffd", text)


def xml_datetime(value: datetime) -> str:
    """An ``xs:dateTime`` lexical value; a naive time stays without a zone.

    XSD offsets are whole minutes: a time whose offset has seconds is written in UTC instead.
    """
    offset = value.utcoffset()
    if offset is not None and offset % timedelta(minutes=1):
        value = value.astimezone(UTC)
    return value.isoformat()


def xml_double(value: float) -> str:
    """An ``xs:double`` lexical value (``NaN``, ``INF`` and ``-INF`` spelt as XSD wants)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(float(value))


def _lexical(value: Scalar) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return xml_double(value)
    if isinstance(value, datetime):
        return xml_datetime(value)
    if isinstance(value, dict):
        return xml_text(dumps(value))
    return xml_text(value)


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


class XmlExporter:
    """One ``urn:execgraph:export:1`` document, streamed run by run."""

    format: ClassVar[str] = "XML"
    extension: ClassVar[str] = "xml"
    mime_type: ClassVar[str] = "application/xml"

    def write(
        self,
        records: Iterable[ExecutionRecord],
        meta: ExportMeta,
        out: BinaryIO,
        *,
        options: ExportOptions,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Write ``<export>``: its ``<meta>``, then one ``<run>`` per record."""
        with etree.xmlfile(out, encoding="utf-8", close=False) as xf:
            xf.write_declaration()
            with xf.element(_q("export"), nsmap={None: NAMESPACE, "xsi": XSI_NAMESPACE}):
                xf.write("\n")
                self._fields(
                    xf,
                    "meta",
                    (
                        ("exported_at", meta.exported_at),
                        ("execgraph_version", meta.execgraph_version),
                        ("format_version", EXPORT_FORMAT_VERSION),
                        ("record_count", meta.record_count),
                        ("pseudonymized", meta.pseudonymized),
                        ("selection", dumps(meta.selection)),
                    ),
                )
                xf.write("\n")
                with xf.element(_q("runs")):
                    for written, record in enumerate(records, start=1):
                        xf.write("\n")
                        self._run(xf, record)
                        if progress is not None:
                            progress(written)
                    xf.write("\n")
                xf.write("\n")

    def _run(self, xf: _IncrementalFileWriter, record: ExecutionRecord) -> None:
        with xf.element(_q("run")):
            for name in RUN_FIELDS:
                self._leaf(xf, name, getattr(record, name))
            with xf.element(_q("items")):
                for item in record.items:
                    xf.write("\n")
                    self._item(xf, item)
                if record.items:
                    xf.write("\n")

    def _item(self, xf: _IncrementalFileWriter, item: ExecutionItem) -> None:
        self._fields(xf, "item", ((name, getattr(item, name)) for name in ITEM_FIELDS))

    def _fields(
        self,
        xf: _IncrementalFileWriter,
        name: str,
        fields: Iterable[tuple[str, Any]],
    ) -> None:
        with xf.element(_q(name)):
            for field, value in fields:
                self._leaf(xf, field, value)

    @staticmethod
    def _leaf(xf: _IncrementalFileWriter, name: str, value: Scalar) -> None:
        text = _lexical(value)
        if text is None:
            with xf.element(_q(name), _NIL):
                pass
            return
        with xf.element(_q(name)):
            if text:
                xf.write(text)

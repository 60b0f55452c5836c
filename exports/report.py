"""A format-neutral model of a run report, shared by the PDF and DOCX writers.

Researchers read a run in a fixed order: its facts, a timeline of the stages, then input,
translation, safety decisions, every interception iteration, the outputs, errors, item types this
version does not know, and the pipeline's own events. Building that structure once, here, means
the two documents say exactly the same and each writer only decides how it looks.

Every item of the record appears exactly once, labelled with its sequence number so a reader can
cite it back to the JSON. All text is cleaned here too (:func:`clean_text`): characters no document
format can carry become U+FFFD, and very long texts are shortened with a visible note, because a
readable report is not the place for a megabyte prompt (the JSON, JSONL, CSV and XML exports carry
every character).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from exports.base import ExportMeta
from storage.models import ExecutionItem, ExecutionRecord

#: Longest item text a report shows; real texts stay under ~8,000 characters.
MAX_TEXT_CHARS: Final = 20_000
#: Longest single field value (facts, metadata, file references): a table row must fit a page.
MAX_FIELD_CHARS: Final = 1_000
#: Most lines a field value shows, for the same reason.
MAX_FIELD_LINES: Final = 20
#: Longest field label (metadata keys).
MAX_LABEL_CHARS: Final = 80
#: Media files a report may embed; anything else is only named.
IMAGE_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg", ".gif"})

STAGE_NAMES: Final[dict[int, str]] = {
    0: "Start",
    1: "Translation and safety",
    2: "Interception",
    3: "Pre-output safety",
    4: "Output",
    5: "Complete",
}
TIMELINE_HEADER: Final = ("Stage", "Name", "Items", "Duration")

# Sections in reading order, and which item types each one holds.
_SECTIONS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    (
        "Input",
        frozenset({"user_input_text", "user_input_image", "user_input_audio", "user_input_video"}),
    ),
    ("Translation", frozenset({"translation_result", "stage1_correction"})),
    (
        "Safety decisions",
        frozenset(
            {
                "stage1_safety_check",
                "stage1_safety_check_image",
                "stage1_blocked",
                "stage3_safety_check",
                "stage3_blocked",
            }
        ),
    ),
    (
        "Interception",
        frozenset(
            {
                "interception_iteration",
                "interception_final",
                "interception_image_transformation",
                "interception_style_transfer",
            }
        ),
    ),
    (
        "Outputs",
        frozenset(
            {
                "output_image",
                "output_audio",
                "output_music",
                "output_video",
                "output_3d",
                "output_animation",
                "output_hybrid",
            }
        ),
    ),
    ("Errors", frozenset({"pipeline_error"})),
    ("Other items", frozenset()),
    (
        "Pipeline events",
        frozenset({"pipeline_start", "pipeline_complete", "stage_transition", "backend_switch"}),
    ),
)
_OTHER: Final = "Other items"
_TITLES: Final[dict[str, str]] = {
    "user_input_text": "Text input",
    "user_input_image": "Image input",
    "user_input_audio": "Audio input",
    "user_input_video": "Video input",
    "translation_result": "Translation",
    "stage1_correction": "Input correction",
    "stage1_safety_check": "Stage 1 safety check",
    "stage1_safety_check_image": "Stage 1 image safety check",
    "stage1_blocked": "Blocked in stage 1",
    "interception_final": "Final interception",
    "interception_image_transformation": "Image transformation",
    "interception_style_transfer": "Style transfer",
    "pipeline_start": "Pipeline start",
    "pipeline_complete": "Pipeline complete",
    "stage_transition": "Stage transition",
    "backend_switch": "Backend switch",
}
_LINE_BREAKS: Final = str.maketrans({"\r": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n"})
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_NOT_TEXT: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Field:
    """A labelled value: one fact of a run or one detail of an item."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of the run as the report shows it."""

    title: str
    sequence_number: int
    item_type: str
    fields: tuple[Field, ...]
    #: The item's content (prompt, translation, message), cleaned and possibly shortened.
    text: str | None = None
    #: A media file under ``ExportOptions.media_dir`` that writers may embed.
    image: Path | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """A group of entries under one heading (Input, Translation, ...)."""

    title: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """Items and summed durations of one stage."""

    stage: int
    name: str
    items: int
    seconds: float

    def cells(self) -> tuple[str, str, str, str]:
        """The row as printed, in the order of :data:`TIMELINE_HEADER`."""
        return (str(self.stage), self.name, str(self.items), _seconds(self.seconds))


@dataclass(frozen=True, slots=True)
class RunReport:
    """Everything a report says about one run, in reading order."""

    title: str
    facts: tuple[Field, ...]
    timeline: tuple[TimelineRow, ...]
    sections: tuple[Section, ...]


def clean_text(text: str) -> str:
    """Make ``text`` safe for any document format.

    Line ends and Unicode line/paragraph separators become ``\n``; surrogate pairs that arrived
    as two code points are joined; control characters other than tab and newline, lone
    surrogates and U+FFFE/U+FFFF become U+FFFD, so a reader sees that something was there.
    """
    text = text.replace("\r\n", "\n").translate(_LINE_BREAKS)
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return _NOT_TEXT.sub("\ufffd", text)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with a note saying how much was left out."""
    if len(text) <= limit:
        return text
    omitted = len(text) - limit
    return (
        f"{text[:limit]}\n[… {omitted:,} more characters not shown in this report; "
        "the JSON, JSONL, CSV and XML exports carry the full text]"
    )


def export_time(meta: ExportMeta) -> datetime:
    """The export time as an aware UTC datetime (a naive one is taken to be UTC)."""
    when = meta.exported_at
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def export_facts(meta: ExportMeta) -> tuple[Field, ...]:
    """The cover block of an export: when, by which version, how many runs, which selection."""
    return (
        Field("Exported at", export_time(meta).isoformat(sep=" ")),
        Field("execgraph version", _value(meta.execgraph_version)),
        Field("Records", str(meta.record_count)),
        Field("Pseudonymised", "yes" if meta.pseudonymized else "no"),
        Field("Selection", _value(_json(meta.selection)) if meta.selection else "all runs"),
    )


def resolve_media(file_path: str | None, media_dir: Path | None) -> Path | None:
    """The image file ``file_path`` names under ``media_dir``, or None.

    ``file_path`` is often a job UUID or a URL: those are never opened. A path counts only if,
    after resolving symlinks, it is an existing regular file with an image suffix inside
    ``media_dir``.
    """
    if media_dir is None or not file_path or "://" in file_path or "\x00" in file_path:
        return None
    try:
        root = media_dir.resolve()
        resolved = (root / file_path).resolve()
        if resolved.suffix.lower() not in IMAGE_SUFFIXES or not resolved.is_relative_to(root):
            return None
        return resolved if resolved.is_file() else None
    except (OSError, ValueError, RuntimeError):
        return None


def build_report(record: ExecutionRecord, *, media_dir: Path | None = None) -> RunReport:
    """The report of one run: facts, stage timeline and sections in reading order."""
    items = record.items
    totals = {"iteration": _iteration_count(items), "output": _output_count(items)}
    seen = dict.fromkeys(totals, 0)
    grouped: dict[str, list[Entry]] = {title: [] for title, _ in _SECTIONS}
    for item in items:
        kind = _numbered_kind(item.item_type)
        if kind is not None:
            seen[kind] += 1
        number = seen[kind] if kind else 0
        entry = _entry(item, number, totals, media_dir)
        grouped[_section_of(item.item_type)].append(entry)
    return RunReport(
        title=f"Run {_value(record.execution_id)}",
        facts=_facts(record),
        timeline=_timeline(items),
        sections=tuple(
            Section(title, tuple(entries)) for title, entries in grouped.items() if entries
        ),
    )


def _facts(record: ExecutionRecord) -> tuple[Field, ...]:
    models = dict.fromkeys(i.model_used for i in record.items if i.model_used)
    return (
        Field("Execution ID", _value(record.execution_id)),
        Field("Configuration", _value(record.config_name)),
        Field("Started", record.timestamp.isoformat(sep=" ")),
        Field("User ID", _value(record.user_id)),
        Field("Session ID", _value(record.session_id)),
        Field("Safety level", _value(record.safety_level)),
        Field("Execution mode", _value(record.execution_mode)),
        Field("Seed", _value(record.used_seed)),
        Field("Total duration", _seconds(record.total_execution_time)),
        Field("Models used", _value(", ".join(models)) if models else "—"),
        Field("Items", str(len(record.items))),
    )


def _timeline(items: Iterable[ExecutionItem]) -> tuple[TimelineRow, ...]:
    counts = dict.fromkeys(STAGE_NAMES, 0)
    seconds = dict.fromkeys(STAGE_NAMES, 0.0)
    for item in items:
        counts[item.stage] = counts.get(item.stage, 0) + 1
        seconds[item.stage] = seconds.get(item.stage, 0.0) + float(item.execution_time or 0)
    return tuple(
        TimelineRow(stage, STAGE_NAMES.get(stage, "Other stage"), counts[stage], seconds[stage])
        for stage in sorted(counts)
    )


def _section_of(item_type: str) -> str:
    for title, types in _SECTIONS:
        if item_type in types:
            return title
    return _OTHER


def _numbered_kind(item_type: str) -> str | None:
    if item_type == "interception_iteration":
        return "iteration"
    if item_type.startswith("output_"):
        return "output"
    return None


def _entry(
    item: ExecutionItem, number: int, totals: dict[str, int], media_dir: Path | None
) -> Entry:
    kind = item.item_type
    loop = item.loop_iteration
    output = f"Output {loop}" if loop is not None else "Output"
    if kind == "interception_iteration":
        title = f"Iteration {item.stage_iteration or number} of {totals['iteration']}"
    elif kind.startswith("output_"):
        title = f"Output {loop or number} of {totals['output']}: {_value(item.media_type)}"
    elif kind == "stage3_safety_check":
        title = f"{output}: pre-output safety check"
    elif kind == "stage3_blocked":
        title = f"{output}: blocked before output"
    elif kind == "pipeline_error":
        title = f"Error in stage {item.stage}"
    elif _section_of(kind) == _OTHER:
        title = f"{_value(kind)} (unknown item type)"
    else:
        title = _TITLES.get(kind, _value(kind))
    image = None
    if kind.startswith(("output_", "user_input_")) and item.media_type == "image":
        image = resolve_media(item.file_path, media_dir)
    text = None if item.content is None else shorten(clean_text(item.content), MAX_TEXT_CHARS)
    return Entry(title, item.sequence_number, kind, _item_fields(item), text, image)


def _item_fields(item: ExecutionItem) -> tuple[Field, ...]:
    fields = [Field("Item", f"#{item.sequence_number} {_value(item.item_type)}")]
    metadata = dict(item.metadata)
    if "safety_check" in item.item_type or item.item_type.endswith("_blocked"):
        fields.append(Field("Decision", _decision(item)))
        if "reason" in metadata:
            fields.append(Field("Reason", _value(metadata.pop("reason"))))
    optional: tuple[tuple[str, object], ...] = (
        ("Stage", item.stage),
        ("Stage iteration", item.stage_iteration),
        ("Output (loop iteration)", item.loop_iteration),
        ("Time", item.timestamp.isoformat(sep=" ")),
        ("Media type", item.media_type),
        ("Config", item.config_used),
        ("Model", item.model_used),
        ("Backend", item.backend_type),
        ("Duration", None if item.execution_time is None else _seconds(item.execution_time)),
        ("File", item.file_path),
    )
    fields.extend(Field(label, _value(value)) for label, value in optional if value is not None)
    fields.extend(
        Field(_label(f"metadata.{key}"), _value(value)) for key, value in metadata.items()
    )
    return tuple(fields)


def _decision(item: ExecutionItem) -> str:
    if item.item_type.endswith("_blocked"):
        return "blocked"
    safe = item.metadata.get("safe")
    if safe is True:
        return "passed"
    if safe is False:
        return "not safe"
    return "recorded (no verdict in metadata)"


def _iteration_count(items: list[ExecutionItem]) -> int:
    chosen = [i for i in items if i.item_type == "interception_iteration"]
    return max([len(chosen), *(i.stage_iteration or 0 for i in chosen)])


def _output_count(items: list[ExecutionItem]) -> int:
    loops = {i.loop_iteration for i in items if i.stage in {3, 4} and i.loop_iteration}
    outputs = sum(1 for i in items if i.item_type.startswith("output_"))
    return max(len(loops), outputs, *loops) if loops else outputs


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _label(text: str) -> str:
    text = " ".join(clean_text(text).split("\n"))
    return text if len(text) <= MAX_LABEL_CHARS else f"{text[:MAX_LABEL_CHARS]}…"


def _value(value: object) -> str:
    if value is None:
        return "—"
    text = clean_text(value if isinstance(value, str) else _json(value))
    lines = text.split("\n")
    if len(lines) > MAX_FIELD_LINES:
        kept = "\n".join(lines[:MAX_FIELD_LINES])
        text = f"{kept}\n[… {len(lines) - MAX_FIELD_LINES:,} more lines not shown in this report]"
    return shorten(text, MAX_FIELD_CHARS)

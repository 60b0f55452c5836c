"""The format-neutral run report both document writers render.

Also home of the small hostile-text corpus the PDF and DOCX tests share: texts that have broken
document writers before (control characters, lone surrogates, a 50,000-character word, emoji
sequences, right-to-left and Indic scripts, markup and formula look-alikes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from exports.base import ExportMeta
from exports.report import (
    MAX_FIELD_CHARS,
    MAX_FIELD_LINES,
    MAX_TEXT_CHARS,
    Entry,
    RunReport,
    build_report,
    clean_text,
    export_facts,
    resolve_media,
    shorten,
)
from storage.models import KNOWN_ITEM_TYPES, ExecutionRecord
from tests.factory import BASE_TIME, Shape, item_dict, record, record_dict

HOSTILE_SNIPPETS: dict[str, str] = {
    "control": "ctl\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85end",
    "surrogate": "lone\ud800high\udfffend",
    "nonchar": "non\ufffe\uffffend",
    "emoji": "emoji 😀 👍🏽 👨\u200d👩\u200d👧 🇩🇪 ❤️",
    "cjk": "하늘을 나는 고래 空を飛ぶクジラ",
    "rtl": "حوت يطير في السماء שלום",
    "devanagari": "आसमान में उड़ती व्हेल",
    "markup": "<img src=x> ]]> <![CDATA[x]]> &amp; <script>alert(1)</script> {nb} **b**",
    "formula": "=cmd|' /C calc'!A0 +1 @SUM(A1)",
    "umlaut": "Grüße aus Köln ÄÖÜß",
}
HOSTILE_TEXT = " | ".join(HOSTILE_SNIPPETS.values())
LONG_WORD = "x" * 50_000
ONE_MEGABYTE = ("Wolke " * 200_000)[:1_000_000]


def hostile_record(
    execution_id: str = "exec_20251103_143025_0bad0bad", **kwargs: Any
) -> ExecutionRecord:
    """A Stille Post run whose texts, ids, metadata and item types are all hostile."""
    text = kwargs.pop("prompt", HOSTILE_TEXT)
    unknown = item_dict(
        0,
        "future_item_<b>\x00",
        stage=9,
        at=BASE_TIME,
        media_type="hologram",
        content=text,
        file_path="https://example.invalid/x.png",
        metadata={"key\x00<k>": text, "nested": {"list": [text, 1, None]}},
    )
    data = record_dict(
        execution_id,
        shape="stillepost",
        prompt=text,
        user_id="=cmd",
        session_id="<s>\x00",
        extra_items=[unknown],
        **kwargs,
    )
    return ExecutionRecord.model_validate(data)


def entries(report: RunReport) -> list[Entry]:
    return [entry for section in report.sections for entry in section.entries]


def test_facts_describe_the_run() -> None:
    report = build_report(record(shape="image", user_id="u_1a2b", session_id="s_3c4d"))
    facts = {fact.label: fact.value for fact in report.facts}
    assert facts == {
        "Execution ID": "exec_20251103_143025_0000abcd",
        "Configuration": "dada",
        "Started": "2025-11-03 14:30:25.123456",
        "User ID": "u_1a2b",
        "Session ID": "s_3c4d",
        "Safety level": "kids",
        "Execution mode": "eco",
        "Seed": "42",
        "Total duration": "17.750 s",
        "Models used": "local/mistral-nemo:latest, gpt-oss, unknown",
        "Items": "7",
    }


def test_timeline_counts_items_and_sums_durations_per_stage() -> None:
    report = build_report(record(shape="stillepost", outputs=2))
    assert [row.cells() for row in report.timeline] == [
        ("0", "Start", "1", "0.000 s"),
        ("1", "Translation and safety", "2", "1.250 s"),
        ("2", "Interception", "9", "19.500 s"),
        ("3", "Pre-output safety", "2", "0.000 s"),
        ("4", "Output", "2", "25.000 s"),
        ("5", "Complete", "1", "0.000 s"),
    ]


def test_sections_follow_reading_order() -> None:
    report = build_report(record(shape="stillepost", outputs=2))
    assert [section.title for section in report.sections] == [
        "Input",
        "Translation",
        "Safety decisions",
        "Interception",
        "Outputs",
        "Pipeline events",
    ]


def test_every_interception_iteration_is_numbered_out_of_the_total() -> None:
    report = build_report(record(shape="stillepost"))
    interception = next(s for s in report.sections if s.title == "Interception")
    assert [e.title for e in interception.entries] == [
        *(f"Iteration {n} of 8" for n in range(1, 9)),
        "Final interception",
    ]
    assert interception.entries[2].text == "Iteration 3: Ein Haus aus Wolken"


def test_outputs_carry_config_model_backend_media_and_file() -> None:
    report = build_report(record(shape="multi", outputs=2))
    outputs = next(s for s in report.sections if s.title == "Outputs").entries
    assert [e.title for e in outputs] == ["Output 1 of 2: image", "Output 2 of 2: image"]
    fields = {f.label: f.value for f in outputs[1].fields}
    assert fields["Config"] == "flux2"
    assert fields["Model"] == "unknown"
    assert fields["Backend"] == "comfyui"
    assert fields["Media type"] == "image"
    assert fields["File"] == "3f2c9a4e-1b7d-4c51-9e0a-6a1f0e6d2b7c"
    assert fields["Output (loop iteration)"] == "2"


def test_safety_decisions_show_verdict_and_reason() -> None:
    blocked = build_report(record(shape="blocked1"))
    decision = next(s for s in blocked.sections if s.title == "Safety decisions").entries[0]
    fields = {f.label: f.value for f in decision.fields}
    assert decision.title == "Blocked in stage 1"
    assert fields["Decision"] == "blocked"
    assert fields["Reason"] == "legal_symbols"
    assert decision.text == "Blocked: legal symbols violation (§86a)"

    passed = build_report(record(shape="image"))
    check = next(s for s in passed.sections if s.title == "Safety decisions").entries[0]
    assert check.title == "Output 1: pre-output safety check"
    assert {f.label: f.value for f in check.fields}["Decision"] == "passed"

    stage3 = build_report(record(shape="blocked3"))
    block = next(s for s in stage3.sections if s.title == "Safety decisions").entries[0]
    assert block.title == "Output 1: blocked before output"
    assert block.text == "Unsafe for the age group"


def test_pipeline_error_is_its_own_section_with_the_message() -> None:
    report = build_report(record(shape="error"))
    errors = next(s for s in report.sections if s.title == "Errors").entries
    assert [(e.title, e.text) for e in errors] == [
        ("Error in stage 2", "Backend timeout after 120 s")
    ]


def test_unknown_item_types_are_shown_with_their_raw_name() -> None:
    extra = item_dict(
        0, "interception_dream", stage=2, at=BASE_TIME, content="zzz", metadata={"depth": 3}
    )
    report = build_report(record(shape="text", extra_items=[extra]))
    other = next(s for s in report.sections if s.title == "Other items").entries
    assert other[0].title == "interception_dream (unknown item type)"
    assert other[0].text == "zzz"
    assert ("metadata.depth", "3") in [(f.label, f.value) for f in other[0].fields]


def test_every_item_type_of_the_taxonomy_has_a_section_of_its_own() -> None:
    """The report's sections name item types by hand: each known one must be placed."""
    extra = [
        item_dict(0, item_type, stage=2, at=BASE_TIME, content="x")
        for item_type in sorted(KNOWN_ITEM_TYPES)
    ]
    report = build_report(record(shape="text", extra_items=extra))
    misplaced = sorted(
        entry.item_type
        for section in report.sections
        if section.title == "Other items"
        for entry in section.entries
    )
    assert not misplaced, f"exports/report.py: give {misplaced} a section (_SECTIONS)"
    assert not [e.title for e in entries(report) if "unknown" in e.title]


def test_every_item_appears_exactly_once() -> None:
    shapes: tuple[Shape, ...] = (
        "text",
        "image",
        "stillepost",
        "multi",
        "blocked1",
        "blocked3",
        "error",
    )
    for shape in shapes:
        run = record(shape=shape)
        numbers = [e.sequence_number for e in entries(build_report(run))]
        assert sorted(numbers) == [item.sequence_number for item in run.items], shape


def test_older_backend_key_is_reported() -> None:
    report = build_report(record(shape="text", backend_key="backend_used"))
    translation = next(s for s in report.sections if s.title == "Translation").entries[0]
    assert ("Backend", "ollama") in [(f.label, f.value) for f in translation.fields]


def test_clean_text_replaces_what_no_document_can_carry() -> None:
    assert clean_text("a\x00b\x1bc\x7fd\x9fe") == "a\ufffdb\ufffdc\ufffdd\ufffde"
    assert clean_text("x\ud800y\udfffz\ufffe\uffff") == "x\ufffdy\ufffdz\ufffd\ufffd"
    assert clean_text("tab\tand\nnew\r\nline\rend") == "tab\tand\nnew\nline\nend"
    assert clean_text("a\u2028b\u2029c\x85d") == "a\nb\nc\nd"
    assert (
        clean_text("pair \ud83d\ude00 held, \ude00\ud83d not") == "pair 😀 held, \ufffd\ufffd not"
    )
    assert clean_text("한국어 हिन्दी عربي 😀") == "한국어 हिन्दी عربي 😀"


def test_long_texts_are_shortened_with_a_visible_note() -> None:
    report = build_report(record(shape="text", prompt=ONE_MEGABYTE))
    text = entries(report)[0].text
    assert text is not None
    assert text.startswith(ONE_MEGABYTE[:MAX_TEXT_CHARS])
    assert "980,000 more characters not shown" in text
    assert shorten("short", 10) == "short"


def test_hostile_record_is_cleaned_everywhere() -> None:
    report = build_report(hostile_record())
    values = [report.title, *(f.value for f in report.facts)]
    for entry in entries(report):
        values += [entry.title, entry.text or "", *(f.label + f.value for f in entry.fields)]
    assert all(clean_text(value) == value for value in values)
    assert all(len(f.value) <= MAX_FIELD_CHARS + 200 for e in entries(report) for f in e.fields)
    assert any(e.title == "future_item_<b>\ufffd (unknown item type)" for e in entries(report))


def test_export_facts_describe_the_export() -> None:
    meta = ExportMeta(
        exported_at=BASE_TIME,
        execgraph_version="0.1.0",
        record_count=3,
        pseudonymized=True,
        selection={"ids": ["exec_a"]},
    )
    assert [(f.label, f.value) for f in export_facts(meta)] == [
        ("Exported at", "2025-11-03 14:30:25.123456+00:00"),
        ("execgraph version", "0.1.0"),
        ("Records", "3"),
        ("Pseudonymised", "yes"),
        ("Selection", '{"ids": ["exec_a"]}'),
    ]


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    (root / "runs").mkdir(parents=True)
    (root / "runs" / "a.png").write_bytes(b"png")
    (root / "folder.png").mkdir()
    (root / "notes.txt").write_text("x")
    (tmp_path / "outside.png").write_bytes(b"png")
    (root / "escape.png").symlink_to(tmp_path / "outside.png")
    (root / "inside.png").symlink_to(root / "runs" / "a.png")
    return root


@pytest.mark.parametrize(
    ("file_path", "found"),
    [
        ("runs/a.png", "runs/a.png"),
        ("inside.png", "runs/a.png"),
        ("escape.png", None),
        ("../outside.png", None),
        ("folder.png", None),
        ("notes.txt", None),
        ("missing.png", None),
        ("3f2c9a4e-1b7d-4c51-9e0a-6a1f0e6d2b7c", None),
        ("https://example.invalid/a.png", None),
        ("file:///etc/a.png", None),
        ("a\x00.png", None),
        ("x" * 5000 + ".png", None),
        ("", None),
        (None, None),
    ],
)
def test_media_is_resolved_only_inside_media_dir(
    media: Path, file_path: str | None, found: str | None
) -> None:
    expected = None if found is None else (media / found).resolve()
    assert resolve_media(file_path, media) == expected


def test_absolute_paths_count_only_under_media_dir(media: Path, tmp_path: Path) -> None:
    assert resolve_media(str(media / "runs" / "a.png"), media) == media / "runs" / "a.png"
    assert resolve_media(str(tmp_path / "outside.png"), media) is None
    assert resolve_media("runs/a.png", None) is None


def test_report_embeds_images_only_from_media_dir(media: Path) -> None:
    data = record_dict(shape="image")
    data["items"][5]["file_path"] = "runs/a.png"
    report = build_report(ExecutionRecord.model_validate(data), media_dir=media)
    output = next(s for s in report.sections if s.title == "Outputs").entries[0]
    assert output.image == media / "runs" / "a.png"
    assert build_report(ExecutionRecord.model_validate(data)).sections[-2].entries[0].image is None


GOLDEN_META = ExportMeta(
    exported_at=datetime(2025, 12, 1, 9, 30, tzinfo=UTC),
    execgraph_version="0.1.0",
    record_count=5,
    pseudonymized=True,
    selection={"config": ["stillepost", "dada"], "from": "2025-11-01"},
)


def golden_records() -> list[ExecutionRecord]:
    """The runs the PDF and DOCX golden files are made of: every shape, every script."""
    unknown = item_dict(
        0, "interception_dream", stage=2, at=BASE_TIME, content="Traum", metadata={"depth": 3}
    )
    return [
        record(
            execution_id="exec_20251103_143025_11111111",
            shape="stillepost",
            prompt="Ein Haus aus Wolken über Köln",
            user_id="u_4f1c9e2a",
            session_id="s_0b7d3a91",
        ),
        record(
            execution_id="exec_20251103_150000_22222222",
            shape="multi",
            prompt="하늘을 나는 고래 / 空を飛ぶクジラ / आसमान में उड़ती व्हेल / حوت يطير في السماء 🐋",
            user_id="u_4f1c9e2a",
            session_id="s_0b7d3a91",
        ),
        record(
            execution_id="exec_20251103_151500_33333333", shape="blocked1", safety_level="youth"
        ),
        record(
            execution_id="exec_20251103_153000_44444444",
            shape="blocked3",
            backend_key="backend_used",
        ),
        record(execution_id="exec_20251103_154500_55555555", shape="error", extra_items=[unknown]),
    ]


def test_field_values_are_capped_in_length_and_lines() -> None:
    extra = item_dict(
        0,
        "stage_transition",
        stage=2,
        at=BASE_TIME,
        metadata={"lines": "\n" * 5000, "wide": "鯨" * 5000, "multi\nline\nkey": 1},
    )
    report = build_report(record(shape="text", extra_items=[extra]))
    fields = {f.label: f.value for f in entries(report)[-1].fields}
    assert fields["metadata.lines"].count("\n") == MAX_FIELD_LINES
    assert fields["metadata.lines"].endswith("[… 4,981 more lines not shown in this report]")
    assert fields["metadata.wide"].startswith("鯨" * MAX_FIELD_CHARS + "\n[… 4,000 more")
    assert fields["metadata.multi line key"] == "1"

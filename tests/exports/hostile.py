"""A corpus of hostile text that every export format must survive, shared by all exporter tests.

Each ``HostileCase`` holds the text as a record carries it and, written out by hand, what a
reader must get back: ``utf8`` from the UTF-8 formats (JSON, JSONL, CSV before formula
neutralisation), ``xml`` from XML (which cannot carry control characters). ``formula`` marks
text a spreadsheet would execute, which the CSV export prefixes with ``'``.

``hostile_record()`` builds one validated record from the factory with one extra item per case
(the text as ``content`` and inside ``metadata``), plus optionally a 50,000-character word and a
1 MB prompt (``large=False`` skips those for slow renderers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from storage.models import ExecutionRecord
from tests.factory import BASE_TIME, item_dict, record_dict

HOSTILE_ID: Final[str] = "exec_20251103_143025_0bad0bad"
HOSTILE_CONFIG: Final[str] = "<img src=x onerror=alert(1)>"
HOSTILE_USER: Final[str] = "pupil-7f3a9c"
HOSTILE_SESSION: Final[str] = "workshop-2025-11-koeln"


@dataclass(frozen=True)
class HostileCase:
    """One hostile string and what each kind of format must give back."""

    name: str
    text: str
    utf8: str
    xml: str
    formula: bool = False


def _same(name: str, text: str, *, formula: bool = False) -> HostileCase:
    return HostileCase(name, text, text, text, formula)


CASES: Final[tuple[HostileCase, ...]] = (
    HostileCase(
        "control_characters",
        "bell\x07 nul\x00 esc\x1b vt\x0b ff\x0c del\x7f end",
        "bell\x07 nul\x00 esc\x1b vt\x0b ff\x0c del\x7f end",
        "bell\ufffd nul\ufffd esc\ufffd vt\ufffd ff\ufffd del\x7f end",
    ),
    _same("newlines", "line one\r\nline two\rline three\nend"),
    HostileCase(
        "lone_high_surrogate", "high \ud800 alone", "high \ufffd alone", "high \ufffd alone"
    ),
    HostileCase("lone_low_surrogate", "low \udfff alone", "low \ufffd alone", "low \ufffd alone"),
    HostileCase("split_surrogate_pair", "pair \ud83d\ude00 held", "pair 😀 held", "pair 😀 held"),
    HostileCase(
        "noncharacters", "nc \ufffe \uffff end", "nc \ufffe \uffff end", "nc \ufffd \ufffd end"
    ),
    _same("emoji", "👩🏽‍🎨 paints 🎨🖌️ with 🇩🇪 flag"),
    _same("cjk", "하늘을 나는 고래 / 天空の鯨 / 天上的鲸鱼"),
    _same("right_to_left", "قطة على القمر \u202eevil\u202c שלום עולם"),
    _same("hindi", "एक नीला घोड़ा"),
    _same("html", "<img src=x onerror=alert(1)>"),
    _same("cdata_end", "]]> <![CDATA[ x ]]> &amp; &lt; &#0;"),
    _same("formula_equals", "=cmd|' /C calc'!A0", formula=True),
    _same("formula_plus", "+49 221 1234", formula=True),
    _same("formula_minus", "-2+3+cmd|' /C calc'!A0", formula=True),
    _same("formula_at", "@SUM(A1:A9)", formula=True),
    _same("formula_tab", "\t=1+1", formula=True),
    _same("formula_cr", "\r=1+1", formula=True),
    _same("json_syntax", '{"a": "b\\"c"}, [1, 2] \\u0000 \\'),
    _same("unicode_line_breaks", "a\u2028b\u2029c\x85d"),
    _same("invisible", "zero\u200bwidth\ufeffbom\u00adsoft"),
    _same("quotes_and_commas", 'He said, "no; never", then left'),
)

#: One word of 50,000 characters (no break opportunity for a layout engine).
LONG_WORD: Final[str] = "Donaudampfschifffahrt" * 2380 + "ende!!!!"
#: A prompt of about 1 MB, mixing scripts.
HUGE_PROMPT: Final[str] = ("Ein Haus aus Wolken 하늘 🚲 قطة " * 30_000)[:1_000_000]


def _item(case_name: str, text: str, at: datetime) -> dict[str, Any]:
    return item_dict(
        0,
        "interception_iteration",
        stage=2,
        at=at,
        content=text,
        stage_iteration=1,
        model_used="gpt-oss",
        backend_type="openrouter",
        metadata={"case": case_name, "text": text, "nested": {"list": [text, 1, None]}},
    )


def hostile_record(
    execution_id: str = HOSTILE_ID,
    *,
    large: bool = True,
    user_id: str = HOSTILE_USER,
    session_id: str = HOSTILE_SESSION,
) -> ExecutionRecord:
    """A validated record carrying every hostile case (and the large texts unless told not to)."""
    extra = [
        _item(case.name, case.text, BASE_TIME + timedelta(seconds=10 + n))
        for n, case in enumerate(CASES)
    ]
    if large:
        extra.append(_item("long_word", LONG_WORD, BASE_TIME + timedelta(seconds=90)))
    data = record_dict(
        execution_id,
        shape="text",
        config_name=HOSTILE_CONFIG,
        user_id=user_id,
        session_id=session_id,
        prompt=HUGE_PROMPT if large else "Ein Haus aus Wolken",
        extra_items=extra,
    )
    return ExecutionRecord.model_validate(data)

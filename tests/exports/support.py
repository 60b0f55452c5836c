"""Small helpers for the exporter tests: metadata, mixed record streams, rendering to bytes."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from exports.base import Exporter, ExportMeta, ExportOptions
from storage.models import ExecutionRecord
from tests.factory import BASE_TIME, Shape, record

SHAPES: tuple[Shape, ...] = (
    "text",
    "image",
    "stillepost",
    "multi",
    "blocked1",
    "blocked3",
    "error",
)
EXPORTED_AT = datetime(2026, 11, 24, 14, 30, 0, tzinfo=UTC)


def make_meta(record_count: int, **overrides: Any) -> ExportMeta:
    """Metadata of an export of ``record_count`` records at a pinned time."""
    values: dict[str, Any] = {
        "exported_at": EXPORTED_AT,
        "execgraph_version": "0.1.0",
        "record_count": record_count,
        "pseudonymized": False,
        "selection": {"filter": {"configNames": ["dada"]}},
    }
    values.update(overrides)
    return ExportMeta(**values)


def mixed(count: int) -> Iterator[ExecutionRecord]:
    """``count`` records cycling through every shape and both backend spellings, made lazily."""
    for n in range(count):
        yield record(
            execution_id=f"exec_20251103_1430{n % 60:02d}_{n:08x}",
            shape=SHAPES[n % len(SHAPES)],
            at=BASE_TIME + timedelta(minutes=n),
            user_id=f"user_{n % 5}",
            session_id=f"session_{n % 3}",
            used_seed=None if n % 6 == 0 else 2**33 + n,
            execution_mode=("eco", "fast")[n % 2],
            prompt=("Ein Haus aus Wolken", "하늘을 나는 고래", "قطة على القمر", "A red bicycle 🚲")[
                n % 4
            ],
            backend_key="backend_used" if n % 3 == 0 else "backend_type",
        )


def render(
    exporter: Exporter,
    records: Iterable[ExecutionRecord],
    meta: ExportMeta | None = None,
) -> bytes:
    """Everything ``exporter`` writes for ``records``."""
    records = list(records)
    out = io.BytesIO()
    exporter.write(records, meta or make_meta(len(records)), out, options=ExportOptions())
    return out.getvalue()

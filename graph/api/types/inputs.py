"""Filter inputs, and their translation into the storage layer's filters.

Semantics, stated once for every list field: any value of a list matches (OR), all given fields
must match (AND), and a null or empty list does not constrain.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, TypeVar

import strawberry

from graph.api.types.enums import ItemType, MediaType, disk_item_type, disk_media_type
from graph.errors import BadUserInput
from storage.query import ItemCriteria, QueryError, RunFilter, fts_query, is_text

MAX_LIST: Final = 1000
MAX_TEXT: Final = 1000

T = TypeVar("T")


def _values(field: str, values: Sequence[T] | None) -> tuple[T, ...]:
    if not values:
        return ()
    if len(values) > MAX_LIST:
        raise BadUserInput(f"'{field}' may list at most {MAX_LIST} values ({len(values)} given)")
    for value in values:
        if isinstance(value, str):
            check_text(field, value)
    return tuple(dict.fromkeys(values))


def check_text(field: str, value: str) -> None:
    """Refuse a string argument the index cannot hold (nor a response carry) with
    BAD_USER_INPUT: one with a lone surrogate, which JSON's ``\\ud800`` escapes can spell."""
    if not is_text(value):
        raise BadUserInput(f"'{field}' is not valid Unicode text (it holds a lone surrogate)")


def _text(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_TEXT:
        raise BadUserInput(f"'{field}' may be at most {MAX_TEXT} characters long")
    check_text(field, value)
    try:
        fts_query(value)
    except QueryError as exc:
        raise BadUserInput(f"'{field}': {exc}; omit it to not filter") from None
    return value


@strawberry.input(
    description=(
        "Which runs to select. Within a list any value matches (OR); all given fields must "
        "match (AND); null or an empty list does not constrain."
    )
)
class ExecutionFilter:
    config_names: list[str] | None = strawberry.field(
        default=None, description="Stage-2 configs, e.g. dada, stillepost, bauhaus."
    )
    user_ids: list[str] | None = strawberry.field(
        default=None, description="Pseudonymous user ids (default 'anonymous')."
    )
    session_ids: list[str] | None = strawberry.field(default=None, description="Session ids.")
    safety_levels: list[str] | None = strawberry.field(
        default=None, description="Safety levels, e.g. kids, youth, adult, research."
    )
    execution_modes: list[str] | None = strawberry.field(
        default=None, description="Execution modes: eco or fast."
    )
    since: datetime | None = strawberry.field(
        default=None,
        description=(
            "Runs that started at or after this time (inclusive). Compared with the run's "
            "local wall-clock time as stored; an offset given here is ignored."
        ),
    )
    until: datetime | None = strawberry.field(
        default=None, description="Runs that started before this time (exclusive)."
    )
    has_item_types: list[ItemType] | None = strawberry.field(
        default=None, description="Runs having at least one item of any of these types."
    )
    text: str | None = strawberry.field(
        default=None,
        description=(
            "Runs where one item's content contains every word of this text (case and "
            "accents ignored, whole words)."
        ),
    )

    def to_storage(self) -> RunFilter:
        """Validate and translate into the index's filter."""
        if self.since is not None and self.until is not None:
            since = self.since.replace(tzinfo=None)
            if since >= self.until.replace(tzinfo=None):
                raise BadUserInput("'since' must be earlier than 'until'")
        return RunFilter(
            config_names=_values("configNames", self.config_names),
            user_ids=_values("userIds", self.user_ids),
            session_ids=_values("sessionIds", self.session_ids),
            safety_levels=_values("safetyLevels", self.safety_levels),
            execution_modes=_values("executionModes", self.execution_modes),
            since=self.since,
            until=self.until,
            has_item_types=tuple(
                disk_item_type(t) for t in _values("hasItemTypes", self.has_item_types)
            ),
            text=_text("text", self.text),
        )


@strawberry.input(
    description=(
        "Which items to select. Within a list any value matches (OR); all given fields must "
        "match (AND); null or an empty list does not constrain."
    )
)
class ItemFilter:
    item_types: list[ItemType] | None = strawberry.field(
        default=None, description="Item types; UNKNOWN matches every type this version lacks."
    )
    media_types: list[MediaType] | None = strawberry.field(
        default=None, description="Media types; UNKNOWN matches every unknown media type."
    )
    stages: list[int] | None = strawberry.field(
        default=None,
        description="Stages: 0 start, 1 translation+safety, 2 interception, 3 pre-output "
        "safety, 4 output, 5 complete.",
    )
    stage_iteration: int | None = strawberry.field(
        default=None, description="Stage-2 iteration (1..8 for Stille Post)."
    )
    loop_iteration: int | None = strawberry.field(
        default=None, description="Stage 3-4 output pass (1-based)."
    )
    models_used: list[str] | None = strawberry.field(
        default=None, description="Models, e.g. gpt-oss, local/llama-guard3:1b."
    )
    backend_types: list[str] | None = strawberry.field(
        default=None, description="Backends: ollama, comfyui, openrouter."
    )
    configs_used: list[str] | None = strawberry.field(
        default=None, description="Configs used by the item, e.g. sd35_large."
    )
    text: str | None = strawberry.field(
        default=None,
        description="Items whose content contains every word of this text (case and "
        "accents ignored, whole words).",
    )

    def to_storage(self) -> ItemCriteria:
        """Validate and translate into the index's criteria."""
        return ItemCriteria(
            item_types=tuple(disk_item_type(t) for t in _values("itemTypes", self.item_types)),
            media_types=tuple(disk_media_type(t) for t in _values("mediaTypes", self.media_types)),
            stages=_values("stages", self.stages),
            stage_iteration=self.stage_iteration,
            loop_iteration=self.loop_iteration,
            models_used=_values("modelsUsed", self.models_used),
            backend_types=_values("backendTypes", self.backend_types),
            configs_used=_values("configsUsed", self.configs_used),
            text=_text("text", self.text),
        )


def run_filter(flt: ExecutionFilter | None) -> RunFilter | None:
    """The storage filter of an optional input."""
    return None if flt is None else flt.to_storage()


def item_criteria(flt: ItemFilter | None) -> ItemCriteria | None:
    """The storage criteria of an optional input (None when nothing constrains)."""
    if flt is None:
        return None
    crit = flt.to_storage()
    return None if crit.is_empty else crit

"""Pydantic models of the on-disk execution record, read tolerantly.

The upstream tracker writes one JSON object per pipeline run (see the record-format page). Its
files drift over time, so the models accept every shape the writer has produced:

* ``backend_used`` is the older spelling of ``backend_type`` (files written before Dec 2025);
* unknown ``item_type`` / ``media_type`` values load unchanged (callers map them to UNKNOWN and
  keep the raw name);
* unknown extra keys are ignored;
* timestamps may be naive (the writer's local time) or carry an offset; both parse, and a naive
  one stays naive.

What the models do *not* accept is data of the wrong type: a string where a number belongs, a
boolean for a number, a number for a timestamp. The numbers, field by field (one rule each, so
that every value served is the file's value or its nearest double):

* positions, stages and iterations (``sequence_number``, ``stage``, ``stage_iteration``,
  ``loop_iteration``): integers of GraphQL's ``Int`` (32-bit signed, as the API serves them);
  negative ones are served as written, ``1.0`` or ``1e0`` are not integers;
* times (``total_execution_time``, ``execution_time``): seconds as a finite double, negative
  included (a clock set back); an integer is read as its nearest double; a number beyond the
  range of a double (``1e400``, an integer of 400 digits) is refused;
* ``used_seed``: an integer of any sign and size the JSON parser reads (up to 4,300 digits,
  Python's limit), served exactly as ``BigInt``;
* numbers inside ``metadata``: any JSON number, integers exactly; a number beyond the range of
  a double is refused (it would read as Infinity, which JSON cannot carry).

NaN and Infinity (which Python's ``json`` writes, but JSON has not) are refused everywhere.
Such a file is reported as invalid, with the field, instead of being served with guessed values
(files are validated in strict JSON mode by ``storage.reader``). Storage models never import
Strawberry; the graph layer wraps them.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
)

#: Item types of taxonomy 1.0, as written on disk.
KNOWN_ITEM_TYPES: Final[frozenset[str]] = frozenset(
    {
        "user_input_text",
        "user_input_image",
        "translation_result",
        "stage1_safety_check",
        "stage1_safety_check_image",
        "stage1_blocked",
        "interception_iteration",
        "interception_final",
        "stage3_safety_check",
        "stage3_blocked",
        "output_image",
        "output_audio",
        "output_music",
        "output_video",
        "output_3d",
        "pipeline_start",
        "pipeline_complete",
        "pipeline_error",
        "stage_transition",
        # Planned upstream; may appear in newer files.
        "user_input_audio",
        "user_input_video",
        "stage1_correction",
        "interception_image_transformation",
        "interception_style_transfer",
        "output_animation",
        "output_hybrid",
        "backend_switch",
    }
)

#: Media types as written on disk.
KNOWN_MEDIA_TYPES: Final[frozenset[str]] = frozenset(
    {"text", "image", "audio", "music", "video", "3d", "metadata"}
)


#: Timestamps: ISO 8601 strings on disk, naive (the writer's local time) or with an offset. The
#: reader validates files in strict JSON mode, where only strings are accepted here.
Timestamp = datetime


#: The longest execution id a record may have (characters): the id names the record's file and
#: rides in cursors, global ids and URLs, so everything that checks an id uses this one number.
MAX_EXECUTION_ID_LENGTH: Final = 200

#: A sequence, stage or iteration number: served as GraphQL's ``Int``, a 32-bit signed integer.
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]


#: A duration in seconds: a finite double (the models set ``allow_inf_nan=False``). Strict, so
#: an integer is taken (read as its nearest double) but a string or a boolean is not.
Seconds = StrictFloat


def _none_to_empty(value: object) -> object:
    return {} if value is None else value


def _finite_numbers(metadata: dict[str, Any]) -> dict[str, Any]:
    """Refuse a float in free-form metadata that JSON cannot carry (NaN, or Infinity: also
    what a number beyond a double, ``1e400``, reads as); say where it is."""
    stack: list[tuple[str, Any]] = [(str(key), value) for key, value in metadata.items()]
    while stack:
        where, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"'{where}' is NaN, Infinity or a number beyond a double")
        if isinstance(value, dict):
            stack.extend((f"{where}.{key}", inner) for key, inner in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{n}]", inner) for n, inner in enumerate(value))
    return metadata


#: Free-form metadata: any JSON object (null read as empty), finite numbers only.
Metadata = Annotated[
    dict[str, Any], BeforeValidator(_none_to_empty), AfterValidator(_finite_numbers)
]


class ExecutionItem(BaseModel):
    """One event of a run, in chronological order within its record."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    sequence_number: Int32
    timestamp: Timestamp
    stage: Int32
    stage_iteration: Int32 | None = None
    loop_iteration: Int32 | None = None
    media_type: StrictStr
    item_type: StrictStr
    content: StrictStr | None = None
    file_path: StrictStr | None = None
    config_used: StrictStr | None = None
    model_used: StrictStr | None = None
    backend_type: StrictStr | None = Field(
        default=None, validation_alias=AliasChoices("backend_type", "backend_used")
    )
    execution_time: Seconds | None = None
    metadata: Metadata = Field(default_factory=dict)

    @property
    def is_known_item_type(self) -> bool:
        """Whether ``item_type`` belongs to the taxonomy this version knows."""
        return self.item_type in KNOWN_ITEM_TYPES

    def to_disk_dict(self) -> dict[str, Any]:
        """The item in the current on-disk shape: every field (``backend_type``), keys sorted."""
        return {name: _on_disk(getattr(self, name)) for name in _ITEM_KEYS}


class ExecutionRecord(BaseModel):
    """One pipeline run: the record and its chronological items."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    execution_id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_EXECUTION_ID_LENGTH)]
    config_name: StrictStr
    timestamp: Timestamp
    user_id: StrictStr = "anonymous"
    session_id: StrictStr = "default"
    execution_mode: StrictStr | None = None
    safety_level: StrictStr | None = None
    used_seed: StrictInt | None = None
    total_execution_time: Seconds | None = None
    taxonomy_version: StrictStr | None = None
    items: list[ExecutionItem]

    def to_disk_dict(self) -> dict[str, Any]:
        """The record in the current on-disk shape, keys sorted as the writer sorts them."""
        disk = {name: _on_disk(getattr(self, name)) for name in _RECORD_KEYS}
        disk["items"] = [item.to_disk_dict() for item in self.items]
        return disk


def _on_disk(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


_ITEM_KEYS: Final = sorted(ExecutionItem.model_fields)
_RECORD_KEYS: Final = sorted(ExecutionRecord.model_fields)

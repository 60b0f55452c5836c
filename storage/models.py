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
boolean for an integer, a number for a timestamp, NaN or Infinity, or a position or stage number
beyond a 32-bit integer (GraphQL's ``Int``, as the API serves them). Such a file is reported as
invalid instead of being served with guessed values (files are validated in strict JSON mode by
``storage.reader``). Storage models never import Strawberry; the graph layer wraps them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import (
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


#: A sequence, stage or iteration number: served as GraphQL's ``Int``, a 32-bit signed integer.
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]


def _none_to_empty(value: object) -> object:
    return {} if value is None else value


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
    execution_time: StrictFloat | StrictInt | None = None
    metadata: Annotated[dict[str, Any], BeforeValidator(_none_to_empty)] = Field(
        default_factory=dict
    )

    @property
    def is_known_item_type(self) -> bool:
        """Whether ``item_type`` belongs to the taxonomy this version knows."""
        return self.item_type in KNOWN_ITEM_TYPES

    def to_disk_dict(self) -> dict[str, Any]:
        """The item in the current on-disk shape (``backend_type``, all 14 keys)."""
        return {
            "backend_type": self.backend_type,
            "config_used": self.config_used,
            "content": self.content,
            "execution_time": self.execution_time,
            "file_path": self.file_path,
            "item_type": self.item_type,
            "loop_iteration": self.loop_iteration,
            "media_type": self.media_type,
            "metadata": self.metadata,
            "model_used": self.model_used,
            "sequence_number": self.sequence_number,
            "stage": self.stage,
            "stage_iteration": self.stage_iteration,
            "timestamp": self.timestamp.isoformat(),
        }


class ExecutionRecord(BaseModel):
    """One pipeline run: the record and its chronological items."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    execution_id: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    config_name: StrictStr
    timestamp: Timestamp
    user_id: StrictStr = "anonymous"
    session_id: StrictStr = "default"
    execution_mode: StrictStr | None = None
    safety_level: StrictStr | None = None
    used_seed: StrictInt | None = None
    total_execution_time: StrictFloat | StrictInt | None = None
    taxonomy_version: StrictStr | None = None
    items: list[ExecutionItem]

    def to_disk_dict(self) -> dict[str, Any]:
        """The record in the current on-disk shape, keys sorted as the writer sorts them."""
        return {
            "config_name": self.config_name,
            "execution_id": self.execution_id,
            "execution_mode": self.execution_mode,
            "items": [item.to_disk_dict() for item in self.items],
            "safety_level": self.safety_level,
            "session_id": self.session_id,
            "taxonomy_version": self.taxonomy_version,
            "timestamp": self.timestamp.isoformat(),
            "total_execution_time": self.total_execution_time,
            "used_seed": self.used_seed,
            "user_id": self.user_id,
        }

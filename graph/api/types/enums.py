"""Enums of the schema. Values on disk are lower case; GraphQL names are upper case."""

from __future__ import annotations

from enum import Enum

import strawberry

from storage.query import RunOrder


@strawberry.enum(description="Kind of event in a run (taxonomy 1.0 and its planned additions).")
class ItemType(Enum):
    USER_INPUT_TEXT = "user_input_text"
    USER_INPUT_IMAGE = "user_input_image"
    USER_INPUT_AUDIO = "user_input_audio"
    USER_INPUT_VIDEO = "user_input_video"
    TRANSLATION_RESULT = "translation_result"
    STAGE1_SAFETY_CHECK = "stage1_safety_check"
    STAGE1_SAFETY_CHECK_IMAGE = "stage1_safety_check_image"
    STAGE1_BLOCKED = "stage1_blocked"
    STAGE1_CORRECTION = "stage1_correction"
    INTERCEPTION_ITERATION = "interception_iteration"
    INTERCEPTION_FINAL = "interception_final"
    INTERCEPTION_IMAGE_TRANSFORMATION = "interception_image_transformation"
    INTERCEPTION_STYLE_TRANSFER = "interception_style_transfer"
    STAGE3_SAFETY_CHECK = "stage3_safety_check"
    STAGE3_BLOCKED = "stage3_blocked"
    OUTPUT_IMAGE = "output_image"
    OUTPUT_AUDIO = "output_audio"
    OUTPUT_MUSIC = "output_music"
    OUTPUT_VIDEO = "output_video"
    OUTPUT_3D = "output_3d"
    OUTPUT_ANIMATION = "output_animation"
    OUTPUT_HYBRID = "output_hybrid"
    PIPELINE_START = "pipeline_start"
    PIPELINE_COMPLETE = "pipeline_complete"
    PIPELINE_ERROR = "pipeline_error"
    STAGE_TRANSITION = "stage_transition"
    BACKEND_SWITCH = "backend_switch"
    UNKNOWN = strawberry.enum_value(
        "unknown",
        description="A type this version does not know; rawItemType holds the name on disk.",
    )


@strawberry.enum(description="Media of an item's content or output.")
class MediaType(Enum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    MUSIC = "music"
    VIDEO = "video"
    THREE_D = strawberry.enum_value("3d", description='3D output ("3d" on disk).')
    METADATA = "metadata"
    UNKNOWN = strawberry.enum_value(
        "unknown",
        description="A media type this version does not know; rawMediaType holds it.",
    )


@strawberry.enum(
    description="Orders of runs; ties are broken by executionId in the same direction."
)
class ExecutionOrder(Enum):
    TIMESTAMP_DESC = strawberry.enum_value("TIMESTAMP_DESC", description="Newest first.")
    TIMESTAMP_ASC = strawberry.enum_value("TIMESTAMP_ASC", description="Oldest first.")
    DURATION_DESC = strawberry.enum_value(
        "DURATION_DESC", description="Longest totalExecutionTime first (missing counts as -1)."
    )
    DURATION_ASC = strawberry.enum_value("DURATION_ASC", description="Shortest first.")

    @property
    def run_order(self) -> RunOrder:
        return RunOrder[self.name]


_ITEM_TYPES = {member.value: member for member in ItemType}
_MEDIA_TYPES = {member.value: member for member in MediaType}


def item_type_of(raw: str) -> ItemType:
    """The enum member of a disk value; UNKNOWN for values this version does not know."""
    member = _ITEM_TYPES.get(raw)
    return ItemType.UNKNOWN if member is None or raw == "unknown" else member


def media_type_of(raw: str) -> MediaType:
    """The enum member of a disk value; UNKNOWN for values this version does not know."""
    member = _MEDIA_TYPES.get(raw)
    return MediaType.UNKNOWN if member is None or raw == "unknown" else member


def disk_item_type(member: ItemType) -> str | None:
    """The disk value of a member; None stands for every unknown type."""
    return None if member is ItemType.UNKNOWN else member.value


def disk_media_type(member: MediaType) -> str | None:
    """The disk value of a member; None stands for every unknown media type."""
    return None if member is MediaType.UNKNOWN else member.value

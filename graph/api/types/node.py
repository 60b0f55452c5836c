"""The Relay Node interface and global ids ("Execution:<executionId>", base64url)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

import strawberry

from graph.api.types.scalars import parse_decimal
from storage.schema import ITEM_BITS

_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+={0,2}")
#: A record has fewer than 2**ITEM_BITS items (see storage.schema).
_MAX_POSITION_DIGITS: Final = len(str(1 << ITEM_BITS))


@strawberry.interface(description="An object with a globally unique id, refetchable by node(id).")
class Node:
    @strawberry.field(description="Globally unique, opaque id.")
    def id(self) -> strawberry.ID:
        # Computed only when asked for: a page of summaries rarely asks.
        return self.global_id()

    def global_id(self) -> strawberry.ID:
        """The id of this object (each implementing type says how it is made)."""
        raise NotImplementedError


def to_global_id(kind: str, local_id: str) -> strawberry.ID:
    """Encode ``kind`` and ``local_id`` into an opaque global id."""
    raw = f"{kind}:{local_id}".encode()
    return strawberry.ID(base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="))


def from_global_id(global_id: str) -> tuple[str, str] | None:
    """Decode a global id into (kind, local id); None if it is not one of ours.

    Only the spelling :func:`to_global_id` gives is taken (padding aside): base64's decoder
    would otherwise skip characters outside its alphabet, so that many strings named one id.
    """
    if len(global_id) > 1024 or not _BASE64URL.fullmatch(global_id):
        return None
    unpadded = global_id.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    kind, sep, local_id = raw.partition(":")
    if not sep or not local_id or to_global_id(kind, local_id) != unpadded:
        return None
    return kind, local_id


def item_local_id(execution_id: str, pos: int) -> str:
    """The local id of item ``pos`` (0-based position in its file) of a run."""
    return f"{execution_id}:{pos}"


def parse_item_local_id(local_id: str) -> tuple[str, int] | None:
    """(execution id, position) of an item's local id; None unless :func:`item_local_id`
    could have made it."""
    execution_id, sep, pos_text = local_id.rpartition(":")
    pos = parse_decimal(pos_text, max_digits=_MAX_POSITION_DIGITS)
    if not sep or not execution_id or pos is None:
        return None
    return execution_id, pos

"""The Relay Node interface and global ids ("Execution:<executionId>", base64url)."""

from __future__ import annotations

import base64
import binascii

import strawberry


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
    """Decode a global id into (kind, local id); None if it is not one of ours."""
    if len(global_id) > 1024:
        return None
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    kind, sep, local_id = raw.partition(":")
    if not sep or not local_id:
        return None
    return kind, local_id

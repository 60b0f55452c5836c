"""Opaque keyset cursors: the sort value and the id of a row, base64url-encoded JSON.

A cursor names a position in one ordering; it is only valid for the field and order that issued
it, which the first element records. Anything else a client sends is rejected with a message that
says what to do instead.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Final

import orjson

from graph.api.types.enums import ExecutionOrder
from graph.errors import BadUserInput
from storage.models import MAX_EXECUTION_ID_LENGTH

_MAX_CURSOR: Final = 1024
_MAX_KEY: Final = 64
_MAX_POSITION: Final = 1 << 31


def _valid_id(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_EXECUTION_ID_LENGTH


def _encode(payload: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode("ascii").rstrip("=")


def _decode(cursor: str, argument: str) -> list[Any]:
    hint = f"'{argument}' must be a cursor returned by this field (edges.cursor or pageInfo)"
    if len(cursor) > _MAX_CURSOR:
        raise BadUserInput(f"{hint}; this one is too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadUserInput(hint) from None
    if not isinstance(payload, list) or not payload:
        raise BadUserInput(hint)
    return payload


def encode_run_cursor(order: ExecutionOrder, value: str | float, execution_id: str) -> str:
    """The cursor of a run in ``order``."""
    return _encode(["r", order.value, value, execution_id])


def decode_run_cursor(cursor: str, order: ExecutionOrder, argument: str) -> tuple[str | float, str]:
    """The keyset position in a run cursor; it must belong to ``order``."""
    payload = _decode(cursor, argument)
    if len(payload) != 4 or payload[0] != "r":
        raise BadUserInput(f"'{argument}' is not a cursor of the executions field")
    _, order_name, value, execution_id = payload
    if order_name != order.value:
        raise BadUserInput(
            f"'{argument}' was issued for orderBy {order_name}; "
            f"start again without a cursor to page in {order.value}"
        )
    by_time = order in (ExecutionOrder.TIMESTAMP_ASC, ExecutionOrder.TIMESTAMP_DESC)
    if by_time:
        valid_value = isinstance(value, str) and len(value) <= _MAX_KEY
    else:
        # A duration is a finite double (storage.models.Seconds), as issued: orjson reads
        # integers beyond 64 bits as doubles, so float() of what it gives cannot overflow.
        valid_value = (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if not valid_value or not _valid_id(execution_id):
        raise BadUserInput(f"'{argument}' is not a valid executions cursor")
    return (value if by_time else float(value)), execution_id


def encode_item_cursor(ts_key: str, execution_id: str, pos: int) -> str:
    """The cursor of an item in the cross-run item order."""
    return _encode(["i", ts_key, execution_id, pos])


def decode_item_cursor(cursor: str, argument: str) -> tuple[str, str, int]:
    """The keyset position in an item cursor."""
    payload = _decode(cursor, argument)
    if len(payload) != 4 or payload[0] != "i":
        raise BadUserInput(f"'{argument}' is not a cursor of the items field")
    _, ts_key, execution_id, pos = payload
    if (
        not isinstance(ts_key, str)
        or len(ts_key) > _MAX_KEY
        or not _valid_id(execution_id)
        or not isinstance(pos, int)
        or isinstance(pos, bool)
        or not 0 <= pos < _MAX_POSITION
    ):
        raise BadUserInput(f"'{argument}' is not a valid items cursor")
    return ts_key, execution_id, pos

"""Custom scalars: integers beyond 32 bits, and free-form JSON.

``BigInt`` is a NewType mapped to its scalar definition in the schema config (``SCALAR_MAP``),
which is how current Strawberry wants custom scalars declared.
"""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

__all__ = ["JSON", "SCALAR_MAP", "BigInt"]

BigInt = NewType("BigInt", int)


def _parse_big_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("BigInt must be an integer or a string of digits")
    return int(value)


SCALAR_MAP: dict[object, ScalarDefinition] = {
    BigInt: strawberry.scalar(
        name="BigInt",
        description=(
            "An integer of any size, sent as a JSON number (GraphQL's Int stops at 32 bits; "
            "generation seeds go beyond). Accepts a number or a string of digits as input."
        ),
        serialize=int,
        parse_value=_parse_big_int,
    )
}

"""Custom scalars: integers beyond 32 bits, and free-form JSON."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.scalars import JSON

__all__ = ["JSON", "BigInt"]


def _parse_big_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("BigInt must be an integer or a string of digits")
    return int(value)


BigInt = strawberry.scalar(
    NewType("BigInt", int),
    name="BigInt",
    description=(
        "An integer of any size, sent as a JSON number (GraphQL's Int stops at 32 bits; "
        "generation seeds go beyond). Accepts a number or a string of digits as input."
    ),
    serialize=int,
    parse_value=_parse_big_int,
)

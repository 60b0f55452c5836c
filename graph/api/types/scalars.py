"""Custom scalars: integers beyond 32 bits, and free-form JSON.

``BigInt`` is a NewType mapped to its scalar definition in the schema config (``SCALAR_MAP``),
which is how current Strawberry wants custom scalars declared.
"""

from __future__ import annotations

from typing import Final, NewType

import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

__all__ = ["JSON", "SCALAR_MAP", "BigInt"]

BigInt = NewType("BigInt", int)


#: Digits of the longest integer read from a string (Python's own limit for ``int(str)``).
MAX_DIGITS: Final = 4300


def parse_decimal(text: str, *, signed: bool = False, max_digits: int = MAX_DIGITS) -> int | None:
    """The integer ``text`` spells in canonical ASCII decimal (``0``, ``17``, ``-3`` when
    ``signed``), or None: the one place where arguments and ids are read as numbers.

    ``int()`` alone takes far more: whitespace, ``+``, ``_``, Arabic-Indic or fullwidth digits,
    and ``isdigit()`` passes superscripts that ``int()`` then refuses. Leading zeros are refused
    too, so that each number has one spelling (as ids must).
    """
    digits = text[1:] if signed and text.startswith("-") else text
    if not (0 < len(digits) <= max_digits and digits.isascii() and digits.isdecimal()):
        return None
    if digits[0] == "0" and (len(digits) > 1 or digits is not text):
        return None  # 007, -0
    return int(text)


def _parse_big_int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    parsed = parse_decimal(value, signed=True) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError("BigInt must be an integer or a string of ASCII digits (optional '-')")
    return parsed


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

"""The README's GraphQL examples, read from README.md itself: the one place they are written.

The README test (``tests/test_readme.py``, through the ASGI app) and the smoke test of an
installed copy (:mod:`tests.smoke.installed`, over HTTP and a WebSocket) both run every
```` ```graphql ```` block, so an example that stops working, or a demo store that stops holding
what an example finds, fails a test.

What every answer must show (:func:`answer_problems`): no errors, a value for every root field,
and no empty list anywhere. Each example is written to find something in the store that
``execgraph serve --demo`` writes (which holds the run the README names, see
``storage.demo.SHOWCASE_ID``). Stdlib only: the smoke test runs it next to an installed copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

README: Final = Path(__file__).resolve().parents[2] / "README.md"

_FENCE: Final = re.compile(r"^```graphql[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_HEADING: Final = re.compile(r"^#{1,6} +(.+)$", re.MULTILINE)
_OPERATION: Final = re.compile(r"\A(?:\s|#[^\n]*)*(query|mutation|subscription)\b")


@dataclass(frozen=True, slots=True)
class Example:
    """One ```` ```graphql ```` block of the README."""

    document: str
    line: int
    heading: str

    @property
    def kind(self) -> str:
        """``query``, ``mutation`` or ``subscription`` (a bare ``{ ... }`` is a query)."""
        match = _OPERATION.match(self.document)
        return match.group(1) if match else "query"

    def __str__(self) -> str:
        return f"README.md line {self.line} ({self.heading}, {self.kind})"


def examples(text: str | None = None) -> list[Example]:
    """Every ```` ```graphql ```` block of ``text`` (default: the checkout's README.md)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()]
        headings = _HEADING.findall(before)
        found.append(
            Example(
                document=match.group(1),
                line=before.count("\n") + 1,
                heading=headings[-1].strip() if headings else "(top)",
            )
        )
    return found


def answer_problems(payload: Any) -> list[str]:
    """What is wrong with a GraphQL response to an example (``[]``: nothing)."""
    if not isinstance(payload, dict):
        return [f"the response is not a JSON object: {payload!r:.200}"]
    problems = [f"error: {error!r:.300}" for error in payload.get("errors") or ()]
    data = payload.get("data")
    if not isinstance(data, dict) or not data:
        return [*problems, "no data"]
    problems += [f"{field} is null" for field, value in data.items() if value is None]
    problems += [f"{path} is an empty list" for path, value in _lists(data, "") if not value]
    return problems


def _lists(value: Any, path: str) -> Iterator[tuple[str, list[Any]]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _lists(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        yield path, value
        for index, item in enumerate(value):
            yield from _lists(item, f"{path}[{index}]")

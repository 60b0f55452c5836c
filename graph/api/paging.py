"""The page rule of every connection field, in one place for the resolvers and the query cost.

``first`` or ``last`` (not both) is a page size from 0 to the largest page; with neither, a
field returns the default page size: from the end for ``before`` alone, else from the start.
Both sizes are settings (:class:`graph.settings.Limits`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from graph.errors import BadUserInput
from graph.settings import Limits


@dataclass(frozen=True, slots=True)
class PageSizes:
    """The default and the largest page of a server."""

    default: int
    maximum: int

    @classmethod
    def of(cls, limits: Limits) -> PageSizes:
        return cls(default=limits.default_page_size, maximum=limits.max_page_size)

    def requested(
        self, first: int | None, last: int | None, *, before_only: bool
    ) -> tuple[int | None, int | None]:
        """``(first, last)`` as the page is asked for; raises ``BadUserInput`` for bad sizes.

        ``before_only``: a ``before`` cursor without an ``after`` one (a page back from it).
        """
        if first is not None and last is not None:
            raise BadUserInput(
                "pass either 'first' (with 'after') or 'last' (with 'before'), not both"
            )
        for name, value in (("first", first), ("last", last)):
            if value is not None and not 0 <= value <= self.maximum:
                raise BadUserInput(f"'{name}' must be between 0 and {self.maximum} (got {value})")
        if first is None and last is None:
            return (None, self.default) if before_only else (self.default, None)
        return first, last

    def at_most(self, given: Iterable[int | None]) -> int:
        """The most rows a field given these ``first``/``last`` values returns (for the cost)."""
        sizes = [size for size in given if size is not None]
        return max(0, min(max(sizes), self.maximum)) if sizes else self.default


#: The page sizes the published schema documents (the settings' defaults).
DEFAULT_PAGES: Final = PageSizes.of(Limits())

"""Realistic demo records and deliberately broken files, for the demo server, tests and benchmarks.

The upstream tracker's files vary more than any hand-written fixture suggests: eight Stille Post
iterations in eight scripts, outputs that were blocked or failed, fast-path safety checks without
a model, ComfyUI jobs whose "file path" is a UUID, a key renamed in December 2025, item types the
taxonomy only planned. :func:`generate_records` produces all of that deterministically for a seed,
so ``execgraph serve --demo``, the test suites and the 100,000-record benchmark look at the same
kind of data a deployment holds. The shapes follow the record-format page's "Typical shapes".

:func:`write_malformed` (:mod:`storage.demo.malformed`) produces the files a tolerant reader must
skip and report; :func:`write_demo_store` writes a whole store with one of each. This module is
the entry point; generation lives in :mod:`storage.demo.records`, its text pools in
:mod:`storage.demo.content`, and the tracker-like file writes in :mod:`storage.demo.writer`. The
package may import the storage core; the core never imports it.

Generation is tuned for volume (tens of thousands of records per second before I/O): content
comes from fixed text pools, and serialisation goes through :func:`serialize_record`, which
produces the tracker's exact bytes via orjson.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from storage.demo.malformed import MALFORMED_KINDS, write_duplicate, write_malformed
from storage.demo.records import SHOWCASE_ID, generate_records, showcase_record
from storage.demo.writer import serialize_record, write_file

__all__ = [
    "MALFORMED_KINDS",
    "PROGRESS_EVERY",
    "SHOWCASE_ID",
    "DemoSummary",
    "generate_records",
    "showcase_record",
    "write_demo_store",
    "write_malformed",
]

#: ``write_demo_store`` reports progress after this many records (and once at the end).
PROGRESS_EVERY: Final = 1000


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What :func:`write_demo_store` wrote: valid record files, and malformed files by kind."""

    valid: int
    malformed: Mapping[str, int] = field(default_factory=dict)

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())

    def __str__(self) -> str:
        return f"{self.valid:,} valid records and {self.malformed_total} malformed files"


def write_demo_store(
    directory: Path,
    count: int,
    *,
    seed: int = 0,
    malformed: bool = True,
    showcase: bool = False,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Write ``count`` generated records (and, by default, one malformed file of each kind).

    The files are those of ``generate_records(count, seed=seed)``, plus with ``showcase`` the
    run the README's examples name (:func:`showcase_record`; ``serve --demo`` asks for it; the
    generated stores of tests and benchmarks do not). ``progress`` is called with the number of
    records written so far, every :data:`PROGRESS_EVERY` records and at the end. The symlink
    kind points into a hidden sibling directory (``.<name>-outside``) that this function
    creates next to the store.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    directory.mkdir(parents=True, exist_ok=True)
    _write_records(directory, count, seed, progress)
    valid = count
    if showcase:
        write_file(directory / f"{SHOWCASE_ID}.json", serialize_record(showcase_record()))
        valid += 1
    if not malformed:
        return DemoSummary(valid=valid)
    for kind in MALFORMED_KINDS:
        if kind == "duplicate_id" and count:
            write_duplicate(directory, next(generate_records(1, seed=seed)))
        else:
            write_malformed(directory, kind)
            valid += kind == "duplicate_id"  # it wrote its own valid original
    return DemoSummary(valid=valid, malformed=dict.fromkeys(MALFORMED_KINDS, 1))


def _write_records(
    directory: Path, count: int, seed: int, progress: Callable[[int], None] | None
) -> None:
    for written, record in enumerate(generate_records(count, seed=seed), start=1):
        write_file(directory / f"{record['execution_id']}.json", serialize_record(record))
        if progress is not None and (written % PROGRESS_EVERY == 0 or written == count):
            progress(written)

"""Benchmark stores, written once by the project's generator and kept in the user cache.

Writing 100,000 realistic records takes about a minute, so each store (one per size and seed) is
kept under ``<user cache>/execgraph/bench/stores`` and reused; a marker written last says that a
store is complete, so an interrupted build is redone rather than measured. Indexes live beside
the stores, outside them, as the server requires. Freshness runs add files to a store for a
moment; :func:`remove_fresh_files` takes them out again, also after an interrupted run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from graph.settings import cache_root
from storage.demo import generate_records, write_demo_store
from storage.index import RecordIndex

#: Bump when the generator's output for a seed changes, so cached stores are rewritten.
STORE_VERSION: Final = "1"
_MARKER: Final = ".execgraph-bench"
#: Freshness records start on this day, after every generated run, and are named after it.
FRESH_DAY: Final = datetime(2026, 3, 1)
FRESH_PREFIX: Final = f"exec_{FRESH_DAY:%Y%m%d}_"


def default_root() -> Path:
    """Where stores, indexes and results are kept unless told otherwise."""
    return cache_root() / "bench"


@dataclass(frozen=True, slots=True)
class BenchStore:
    """A generated store, its index path, and what it holds."""

    path: Path
    index_path: Path
    records: int
    files: int


def ensure_store(
    root: Path, size: int, *, seed: int = 0, progress: Callable[[int], None] | None = None
) -> BenchStore:
    """The store of ``size`` records for ``seed``, written now if not complete already."""
    name = f"demo-{size}-seed{seed}"
    path = root / "stores" / name
    marker = path / _MARKER
    expected = f"version {STORE_VERSION}\n"
    if not (marker.exists() and marker.read_text("utf-8") == expected):
        if path.exists():
            shutil.rmtree(path)
        summary = write_demo_store(path, size, seed=seed, malformed=True, progress=progress)
        files = summary.valid + summary.malformed_total
        marker.write_text(expected, encoding="utf-8")
    else:
        remove_fresh_files(path)
        files = sum(1 for entry in os.scandir(path) if entry.name.endswith(".json"))
    return BenchStore(path, root / "indexes" / f"{name}.sqlite3", size, files)


def warm_page_cache(store: BenchStore) -> float:
    """Read every file of the store once, so the index build that follows is timed with the
    files in the operating system's cache (as the target's floor is); return the seconds."""
    started = time.perf_counter()
    with os.scandir(store.path) as entries:
        for entry in entries:
            if entry.name.endswith(".json") and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError), open(entry.path, "rb") as handle:
                    while handle.read(1 << 20):
                        pass
    return time.perf_counter() - started


def build_index(store: BenchStore) -> tuple[float, int]:
    """Build the store's index from nothing; return (seconds, records indexed)."""
    discard_index(store.index_path)
    store.index_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with RecordIndex(store.path, store.index_path) as index:
        report = index.sync()
    return time.perf_counter() - started, report.added


def discard_index(index_path: Path) -> None:
    """Delete an index file with its SQLite companions."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{index_path}{suffix}")


def fresh_records(count: int, *, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Records newer than every stored run, oldest first: each one becomes the newest run."""
    records = generate_records(
        count, seed=seed + 1_000_003, start=FRESH_DAY, end=FRESH_DAY.replace(hour=23)
    )
    return iter(sorted(records, key=lambda record: str(record["timestamp"])))


def remove_fresh_files(store: Path) -> int:
    """Delete files a freshness run added to ``store``; return how many there were."""
    removed = 0
    for entry in os.scandir(store):
        if entry.name.startswith(FRESH_PREFIX) and entry.name.endswith(".json"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(entry.path)
                removed += 1
    return removed

"""What one benchmark run measured: plain dataclasses, written as JSON and read by the report.

Latencies are in milliseconds, with the client's own overhead (measured against a server that
answers instantly) already taken out, so that the figures are the server's. Every ratio the
targets speak of is computed from figures of the same run.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Summary:
    """Median, 99th percentile and extremes of a series of samples (milliseconds)."""

    n: int
    p50: float
    p99: float
    mean: float
    min: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        """Summarise ``samples``; p99 is the nearest-rank percentile (an observed sample)."""
        if not samples:
            raise ValueError("no samples to summarise")
        ordered = sorted(samples)
        rank = max(1, math.ceil(0.99 * len(ordered)))
        return cls(
            n=len(ordered),
            p50=statistics.median(ordered),
            p99=ordered[rank - 1],
            mean=statistics.fmean(ordered),
            min=ordered[0],
            max=ordered[-1],
        )


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Concurrent clients against a multi-worker server for a fixed time."""

    clients: int
    workers: int
    seconds: float
    requests: int
    errors: int
    throughput_rps: float
    latency: Summary | None
    #: CPU the load-generating client itself used, as a share of one core (it runs beside the
    #: server on the same machine).
    client_cpu_share: float
    peak_rss_mb: float | None = None


@dataclass(frozen=True, slots=True)
class Freshness:
    """Time from a new file's completion to its appearance in ``executions`` (milliseconds)."""

    samples: list[float]
    #: Files that did not appear within the time limit (counted in ``max`` at the limit).
    unseen: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)


@dataclass(frozen=True, slots=True)
class FileReads:
    """Record files read by one request of a class, counted in-process two ways."""

    #: The app's own counter, ``app.state.execgraph.files_read``.
    counter: int
    #: Opens of files inside the store seen by an audit hook (independent of the app's code).
    opens: int
    #: Distinct runs the response contains (what "each file once" means for this request).
    runs: int


@dataclass(slots=True)
class SizeResult:
    """Everything measured on one store size."""

    records: int
    files: int
    #: Median of ``build_samples``: seconds of a cold index build, and records per second.
    index_build_s: float
    index_records_per_s: float
    #: Median of ``startup_samples``: seconds from starting the server until it answers.
    startup_s: float
    startup_samples: list[float] = field(default_factory=list)
    build_samples: list[float] = field(default_factory=list)
    latency: dict[str, Summary] = field(default_factory=dict)
    #: Latency of the very first request of each class (caches of counts still empty).
    first_ms: dict[str, float] = field(default_factory=dict)
    file_reads: dict[str, FileReads] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    load: LoadResult | None = None
    freshness: Freshness | None = None


@dataclass(slots=True)
class ClientOverhead:
    """What the benchmark's own client costs per request, kept out of the server figures."""

    #: Round trip against a server that answers at once (client, loopback, minimal server).
    canned: Summary
    #: The client's CPU time per request in that loop.
    cpu_ms: float


@dataclass(slots=True)
class BenchResult:
    """One run of ``execgraph bench``."""

    meta: dict[str, Any]
    client: ClientOverhead
    sizes: dict[int, SizeResult]
    #: The same responses from a minimal Strawberry schema over objects in memory.
    floor: dict[str, Summary] = field(default_factory=dict)
    #: Store size the naive baseline ran on, and its latency for the list page.
    naive_size: int | None = None
    naive: Summary | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (sizes keyed by their decimal string, as JSON wants)."""
        data = dataclasses.asdict(self)
        data["sizes"] = {str(size): data["sizes"][size] for size in sorted(self.sizes)}
        for size, result in self.sizes.items():
            if result.freshness is not None:
                fresh = data["sizes"][str(size)]["freshness"]
                fresh["median"] = result.freshness.median
                fresh["max"] = result.freshness.max
        return data

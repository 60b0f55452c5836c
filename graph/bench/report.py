"""Targets with pass or miss, and the table ``execgraph bench`` prints.

Targets are ratios wherever possible (against a floor or a baseline measured in the same run), so
that they hold on a slow or busy machine as on a fast one; the few absolute ones (records per
second, seconds, megabytes, milliseconds) are the figures users feel directly. A target whose
inputs were not measured (a single store size, say) is "n/a", never a pass.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from graph.bench.queries import CLASS_TITLES, FLOOR_CLASSES, ONE_CLIENT_CLASSES
from graph.bench.results import BenchResult, SizeResult, Summary

Comparison = Literal["<=", ">=", "=="]
Status = Literal["pass", "miss", "n/a"]

_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<=": lambda value, limit: value <= limit,
    ">=": lambda value, limit: value >= limit,
    "==": lambda value, limit: abs(value - limit) < 1e-9,
}


@dataclass(frozen=True, slots=True)
class Target:
    """One target: what was measured, the limit, and whether it holds."""

    key: str
    title: str
    value: float | None
    op: Comparison
    limit: float
    unit: str = "x"
    note: str = ""

    @property
    def status(self) -> Status:
        if self.value is None:
            return "n/a"
        return "pass" if _OPS[self.op](self.value, self.limit) else "miss"

    def describe(self) -> str:
        """``title: value (op limit) note`` for the table."""
        shown = "not measured" if self.value is None else _fmt(self.value, self.unit)
        note = f"  [{self.note}]" if self.note else ""
        return f"{self.title}: {shown} ({self.op} {_fmt(self.limit, self.unit)}){note}"


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value * 100:+.0f}%"
    if unit == "rec/s":
        return f"{value:,.0f} rec/s"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:g}{unit}"


def _ratio(num: Summary | None, den: Summary | None) -> float | None:
    if num is None or den is None or den.p50 <= 0:
        return None
    return num.p50 / den.p50


def _p50(result: SizeResult, name: str) -> Summary | None:
    return result.latency.get(name)


def evaluate(result: BenchResult) -> list[Target]:
    """Every target of the benchmark, evaluated on ``result``."""
    sizes = sorted(result.sizes)
    if not sizes:
        return []
    small, large = result.sizes[sizes[0]], result.sizes[sizes[-1]]
    at = f"at {sizes[-1]:,} records"
    several = len(sizes) > 1
    return [
        Target(
            "size_independence",
            f"list page p50, {sizes[-1]:,} vs {sizes[0]:,} records",
            _ratio(_p50(large, "list"), _p50(small, "list")) if several else None,
            "<=",
            1.25,
            note="" if several else "needs two store sizes",
        ),
        Target(
            "deep_page",
            f"deep page vs first page p50, {at}",
            _ratio(_p50(large, "deep"), _p50(large, "list")),
            "<=",
            1.2,
        ),
        Target(
            "list_vs_floor",
            f"list page p50 vs in-memory Strawberry floor, {at}",
            _ratio(_p50(large, "list"), result.floor.get("list")),
            "<=",
            1.3,
        ),
        Target(
            "detail_vs_floor",
            f"one run with all items p50 vs in-memory floor, {at}",
            _ratio(_p50(large, "detail"), result.floor.get("detail")),
            "<=",
            1.3,
        ),
        _files_once(result),
        _naive(result),
        Target(
            "typename_vs_bare",
            f"{{__typename}} p50 vs bare Strawberry with caches, {at}",
            _ratio(_p50(large, "typename"), result.floor.get("typename")),
            "<=",
            1.4,
        ),
        _tail(result),
        Target(
            "cold_build",
            f"cold index build (median of {len(large.build_samples) or 1}), {at}",
            large.index_records_per_s,
            ">=",
            10_000,
            unit="rec/s",
        ),
        Target(
            "startup",
            f"startup on an indexed store (until /healthz answers), {at}",
            large.startup_s,
            "<=",
            2.0,
            unit="s",
        ),
        *_freshness(result),
        Target(
            "rss",
            f"server peak RSS (VmHWM), {at}",
            large.peak_rss_mb,
            "<=",
            150,
            unit="MB",
        ),
        Target(
            "rss_growth",
            f"server peak RSS growth, {sizes[0]:,} -> {sizes[-1]:,} records",
            None
            if not several or large.peak_rss_mb is None or small.peak_rss_mb is None
            else large.peak_rss_mb - small.peak_rss_mb,
            "<=",
            50,
            unit="MB",
            note="" if several else "needs two store sizes",
        ),
        _total_count(large, at),
        _load(result),
    ]


def _files_once(result: BenchResult) -> Target:
    worst: float | None = None
    for size in sorted(result.sizes):
        reads = result.sizes[size].file_reads.get("items50")
        if reads is None or reads.runs == 0:
            continue
        per_run = max(reads.counter, reads.opens) / reads.runs
        worst = per_run if worst is None else max(worst, per_run)
    return Target(
        "files_once",
        "50 runs with items: files read per run (counter and opened files, worst size)",
        worst,
        "==",
        1.0,
        unit="",
    )


def _naive(result: BenchResult) -> Target:
    size = result.naive_size
    ours = None if size is None or size not in result.sizes else _p50(result.sizes[size], "list")
    note = "" if size in (None, 10_000) else f"baseline ran at {size:,} records"
    return Target(
        "naive_speedup",
        "list page: naive file-scanning baseline p50 / ours, at 10,000 records",
        _ratio(result.naive, ours),
        ">=",
        100,
        note=note,
    )


def _tail(result: BenchResult) -> Target:
    worst: tuple[float, str] | None = None
    for size, sized in sorted(result.sizes.items()):
        for name in ONE_CLIENT_CLASSES:
            summary = sized.latency.get(name)
            if summary is None or summary.p50 <= 0:
                continue
            spread = summary.p99 / summary.p50
            if worst is None or spread > worst[0]:
                worst = (spread, f"worst: {CLASS_TITLES[name]} at {size:,}")
    # The floor ran in the same rounds: its spread is what the machine alone does to a tail.
    control = [s.p99 / s.p50 for s in result.floor.values() if s.p50 > 0]
    note = "" if worst is None else worst[1]
    if control:
        note += f"; in-memory floor's worst in the same rounds: {max(control):.2f}x"
    return Target(
        "tail",
        "p99 / p50, every query class at one client",
        None if worst is None else worst[0],
        "<=",
        3.0,
        note=note,
    )


def _freshness(result: BenchResult) -> list[Target]:
    samples: list[float] = []
    for sized in result.sizes.values():
        if sized.freshness is not None:
            samples.extend(sized.freshness.samples)
    median = statistics.median(samples) if samples else None
    return [
        Target("freshness_median", "freshness median, all sizes", median, "<=", 250, unit="ms"),
        Target(
            "freshness_max",
            "freshness max, all sizes",
            max(samples) if samples else None,
            "<=",
            1000,
            unit="ms",
        ),
    ]


def _total_count(large: SizeResult, at: str) -> Target:
    ratio = _ratio(_p50(large, "list_count_fresh"), _p50(large, "list_nocount_fresh"))
    return Target(
        "total_count",
        f"totalCount (computed, not cached) added to the list page p50, {at}",
        None if ratio is None else ratio - 1,
        "<=",
        0.30,
        unit="%",
    )


def _load(result: BenchResult) -> Target:
    loads = [(size, s.load) for size, s in sorted(result.sizes.items()) if s.load is not None]
    if not loads:
        return Target("load_errors", "errors under concurrent clients", None, "==", 0, unit="")
    clients, workers = loads[-1][1].clients, loads[-1][1].workers
    p99s = ", ".join(
        f"p99 {load.latency.p99:.1f} ms at {size:,}" for size, load in loads if load.latency
    )
    return Target(
        "load_errors",
        f"errors under {clients} concurrent clients on {workers} workers",
        float(sum(load.errors for _, load in loads)),
        "==",
        0,
        unit="",
        note=p99s,
    )


# -- the table -------------------------------------------------------------------------------

_TITLE: Final = 40
_CELL: Final = 24
_SHORT: Final = {
    "typename": "{__typename}",
    "list": "list page",
    "detail": "one run, all items",
    "items50": "50 runs with items",
    "search": "item search",
    "stats": "storageStats",
}


def render(result: BenchResult, targets: list[Target]) -> str:
    """The human-readable report: figures per size, baselines, then every target."""
    sizes = sorted(result.sizes)
    meta = result.meta
    lines = [
        f"execgraph bench  {meta.get('date', '')}  {meta.get('machine', '')}",
        f"mode: {'quick' if meta.get('quick') else 'full'}; {meta.get('versions', '')}",
        f"load average at start / end: {_load_avg(meta.get('load_average_start'))} / "
        f"{_load_avg(meta.get('load_average_end'))}; CPU time stolen by the hypervisor: "
        f"{_share(meta.get('cpu_steal_share'))} (other work on the machine shows in p99)",
        f"client overhead: {result.client.canned.p50:.3f} ms p50 round trip to a server that "
        f"answers at once ({result.client.cpu_ms:.3f} ms client CPU); subtracted from every "
        "one-client figure below",
        "CLI start without a store (execgraph --version): "
        f"{_opt(meta.get('cli_start_s'), '{:.2f}')} s",
        "",
    ]
    head = f"{'one client, ms':<{_TITLE}}" + "".join(f"{f'{s:,} records':>{_CELL}}" for s in sizes)
    half = _CELL // 2
    lines += [head, " " * _TITLE + "".join(f"{'p50':>{half}}{'p99':>{half}}" for _ in sizes)]
    for name in ONE_CLIENT_CLASSES:
        cells = []
        for size in sizes:
            summary = result.sizes[size].latency.get(name)
            cells.append(
                f"{'-':>{half}}{'-':>{half}}"
                if summary is None
                else f"{summary.p50:>{half}.2f}{summary.p99:>{half}.2f}"
            )
        lines.append(f"{CLASS_TITLES[name]:<{_TITLE}}" + "".join(cells))
    lines.append("")

    def row(title: str, cell: Callable[[SizeResult], str]) -> None:
        lines.append(
            f"{title:<{_TITLE}}" + "".join(f"{cell(result.sizes[s]):>{_CELL}}" for s in sizes)
        )

    row("first request (uncached), list ms", lambda r: _opt(r.first_ms.get("list"), "{:.1f}"))
    row("cold index build, rec/s", lambda r: f"{r.index_records_per_s:,.0f}")
    row("cold index build, s (median)", lambda r: f"{r.index_build_s:.2f}")
    row("cold index builds, s (each)", lambda r: " / ".join(f"{b:.1f}" for b in r.build_samples))
    row("startup on indexed store, s (median)", lambda r: f"{r.startup_s:.2f}")
    row("server peak RSS (VmHWM), MB", lambda r: _opt(r.peak_rss_mb, "{:.0f}"))
    for name in ("items50", "detail", "search", "list", "stats"):
        row(f"files read, {_SHORT[name]}", _reads_of(name))
    row("freshness median / max, ms", _fresh)
    row("load: requests/s", lambda r: "-" if r.load is None else f"{r.load.throughput_rps:,.0f}")
    row("load: p50 / p99, ms", _load_latency)
    row("load: errors / requests", lambda r: "-" if r.load is None else _load_count(r))
    row("load: client CPU, share of a core", lambda r: _opt(_client_cpu(r), "{:.0%}"))
    row(
        "load: worker peak RSS, MB",
        lambda r: _opt(r.load.peak_rss_mb if r.load else None, "{:.0f}"),
    )
    lines += ["", "baselines in the same run (ms)"]
    for name in FLOOR_CLASSES:
        summary = result.floor.get(name)
        if summary is not None:
            lines.append(
                f"  in-memory Strawberry floor, {_SHORT[name]:<22}"
                f"p50 {summary.p50:8.2f}  p99 {summary.p99:8.2f}"
            )
    if result.naive is not None and result.naive_size is not None:
        lines.append(
            f"  naive REST baseline, list page at {result.naive_size:,}: "
            f"p50 {result.naive.p50:8.1f}  p99 {result.naive.p99:8.1f}  (n={result.naive.n})"
        )
    lines += ["", "targets"]
    lines += [f"  [{t.status:>4}] {t.describe()}" for t in targets]
    passed = sum(t.status == "pass" for t in targets)
    missed = sum(t.status == "miss" for t in targets)
    lines.append(f"  {passed} pass, {missed} miss, {len(targets) - passed - missed} n/a")
    return "\n".join(lines)


def _share(value: object) -> str:
    if not isinstance(value, float | int):
        return "?"
    return f"{float(value):.1%}"


def _load_avg(value: object) -> str:
    if not isinstance(value, list | tuple) or not value:
        return "?"
    return f"{float(value[0]):.1f}"


def _opt(value: float | None, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def _reads_of(name: str) -> Callable[[SizeResult], str]:
    def cell(result: SizeResult) -> str:
        reads = result.file_reads.get(name)
        if reads is None:
            return "-"
        return f"{reads.counter} ({reads.opens} opened, {reads.runs} runs)"

    return cell


def _fresh(result: SizeResult) -> str:
    fresh = result.freshness
    if fresh is None:
        return "-"
    unseen = f", {fresh.unseen} unseen" if fresh.unseen else ""
    return f"{fresh.median:.0f} / {fresh.max:.0f}{unseen}"


def _load_latency(result: SizeResult) -> str:
    if result.load is None or result.load.latency is None:
        return "-"
    return f"{result.load.latency.p50:.1f} / {result.load.latency.p99:.1f}"


def _load_count(result: SizeResult) -> str:
    assert result.load is not None
    return f"{result.load.errors} / {result.load.requests:,}"


def _client_cpu(result: SizeResult) -> float | None:
    return None if result.load is None else result.load.client_cpu_share

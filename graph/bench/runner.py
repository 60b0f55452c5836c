"""The phases of one benchmark run, from stores to the load test.

Order matters for honest figures:

1. stores are written (once, cached) and each index is built cold, in this process, before any
   server runs, so the build has the machine to itself; every file is read once just before,
   so the build is timed with the files in the page cache (not on how cold the disk is);
2. one server per size is started the way users start it, one at a time (its startup is timed),
   then the floor and the naive baseline;
3. one-client latencies are taken in interleaved rounds: every class on every server in turn,
   a short slice at a time, starting each round one class further on, so that noise from other
   work on the machine (which comes in phases of a few seconds) spreads over all figures alike
   and the ratios stay fair;
4. the naive baseline, freshness and peak memory follow, then the one-worker servers stop and a
   multi-worker server per size takes the concurrent load.

Every loop is bounded in count and in time; every server listens on 127.0.0.1 and is stopped
by the benchmark when it ends, also on an error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import orjson

from graph.bench import queries as q
from graph.bench.baselines import FLOOR_DATA_ENV, NAIVE_STORE_ENV
from graph.bench.client import (
    HttpConnection,
    HttpError,
    check_ok,
    collector_paused,
    get,
    graphql_request,
    run_load,
    timed,
)
from graph.bench.inprocess import ReadQuery, count_file_reads
from graph.bench.results import (
    BenchResult,
    ClientOverhead,
    FileReads,
    Freshness,
    LoadResult,
    SizeResult,
    Summary,
)
from graph.bench.servers import (
    ServerError,
    ServerProcess,
    execgraph_command,
    free_port,
    serve_command,
    uvicorn_command,
)
from graph.bench.stores import (
    FRESH_PREFIX,
    BenchStore,
    build_index,
    default_root,
    ensure_store,
    fresh_records,
    remove_fresh_files,
    warm_page_cache,
)
from storage.demo.writer import write_like_tracker

Log = Callable[[str], None]

#: A fresh file not seen after this long counts as seen at this limit (and as unseen).
FRESH_LIMIT_S: Final = 5.0
#: Classes that read record files: fewer samples, they cost tens of milliseconds.
HEAVY_CLASSES: Final = frozenset({"items50"})


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What to measure and how much. :meth:`quick` is the short run (under two minutes)."""

    sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    quick_mode: bool = False
    seed: int = 0
    root: Path = field(default_factory=default_root)
    #: Samples per one-client class (``heavy_samples`` for classes reading many files).
    samples: int = 300
    heavy_samples: int = 100
    #: Interleaved one-client rounds: many short slices, so that a slow phase of the machine
    #: falls on every class alike rather than on the few slices it happens to overlap.
    rounds: int = 15
    #: Untimed requests that start each slice (one for the classes that read many files).
    slice_warmup: int = 3
    warmup: int = 10
    canned_samples: int = 2000
    #: Starts of each server (the last one stays up); startup is their median.
    startup_runs: int = 3
    #: Cold builds of each index; the build figures are their median.
    build_runs: int = 3
    clients: int = 20
    workers: int = 2
    load_seconds: float = 10.0
    fresh_files: int = 10
    naive_size: int = 10_000
    naive_runs: int = 5

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        """A run that finishes in under two minutes (stores of 1,000 and 10,000 records)."""
        base = cls(
            sizes=(1_000, 10_000),
            quick_mode=True,
            samples=60,
            heavy_samples=20,
            rounds=4,
            warmup=5,
            canned_samples=500,
            startup_runs=2,
            build_runs=3,
            load_seconds=3.0,
            fresh_files=4,
            naive_runs=3,
        )
        return replace(base, **overrides)


@dataclass(slots=True)
class _Target:
    """A server the one-client rounds send requests to, with its prepared requests."""

    name: str
    server: ServerProcess
    conn: HttpConnection
    #: Class name -> a function giving the request bytes for sample ``serial``.
    requests: dict[str, Callable[[int], bytes]] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    first_ms: dict[str, float] = field(default_factory=dict)


def _fixed(raw: bytes) -> Callable[[int], bytes]:
    return lambda serial: raw


def _fresh(query: str) -> Callable[[int], bytes]:
    return lambda serial: graphql_request(query, {"until": q.fresh_until(serial)})


def run_benchmark(config: BenchConfig, log: Log) -> BenchResult:
    """Run every phase; stop every server started, whatever happens."""
    with contextlib.ExitStack() as stack:
        return _Run(config, log, stack).run()


class _Run:
    def __init__(self, config: BenchConfig, log: Log, stack: contextlib.ExitStack) -> None:
        if not config.sizes:
            raise ValueError("no store sizes to measure")
        self.config = config
        self.log = log
        self.stack = stack
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.work = config.root / "runs" / stamp
        self.work.mkdir(parents=True, exist_ok=True)
        self.sizes = sorted(set(config.sizes))
        self.stores: dict[int, BenchStore] = {}
        self.results: dict[int, SizeResult] = {}
        self.servers: dict[int, ServerProcess] = {}
        self.targets: dict[str, _Target] = {}
        self.detail_ids: dict[int, str] = {}
        self.naive_server: ServerProcess | None = None
        self.started = time.perf_counter()

    # -- orchestration ---------------------------------------------------------------------

    def run(self) -> BenchResult:
        meta = self._meta()
        for size in self.sizes:
            self._store_and_index(size)
        client = self._client_overhead()
        for size in self.sizes:
            self._start_server(size)
        floor_data = self._prepare()
        self._start_floor(floor_data)
        naive = self._start_naive()
        for size in self.sizes:
            self.results[size].file_reads = self._file_reads(size)
        self._rounds(client.canned.p50)
        result = BenchResult(meta=meta, client=client, sizes=self.results)
        result.floor = self._summaries("floor", client.canned.p50)
        for size in self.sizes:
            self.results[size].latency = self._summaries(f"size-{size}", client.canned.p50)
            self.results[size].first_ms = self.targets[f"size-{size}"].first_ms
        if naive is not None:
            result.naive_size, result.naive = naive, self._naive(naive, client.canned.p50)
        for size in self.sizes:
            self.results[size].freshness = self._freshness(size)
            self.results[size].peak_rss_mb = self.servers[size].peak_rss_mb()
        for target in self.targets.values():
            target.conn.close()
            target.server.stop()
        for size in self.sizes:
            self.results[size].load = self._load(size)
        meta["load_average_end"] = os.getloadavg()
        meta["cpu_steal_share"] = cpu_steal_share(meta.pop("cpu_times_start", None), cpu_times())
        meta["seconds"] = round(time.perf_counter() - self.started, 1)
        return result

    def _meta(self) -> dict[str, Any]:
        versions = ", ".join(
            f"{name} {metadata.version(name)}"
            for name in ("strawberry-graphql", "starlette", "uvicorn")
        )
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        return {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.node()}: {os.cpu_count()} CPUs, {mem_gib:.0f} GiB, "
            f"{platform.system()} {platform.release()}",
            "versions": f"Python {platform.python_version()}, {versions}, "
            f"SQLite {sqlite3.sqlite_version}",
            "quick": self.config.quick_mode,
            "sizes": self.sizes,
            "seed": self.config.seed,
            "config": {
                k: str(v) if isinstance(v, Path) else v for k, v in vars_of(self.config).items()
            },
            "load_average_start": os.getloadavg(),
            "cpu_times_start": cpu_times(),
            "cli_start_s": self._cli_start(),
            "work_dir": str(self.work),
        }

    def _cli_start(self) -> float:
        """Seconds ``execgraph --version`` takes: interpreter and CLI imports, the part of
        startup that does not depend on the store."""
        started = time.perf_counter()
        subprocess.run(  # noqa: S603 - our own command
            [*execgraph_command(), "--version"], check=True, capture_output=True
        )
        return time.perf_counter() - started

    # -- stores, indexes, client -------------------------------------------------------------

    def _store_and_index(self, size: int) -> None:
        started = time.perf_counter()
        self.log(f"store of {size:,} records (written once, then cached)")
        store = ensure_store(
            self.config.root,
            size,
            seed=self.config.seed,
            progress=lambda n: self.log(f"  wrote {n:,} / {size:,}") if n % 20_000 == 0 else None,
        )
        self.log(f"  ready in {time.perf_counter() - started:.1f} s: {store.path}")
        warmed = warm_page_cache(store)
        self.log(f"  page cache warmed: every file read once in {warmed:.1f} s")
        builds: list[float] = []
        for _ in range(max(1, self.config.build_runs)):
            seconds, indexed = build_index(store)
            builds.append(seconds)
            self.log(f"  cold index build: {indexed:,} records in {seconds:.2f} s")
        seconds = statistics.median(builds)
        self.stores[size] = store
        self.results[size] = SizeResult(
            records=indexed,
            files=store.files,
            index_build_s=seconds,
            index_records_per_s=indexed / seconds,
            startup_s=float("nan"),
            build_samples=builds,
        )

    def _client_overhead(self) -> ClientOverhead:
        port = free_port()
        canned = ServerProcess(
            "canned", [sys.executable, "-m", "graph.bench.canned", str(port)], port, self.work
        )
        self.stack.callback(canned.stop)
        canned.start()
        raw = graphql_request(q.TYPENAME)
        samples: list[float] = []
        with HttpConnection(port) as conn:
            for _ in range(min(200, self.config.canned_samples)):
                timed(conn, raw, check_ok)
            cpu = time.thread_time()
            with collector_paused():
                for _ in range(self.config.canned_samples):
                    samples.append(timed(conn, raw, check_ok))
            cpu_ms = (time.thread_time() - cpu) * 1000 / self.config.canned_samples
        canned.stop()
        summary = Summary.of(samples)
        self.log(f"client overhead: {summary.p50:.3f} ms p50 round trip, {cpu_ms:.3f} ms CPU")
        return ClientOverhead(canned=summary, cpu_ms=cpu_ms)

    # -- servers -------------------------------------------------------------------------------

    def _start_server(self, size: int) -> None:
        store = self.stores[size]
        samples: list[float] = []
        for attempt in range(max(1, self.config.startup_runs)):
            port = free_port()
            server = ServerProcess(
                f"execgraph-{size}",
                serve_command(store.path, store.index_path, port),
                port,
                self.work,
            )
            self.stack.callback(server.stop)
            samples.append(server.start())
            if attempt < self.config.startup_runs - 1:
                server.stop()
        self.log(
            f"server on {size:,} records: ready in "
            + ", ".join(f"{s:.2f}" for s in samples)
            + f" s (pid {server.pid})"
        )
        self.results[size].startup_samples = samples
        self.results[size].startup_s = statistics.median(samples)
        self.servers[size] = server

    def _prepare(self) -> dict[str, Any]:
        """Per size: the deep cursor and the detail run. Returns the floor's data."""
        floor_data: dict[str, Any] = {}
        for size in self.sizes:
            server = self.servers[size]
            conn = HttpConnection(server.port)
            self.stack.callback(conn.close)
            edges = conn.graphql(q.LAST_CURSOR)["executions"]["edges"]
            deep_cursor = edges[0]["cursor"]
            candidates = conn.graphql(q.DETAIL_CANDIDATES)["executions"]["edges"]
            detail_id = str(
                max(candidates, key=lambda e: e["node"]["itemCount"])["node"]["executionId"]
            )
            self.detail_ids[size] = detail_id
            target = _Target(f"size-{size}", server, conn)
            target.requests = {
                "typename": _fixed(graphql_request(q.TYPENAME)),
                "list": _fixed(graphql_request(q.LIST_PAGE, {"after": None})),
                "deep": _fixed(graphql_request(q.LIST_PAGE, {"after": deep_cursor})),
                "list_count_fresh": _fresh(q.LIST_PAGE_FRESH),
                "list_nocount_fresh": _fresh(q.LIST_PAGE_FRESH_NO_COUNT),
                "detail": _fixed(graphql_request(q.DETAIL, {"id": detail_id})),
                "items50": _fixed(graphql_request(q.ITEMS_50)),
                "search": _fixed(graphql_request(q.SEARCH)),
                "stats": _fixed(graphql_request(q.STATS)),
            }
            self.targets[target.name] = target
            deep = conn.graphql(q.LIST_PAGE, {"after": deep_cursor})["executions"]
            if deep["pageInfo"]["hasNextPage"] or len(deep["edges"]) != min(
                50, deep["totalCount"] - 1
            ):
                raise HttpError("the deep page is not the end of the list")
            floor_data = {
                "list": conn.graphql(q.LIST_PAGE, {"after": None}),
                "detail": conn.graphql(q.DETAIL, {"id": detail_id}),
                "detail_id": detail_id,
            }
        return floor_data

    def _start_floor(self, data: dict[str, Any]) -> None:
        path = self.work / "floor-data.json"
        path.write_bytes(orjson.dumps(data))
        port = free_port()
        server = ServerProcess(
            "floor",
            uvicorn_command("graph.bench.baselines:floor_app", port),
            port,
            self.work,
            env={FLOOR_DATA_ENV: str(path)},
        )
        self.stack.callback(server.stop)
        server.start()
        conn = HttpConnection(port)
        self.stack.callback(conn.close)
        # The floor must give the very same answers, or the comparison means nothing.
        if conn.graphql(q.LIST_PAGE, {"after": None}) != data["list"]:
            raise HttpError("the in-memory floor answers the list page differently")
        if conn.graphql(q.DETAIL, {"id": data["detail_id"]}) != data["detail"]:
            raise HttpError("the in-memory floor answers the detail query differently")
        target = _Target("floor", server, conn)
        target.requests = {
            "typename": _fixed(graphql_request(q.TYPENAME)),
            "list": _fixed(graphql_request(q.LIST_PAGE, {"after": None})),
            "detail": _fixed(graphql_request(q.DETAIL, {"id": data["detail_id"]})),
        }
        self.targets["floor"] = target
        self.log("in-memory Strawberry floor: ready, same answers as the real server")

    def _start_naive(self) -> int | None:
        """The naive baseline on the store closest to its configured size."""
        size = min(self.sizes, key=lambda s: abs(s - self.config.naive_size))
        port = free_port()
        server = ServerProcess(
            "naive",
            uvicorn_command("graph.bench.baselines:naive_app", port),
            port,
            self.work,
            env={NAIVE_STORE_ENV: str(self.stores[size].path)},
        )
        self.stack.callback(server.stop)
        server.start()
        self.naive_server = server
        return size

    # -- measurements --------------------------------------------------------------------------

    def _file_reads(self, size: int) -> dict[str, FileReads]:
        store = self.stores[size]

        def runs_of_page(data: dict[str, Any]) -> int:
            return len(data["executions"]["edges"])

        def runs_of_items(data: dict[str, Any]) -> int:
            return len({e["node"]["execution"]["executionId"] for e in data["items"]["edges"]})

        plan: dict[str, ReadQuery] = {
            "items50": (q.ITEMS_50, None, runs_of_page),
            "detail": (q.DETAIL, {"id": self.detail_ids[size]}, lambda data: 1),
            "search": (q.SEARCH, None, runs_of_items),
            "list": (q.LIST_PAGE, {"after": None}, runs_of_page),
            "stats": (q.STATS, None, lambda data: 0),
        }
        reads = count_file_reads(store.path, store.index_path, plan)
        self.log(
            f"files read in-process at {size:,}: "
            + ", ".join(f"{name} {r.counter} ({r.opens} opened)" for name, r in reads.items())
        )
        return reads

    def _rounds(self, overhead: float) -> None:
        config = self.config
        serial = 0
        self.log(f"one client: {config.rounds} interleaved rounds over {len(self.targets)} servers")
        for target in self.targets.values():
            for name, make in target.requests.items():
                target.first_ms[name] = max(0.0, timed(target.conn, make(serial)) - overhead)
                serial += 1
                for _ in range(config.warmup - 1):
                    timed(target.conn, make(serial))
                    serial += 1
                target.samples[name] = []
        for round_no in range(config.rounds):
            started = time.perf_counter()
            for target in self.targets.values():
                names = list(target.requests)
                turn = round_no % len(names)
                for name in names[turn:] + names[:turn]:
                    make = target.requests[name]
                    total = config.heavy_samples if name in HEAVY_CLASSES else config.samples
                    count = _share(total, config.rounds, round_no)
                    warm = 1 if name in HEAVY_CLASSES else config.slice_warmup
                    raws = [make(serial + n) for n in range(warm + count)]
                    serial += warm + count
                    try:
                        # The first requests after the server sat idle (while the other servers
                        # were measured) pay for waking it: measured, the first takes about
                        # twice a warm one, the second 1.4 x, the third 1.1 x. They would be a
                        # fixed share of every slice's samples and set every p99; they are sent
                        # untimed, as a warm-up.
                        for raw in raws[:warm]:
                            timed(target.conn, raw)
                        with collector_paused():
                            target.samples[name].extend(
                                timed(target.conn, raw) for raw in raws[warm:]
                            )
                    except (OSError, HttpError) as exc:
                        raise ServerError(
                            f"{target.name} failed on {name}: {exc}\n{target.server.tail()}"
                        ) from exc
            self.log(f"  round {round_no + 1}: {time.perf_counter() - started:.1f} s")

    def _summaries(self, target_name: str, overhead: float) -> dict[str, Summary]:
        target = self.targets[target_name]
        return {
            name: Summary.of([max(0.0, s - overhead) for s in samples])
            for name, samples in target.samples.items()
        }

    def _naive(self, size: int, overhead: float) -> Summary:
        server = self.naive_server
        assert server is not None
        raw = get(f"/runs?config={q.LIST_CONFIG}&limit=50")
        samples: list[float] = []
        with HttpConnection(server.port) as conn:
            timed(conn, raw, check_ok)  # warm-up: the page cache, the thread pool
            for _ in range(self.config.naive_runs):
                samples.append(max(0.0, timed(conn, raw, check_ok) - overhead))
        server.stop()
        summary = Summary.of(samples)
        self.log(f"naive baseline at {size:,}: {summary.p50:.0f} ms p50")
        return summary

    def _freshness(self, size: int) -> Freshness:
        store = self.stores[size]
        conn = self.targets[f"size-{size}"].conn
        newest = graphql_request(q.NEWEST)
        samples: list[float] = []
        unseen = 0
        try:
            for record in fresh_records(self.config.fresh_files, seed=self.config.seed):
                eid = str(record["execution_id"])
                write_like_tracker(store.path / f"{eid}.json", record)
                done = time.perf_counter()
                while True:
                    seen = eid in _newest_ids(conn, newest)
                    elapsed = time.perf_counter() - done
                    if seen or elapsed > FRESH_LIMIT_S:
                        unseen += not seen
                        samples.append(min(elapsed, FRESH_LIMIT_S) * 1000)
                        break
                    time.sleep(0.002)
        finally:
            remove_fresh_files(store.path)
        deadline = time.perf_counter() + FRESH_LIMIT_S
        while any(i.startswith(FRESH_PREFIX) for i in _newest_ids(conn, newest)):
            if time.perf_counter() > deadline:
                break
            time.sleep(0.02)
        result = Freshness(samples, unseen)
        self.log(f"freshness at {size:,}: median {result.median:.0f} ms, max {result.max:.0f} ms")
        return result

    def _load(self, size: int) -> LoadResult:
        config = self.config
        store = self.stores[size]
        port = free_port()
        server = ServerProcess(
            f"execgraph-{size}-workers{config.workers}",
            serve_command(store.path, store.index_path, port, workers=config.workers),
            port,
            self.work,
        )
        self.stack.callback(server.stop)
        server.start()
        try:
            with HttpConnection(port) as conn:  # both workers' caches see the same first hit
                for _ in range(config.workers * 4):
                    timed(conn, graphql_request(q.LIST_PAGE, {"after": None}))
            outcome = run_load(
                port,
                [graphql_request(q.LIST_PAGE, {"after": None})],
                clients=config.clients,
                seconds=config.load_seconds,
            )
            peak = server.children_peak_rss_mb()
        finally:
            server.stop()
        result = LoadResult(
            clients=config.clients,
            workers=config.workers,
            seconds=outcome.seconds,
            requests=len(outcome.latencies_ms),
            errors=outcome.errors,
            throughput_rps=len(outcome.latencies_ms) / outcome.seconds,
            latency=Summary.of(outcome.latencies_ms) if outcome.latencies_ms else None,
            client_cpu_share=outcome.client_cpu_s / outcome.seconds,
            peak_rss_mb=peak,
        )
        self.log(
            f"load at {size:,}: {result.throughput_rps:,.0f} req/s, {result.errors} errors, "
            f"p99 {result.latency.p99 if result.latency else float('nan'):.1f} ms"
        )
        return result


def _share(total: int, parts: int, index: int) -> int:
    """Part ``index`` of ``total`` split into ``parts`` nearly equal whole parts."""
    return total // parts + (index < total % parts)


def _newest_ids(conn: HttpConnection, raw: bytes) -> Iterator[str]:
    conn.ready()
    status, body = conn.request(raw)
    check_ok(status, body)
    for edge in orjson.loads(body)["data"]["executions"]["edges"]:
        yield str(edge["node"]["executionId"])


def vars_of(config: BenchConfig) -> dict[str, Any]:
    """The config's fields, for the report's metadata."""
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def cpu_times() -> list[int] | None:
    """The machine's CPU time counters (``/proc/stat``: user ... steal), where Linux has them."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    return [int(value) for value in fields[1:9]]


def cpu_steal_share(start: list[int] | None, end: list[int] | None) -> float | None:
    """The share of CPU time the hypervisor gave to other machines between two readings.

    On a virtual machine, time "stolen" by the host is time the benchmark waited without
    running: it shows in every figure, p99 first.
    """
    if start is None or end is None:
        return None
    spent = [b - a for a, b in zip(start, end, strict=True)]
    total = sum(spent)
    return spent[7] / total if total > 0 else None

"""A bounded load against a real execgraph server on 127.0.0.1, with the UI's typical queries.

Run it by hand::

    python -m tests.hardening.load --records 10000 --clients 20 --seconds 60

It generates a demo store with ``storage.demo`` (cached under the system temp folder, keyed by
the generator's source, so a changed generator makes a new one), starts ``execgraph serve`` on
it in a subprocess (the production entry point, its own process so that the clients do not
share its interpreter lock and its memory is its own), and lets ``--clients`` concurrent clients
send, for ``--seconds``, what the web UI and researchers send:

* ``list``: a list page (25 to 250 runs, with filters: configs, safety levels, a date range)
  with ``totalCount`` and ``pageInfo``;
* ``list-next``: the next page of such a list, by cursor;
* ``detail``: one run with all its items;
* ``sidebar``: ``storageStats`` counts for the filter sidebar, under a filter;
* ``items``: items across runs (Stille Post iterations of blocked runs, outputs of a config).

Any non-200 answer, GraphQL error or transport failure is an error. The report gives p50/p99
latency per class, requests per second, and the server's resident memory (``/proc/<pid>/status``
VmRSS) after warm-up and after the load, with its peak (VmHWM). It never fails on timings: the
figures are for people; only errors make the exit status non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx2

REPO: Final = Path(__file__).resolve().parents[2]
CLASSES: Final = ("list", "list-next", "detail", "sidebar", "items")
#: Relative frequency of each class (a UI session lists, opens runs, and filters most).
WEIGHTS: Final = {"list": 30, "list-next": 15, "detail": 30, "sidebar": 15, "items": 10}
REQUEST_TIMEOUT_S: Final = 30.0
RSS_EVERY_S: Final = 10.0
START_TIMEOUT_S: Final = 180.0

LIST: Final = """query List($filter: ExecutionFilter, $first: Int, $after: String) {
  executions(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { executionId configName timestamp userId safetyLevel itemCount
                   totalExecutionTime } }
  }
}"""
DETAIL: Final = """query Detail($id: String!) {
  execution(executionId: $id) {
    executionId configName timestamp userId sessionId safetyLevel executionMode usedSeed
    totalExecutionTime
    items { sequenceNumber timestamp stage stageIteration loopIteration itemType rawItemType
            mediaType content filePath configUsed modelUsed backendType executionTime metadata }
  }
}"""
SIDEBAR: Final = """query Sidebar($filter: ExecutionFilter) {
  storageStats(filter: $filter) {
    totalRecords
    byConfig { value count }
    bySafetyLevel { value count }
    byDay { value count }
  }
}"""
ITEMS: Final = """query Items($filter: ItemFilter, $executionFilter: ExecutionFilter, $first: Int) {
  items(filter: $filter, executionFilter: $executionFilter, first: $first) {
    totalCount
    edges { node { stageIteration content modelUsed execution { executionId safetyLevel } } }
  }
}"""


# --- the store ----------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where generated stores are kept between runs (the system temp folder)."""
    return Path(tempfile.gettempdir()) / "execgraph-hardening-cache"


def _generator_digest() -> str:
    """A digest of the code that decides what a demo store holds."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "storage" / "demo").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def cached_store(records: int, *, seed: int = 0, cache_dir: Path | None = None) -> Path:
    """A demo store of ``records`` records (plus one malformed file of each kind), generated
    once and reused while the generator's code is unchanged. Generation writes a temporary
    folder and renames it into place, so a killed run never leaves half a store to reuse."""
    from storage.demo import write_demo_store

    cache = cache_dir or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    stem = f"demo-{records}-seed{seed}-"
    final = cache / f"{stem}{_generator_digest()}"
    if final.is_dir():
        return final
    for stale in cache.glob(f"{stem}*"):  # stores of an older generator, or half-written ones
        shutil.rmtree(stale, ignore_errors=True)
    for stale in cache.glob(f".{stem}*"):
        shutil.rmtree(stale, ignore_errors=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{stem}", dir=cache))
    write_demo_store(temporary / "store", records, seed=seed)
    try:
        temporary.rename(final)
    except OSError:  # another run finished first: use its store
        shutil.rmtree(temporary, ignore_errors=True)
    return final


def store_of(cached: Path) -> Path:
    return cached / "store"


# --- the server ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB, from /proc/<pid>/status."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0])
    return figures


@dataclass
class ServerProcess:
    """``execgraph serve`` running in a subprocess on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    started_in_s: float


@contextlib.contextmanager
def server(store: Path, work_dir: Path) -> Iterator[ServerProcess]:
    """Start ``execgraph serve`` (index built fresh in ``work_dir``), wait until it answers
    /healthz, and stop it (SIGINT, then SIGKILL after 20 s) at the end."""
    port = _free_port()
    log = work_dir / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECGRAPH_")}
    env |= {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "EXECGRAPH_EXPORT_DIR": str(work_dir / "exports"),
        "EXECGRAPH_AUDIT_LOG": str(work_dir / "audit.jsonl"),
        "EXECGRAPH_PSEUDONYM_KEY": "load-test-pseudonym-key",
        "EXECGRAPH_LOG_LEVEL": "warning",
    }
    command = [
        sys.executable,
        "-c",
        "from graph.cli.main import main; main()",
        "serve",
        "--store",
        str(store),
        "--index",
        str(work_dir / "index" / "index.sqlite3"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    started = time.monotonic()
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx2.Client(base_url=url, timeout=5) as probe:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited ({process.returncode}): {_tail(log)}")
                if time.monotonic() - started > START_TIMEOUT_S:
                    raise RuntimeError(f"the server did not start: {_tail(log)}")
                with contextlib.suppress(httpx2.TransportError):
                    if probe.get("/healthz").status_code == 200:
                        break
                time.sleep(0.2)
        yield ServerProcess(process, url, log, time.monotonic() - started)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _tail(log: Path) -> str:
    return log.read_text("utf-8", errors="replace")[-3000:]


# --- the clients --------------------------------------------------------------------------------


@dataclass
class Vocabulary:
    """Values the clients pick from: what the store holds."""

    ids: list[str]
    configs: list[str]
    levels: list[str]
    days: list[str]


@dataclass
class Samples:
    """Latencies (seconds) and errors per query class."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CLASSES})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    examples: list[str] = field(default_factory=list)

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{kind}: {what[:600]}")


def vocabulary(url: str) -> Vocabulary:
    """Every execution id (paging through the list, which also warms the server up) and the
    configs, safety levels and days the sidebar offers."""
    ids: list[str] = []
    with httpx2.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as http:
        after = None
        for _ in range(1000):
            body = _post_sync(http, LIST, {"first": 500, "after": after})
            connection = body["data"]["executions"]
            ids += [edge["node"]["executionId"] for edge in connection["edges"]]
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        stats = _post_sync(http, SIDEBAR, {})["data"]["storageStats"]
        vocab = Vocabulary(
            ids,
            [e["value"] for e in stats["byConfig"]],
            [e["value"] for e in stats["bySafetyLevel"]],
            sorted(e["value"] for e in stats["byDay"]),
        )
        # One request of each class, so that lazy set-ups happen before memory is measured.
        rng = random.Random(0)
        for kind in CLASSES:
            query, variables = _request(kind, rng, vocab, None)
            _post_sync(http, query, variables)
    return vocab


def _post_sync(http: httpx2.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"warm-up request failed: {response.status_code} {response.text[:500]}")
    return body


def _a_filter(rng: random.Random, vocab: Vocabulary) -> dict[str, Any]:
    """A filter as the UI's sidebar builds them: none, one or two criteria."""
    choice = rng.randrange(6)
    if choice == 0:
        return {}
    if choice == 1:
        return {"configNames": [rng.choice(vocab.configs)]}
    if choice == 2:
        return {"safetyLevels": rng.sample(vocab.levels, k=min(2, len(vocab.levels)))}
    start = rng.randrange(len(vocab.days))
    end = min(len(vocab.days) - 1, start + rng.choice([1, 7, 30]))
    dates: dict[str, Any] = {"since": f"{vocab.days[start]}T00:00:00"}
    if end > start:
        dates["until"] = f"{vocab.days[end]}T00:00:00"
    if choice == 3:
        return dates
    if choice == 4:
        return {**dates, "configNames": [rng.choice(vocab.configs)]}
    return {**dates, "safetyLevels": [rng.choice(vocab.levels)]}


def _request(
    kind: str, rng: random.Random, vocab: Vocabulary, cursor: tuple[dict[str, Any], str] | None
) -> tuple[str, dict[str, Any]]:
    """The query and variables of one request of class ``kind``."""
    if kind == "list" or (kind == "list-next" and cursor is None):
        return LIST, {"filter": _a_filter(rng, vocab), "first": rng.choice([25, 50, 100, 250])}
    if kind == "list-next":
        assert cursor is not None
        flt, after = cursor
        return LIST, {"filter": flt, "first": 50, "after": after}
    if kind == "detail":
        return DETAIL, {"id": rng.choice(vocab.ids)}
    if kind == "sidebar":
        return SIDEBAR, {"filter": _a_filter(rng, vocab)}
    if rng.random() < 0.5:
        variables = {
            "filter": {"itemTypes": ["INTERCEPTION_ITERATION"]},
            "executionFilter": {"hasItemTypes": ["STAGE3_BLOCKED"]},
        }
    else:
        variables = {
            "filter": {"itemTypes": ["OUTPUT_IMAGE", "STAGE3_BLOCKED"]},
            "executionFilter": {"configNames": [rng.choice(vocab.configs)]},
        }
    return ITEMS, {**variables, "first": rng.choice([50, 200])}


async def _client(
    number: int, http: httpx2.AsyncClient, vocab: Vocabulary, deadline: float, samples: Samples
) -> None:
    rng = random.Random(number)
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    cursor: tuple[dict[str, Any], str] | None = None
    while time.monotonic() < deadline:
        kind = rng.choices(kinds, weights)[0]
        query, variables = _request(kind, rng, vocab, cursor)
        started = time.perf_counter()
        try:
            response = await http.post("/graphql", json={"query": query, "variables": variables})
            body = response.json()
        except (httpx2.HTTPError, ValueError) as exc:
            samples.error(kind, f"{type(exc).__name__}: {exc}")
            continue
        samples.latencies[kind].append(time.perf_counter() - started)
        if response.status_code != 200 or not isinstance(body, dict) or body.get("errors"):
            samples.error(kind, f"HTTP {response.status_code} {variables} {response.text}")
            continue
        if query is LIST:
            info = body["data"]["executions"]["pageInfo"]
            cursor = (variables["filter"], info["endCursor"]) if info["hasNextPage"] else None


async def _drive(
    url: str, clients: int, seconds: float, vocab: Vocabulary, pid: int
) -> tuple[Samples, list[int]]:
    """Run the clients until the deadline; the samples, and the server's RSS every
    RSS_EVERY_S seconds (to tell a plateau from steady growth)."""
    samples = Samples()
    timeline: list[int] = []
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    deadline = time.monotonic() + seconds

    async def watch_memory() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(min(RSS_EVERY_S, max(0.0, deadline - time.monotonic())))
            timeline.append(rss_kib(pid)["VmRSS"])

    async with httpx2.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) as http:
        await asyncio.gather(
            watch_memory(), *(_client(n, http, vocab, deadline, samples) for n in range(clients))
        )
    return samples, timeline


# --- the report ---------------------------------------------------------------------------------


@dataclass
class ClassFigures:
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class LoadReport:
    """What one load run measured."""

    records: int
    clients: int
    seconds: float
    store_ready_s: float
    server_start_s: float
    classes: dict[str, ClassFigures]
    requests: int
    errors: int
    requests_per_s: float
    rss_before_kib: int
    rss_after_kib: int
    rss_peak_kib: int
    rss_timeline_kib: list[int]
    error_examples: list[str]

    @property
    def rss_growth_kib(self) -> int:
        return self.rss_after_kib - self.rss_before_kib

    def format(self) -> str:
        lines = [
            f"load: {self.records} records, {self.clients} clients, {self.seconds:.0f} s (store "
            f"ready in {self.store_ready_s:.1f} s, server up in {self.server_start_s:.1f} s)",
            f"{'class':<10} {'requests':>9} {'errors':>7} "
            f"{'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}",
        ]
        for name, figures in self.classes.items():
            lines.append(
                f"{name:<10} {figures.requests:>9} {figures.errors:>7} "
                f"{figures.p50_ms:>9.1f} {figures.p99_ms:>9.1f} {figures.max_ms:>9.1f}"
            )
        lines += [
            f"total: {self.requests} requests, {self.errors} errors, "
            f"{self.requests_per_s:.1f} requests/s",
            f"server RSS: {self.rss_before_kib / 1024:.1f} MiB after warm-up, "
            f"{self.rss_after_kib / 1024:.1f} MiB after the load "
            f"({self.rss_growth_kib / 1024:+.1f} MiB), peak {self.rss_peak_kib / 1024:.1f} MiB",
            f"server RSS every {RSS_EVERY_S:.0f} s (MiB): "
            + " ".join(f"{kib / 1024:.0f}" for kib in self.rss_timeline_kib),
        ]
        lines += [f"error: {example}" for example in self.error_examples]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "rss_growth_kib": self.rss_growth_kib}, indent=2)


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(fraction * 1000) - 1]


def run_load(
    *,
    records: int,
    clients: int,
    seconds: float,
    work_dir: Path,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> LoadReport:
    """Generate (or reuse) the store, start the server, drive the clients, stop; the figures."""
    started = time.monotonic()
    store = store_of(cached_store(records, seed=seed, cache_dir=cache_dir))
    store_ready = time.monotonic() - started
    work_dir.mkdir(parents=True, exist_ok=True)
    with server(store, work_dir) as running:
        vocab = vocabulary(running.url)
        before = rss_kib(running.process.pid)
        began = time.monotonic()
        samples, timeline = asyncio.run(
            _drive(running.url, clients, seconds, vocab, running.process.pid)
        )
        elapsed = time.monotonic() - began
        after = rss_kib(running.process.pid)
    classes = {
        name: ClassFigures(
            requests=len(samples.latencies[name]) + samples.errors[name],
            errors=samples.errors[name],
            p50_ms=1000 * _percentile(samples.latencies[name], 0.50),
            p99_ms=1000 * _percentile(samples.latencies[name], 0.99),
            max_ms=1000 * max(samples.latencies[name], default=0.0),
        )
        for name in CLASSES
    }
    total = sum(figures.requests for figures in classes.values())
    return LoadReport(
        records=records,
        clients=clients,
        seconds=seconds,
        store_ready_s=store_ready,
        server_start_s=running.started_in_s,
        classes=classes,
        requests=total,
        errors=sum(samples.errors.values()),
        requests_per_s=total / elapsed,
        rss_before_kib=before["VmRSS"],
        rss_after_kib=after["VmRSS"],
        rss_peak_kib=after["VmHWM"],
        rss_timeline_kib=timeline,
        error_examples=samples.examples,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hardening.load", description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None, help="where stores are kept")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 200 and 0 < args.seconds <= 3600 and args.records >= 1):
        parser.error("--clients 1..200, --seconds up to 3600, --records at least 1")
    with tempfile.TemporaryDirectory(prefix="execgraph-load-") as work:
        report = run_load(
            records=args.records,
            clients=args.clients,
            seconds=args.seconds,
            work_dir=Path(work),
            seed=args.seed,
            cache_dir=args.cache_dir,
        )
    print(report.format())
    if args.json is not None:
        args.json.write_text(report.to_json(), "utf-8")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())

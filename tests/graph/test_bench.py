"""The benchmark's machinery on tiny stores: report structure and pass/miss logic, no timings."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from graph.bench import queries as q
from graph.bench.baselines import floor_root, floor_schema, naive_list
from graph.bench.inprocess import asgi_post, count_file_reads
from graph.bench.report import evaluate, render
from graph.bench.results import (
    BenchResult,
    ClientOverhead,
    FileReads,
    Freshness,
    LoadResult,
    SizeResult,
    Summary,
)
from graph.bench.runner import BenchConfig, run_benchmark
from graph.cli.main import main
from graph.server.app import create_app
from graph.settings import Settings
from storage.demo import write_demo_store


def flat(ms: float, n: int = 100) -> Summary:
    """A summary whose p50 and p99 are both ``ms``."""
    return Summary.of([ms] * n)


def sized(list_ms: float, *, rss: float, **latency: Summary) -> SizeResult:
    result = SizeResult(
        records=1000,
        files=1016,
        index_build_s=0.05,
        index_records_per_s=20_000,
        startup_s=0.9,
        latency={"typename": flat(0.5), "list": flat(list_ms), "deep": flat(list_ms)},
        file_reads={"items50": FileReads(counter=50, opens=50, runs=50)},
        peak_rss_mb=rss,
        freshness=Freshness([40.0, 60.0, 80.0]),
        load=LoadResult(20, 2, 3.0, 900, 0, 300.0, flat(40.0), 0.05),
    )
    result.latency.update(latency)
    return result


def passing_result() -> BenchResult:
    fresh = {"list_count_fresh": flat(5.2), "list_nocount_fresh": flat(5.0)}
    return BenchResult(
        meta={"date": "2026-01-01T00:00:00+00:00", "machine": "test", "quick": True},
        client=ClientOverhead(canned=flat(0.02), cpu_ms=0.01),
        sizes={1_000: sized(4.0, rss=80), 100_000: sized(4.4, rss=100, **fresh)},
        floor={"typename": flat(0.45), "list": flat(4.0), "detail": flat(2.0)},
        naive_size=100_000,
        naive=flat(900.0),
    )


def statuses(result: BenchResult) -> dict[str, str]:
    return {target.key: target.status for target in evaluate(result)}


def test_summary_takes_the_median_and_the_nearest_rank_p99() -> None:
    summary = Summary.of([float(n) for n in range(1, 101)])
    assert (summary.n, summary.p50, summary.p99, summary.min, summary.max) == (
        100,
        50.5,
        99.0,
        1.0,
        100.0,
    )
    assert Summary.of([3.0]).p99 == 3.0
    with pytest.raises(ValueError, match="no samples"):
        Summary.of([])


def test_targets_pass_within_their_limits_and_na_when_not_measured() -> None:
    result = passing_result()
    got = statuses(result)
    # The detail view was not measured on the large store: n/a, never a pass.
    assert got.pop("detail_vs_floor") == "n/a"
    assert set(got.values()) == {"pass"}, got


@pytest.mark.parametrize(
    ("key", "change"),
    [
        ("size_independence", lambda r: r.sizes[100_000].latency.update(list=flat(5.1))),
        ("deep_page", lambda r: r.sizes[100_000].latency.update(deep=flat(5.4))),
        ("list_vs_floor", lambda r: r.floor.update(list=flat(3.0))),
        ("typename_vs_bare", lambda r: r.floor.update(typename=flat(0.3))),
        ("naive_speedup", lambda r: setattr(r, "naive", flat(400.0))),
        ("tail", lambda r: r.sizes[1_000].latency.update(list=Summary.of([4.0] * 98 + [13] * 2))),
        ("cold_build", lambda r: setattr(r.sizes[100_000], "index_records_per_s", 9_999)),
        ("startup", lambda r: setattr(r.sizes[100_000], "startup_s", 2.5)),
        (
            "rss",
            lambda r: r.sizes.update(
                {1_000: sized(4.0, rss=120), 100_000: replace(r.sizes[100_000], peak_rss_mb=151)}
            ),
        ),
        ("rss_growth", lambda r: setattr(r.sizes[1_000], "peak_rss_mb", 40)),
        ("freshness_max", lambda r: setattr(r.sizes[1_000], "freshness", Freshness([1200.0]))),
        (
            "total_count",
            lambda r: r.sizes[100_000].latency.update(list_count_fresh=flat(6.6)),
        ),
        (
            "files_once",
            lambda r: setattr(r.sizes[1_000], "file_reads", {"items50": FileReads(50, 51, 50)}),
        ),
        (
            "load_errors",
            lambda r: setattr(
                r.sizes[1_000], "load", LoadResult(20, 2, 3.0, 900, 1, 300.0, flat(40.0), 0.05)
            ),
        ),
    ],
)
def test_each_target_misses_past_its_limit(key: str, change: Any) -> None:
    result = passing_result()
    change(result)
    got = statuses(result)
    assert got[key] == "miss"
    got.pop("detail_vs_floor")
    assert [k for k, status in got.items() if status != "pass"] == [key]


def test_one_store_size_leaves_the_size_ratios_not_applicable() -> None:
    result = passing_result()
    del result.sizes[1_000]
    got = statuses(result)
    assert got["size_independence"] == got["rss_growth"] == "n/a"


def test_tiny_store_answers_agree_across_app_floor_and_naive_baseline(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_demo_store(store, 120, malformed=False)
    index = tmp_path / "index.sqlite3"
    app = create_app(Settings(store=store, index=index, watch=False))

    async def ask(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        async with app.router.lifespan_context(app):
            payload = orjson.dumps({"query": query, "variables": variables})
            status, body = await asgi_post(app, "/graphql", payload)
        assert status == 200
        document: dict[str, Any] = orjson.loads(body)
        assert "errors" not in document
        return document

    listed = asyncio.run(ask(q.LIST_PAGE, {"after": None}))["data"]
    run_id = listed["executions"]["edges"][0]["node"]["executionId"]
    detail = asyncio.run(ask(q.DETAIL, {"id": run_id}))["data"]
    root = floor_root(listed, detail)
    schema = floor_schema()
    assert schema.execute_sync(q.LIST_PAGE, {"after": None}, root_value=root).data == listed
    assert schema.execute_sync(q.DETAIL, {"id": run_id}, root_value=root).data == detail

    naive = naive_list(store, config_names={q.LIST_CONFIG})
    assert naive["total"] == listed["executions"]["totalCount"]
    assert [r["execution_id"] for r in naive["runs"]] == [
        e["node"]["executionId"] for e in listed["executions"]["edges"]
    ]

    reads = count_file_reads(
        store, index, {"items50": (q.ITEMS_50, None, lambda d: len(d["executions"]["edges"]))}
    )
    assert reads["items50"] == FileReads(counter=50, opens=50, runs=50)


@pytest.mark.slow
def test_the_whole_benchmark_runs_on_tiny_stores_and_reports_every_target(
    tmp_path: Path,
) -> None:
    config = replace(
        BenchConfig.quick(),
        sizes=(30, 60),
        root=tmp_path / "bench",
        samples=3,
        heavy_samples=2,
        rounds=1,
        warmup=1,
        canned_samples=20,
        clients=3,
        workers=1,
        load_seconds=0.3,
        fresh_files=1,
        naive_size=60,
        naive_runs=1,
    )
    lines: list[str] = []
    result = run_benchmark(config, lines.append)

    assert sorted(result.sizes) == [30, 60]
    for size in (30, 60):
        sized_result = result.sizes[size]
        assert set(sized_result.latency) == set(q.ONE_CLIENT_CLASSES)
        assert sized_result.peak_rss_mb is not None
        assert sized_result.freshness is not None
        assert sized_result.freshness.unseen == 0
        assert sized_result.load is not None
        assert sized_result.load.errors == 0
        assert sized_result.file_reads["list"].counter == 0
    assert set(result.floor) == set(q.FLOOR_CLASSES)
    assert result.naive_size == 60
    assert result.naive is not None

    targets = evaluate(result)
    assert {t.status for t in targets} <= {"pass", "miss", "n/a"}
    by_key = {t.key: t for t in targets}
    assert by_key["files_once"].status == "pass"
    assert by_key["load_errors"].status == "pass"
    assert json.loads(json.dumps(result.to_json()))["sizes"]["60"]["records"] == 60
    table = render(result, targets)
    assert "targets" in table
    assert "CPU time stolen by the hypervisor: " in table
    assert "cpu_times_start" not in result.meta
    assert all(t.title in table for t in targets)
    # The freshness files are gone from the cached store again.
    store = config.root / "stores" / "demo-60-seed0"
    assert not [p for p in store.iterdir() if p.name.startswith("exec_20260301_")]


def test_bench_command_is_registered_and_checks_its_sizes() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["bench", "--help"]).exit_code == 0
    bad = runner.invoke(main, ["bench", "--sizes", "ten"])
    assert bad.exit_code == 2
    assert "comma-separated" in bad.output


def test_export_figures_cover_every_measured_format() -> None:
    from graph.bench.exports import measure_exports, render_exports

    figures = measure_exports(records=40, report_runs=2)
    assert figures.jsonl_records_per_s > 0
    assert figures.csv_records_per_s > 0
    assert figures.pdf_s > 0
    assert figures.docx_s > 0
    assert 0 < figures.jsonl_peak_mb < 50
    text = render_exports(figures)
    for needle in (
        "JSONL over 40",
        "CSV over 40",
        "PDF of 2 runs",
        "DOCX of 2 runs",
        "peak memory",
    ):
        assert needle in text


def test_cpu_steal_share_is_the_stolen_part_of_the_time_spent() -> None:
    from graph.bench.runner import cpu_steal_share, cpu_times

    start = [100, 0, 50, 800, 0, 0, 0, 10]
    end = [160, 0, 70, 900, 0, 0, 0, 30]  # 200 jiffies spent, 20 of them stolen
    assert cpu_steal_share(start, end) == pytest.approx(0.1)
    assert cpu_steal_share(start, start) is None
    assert cpu_steal_share(None, end) is None
    now = cpu_times()
    if now is not None:  # Linux
        assert len(now) == 8
        assert all(value >= 0 for value in now)

"""``execgraph bench``: measure the server on generated stores and check its targets.

Prints a table of medians and p99 per query class and store size, the baselines measured in the
same run, and pass or miss for every target; writes the same figures as JSON. Stores are written
once into the user cache and reused, so a second run starts measuring at once.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import replace
from pathlib import Path

import click


def _sizes(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        sizes = tuple(int(part.replace("_", "")) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("a comma-separated list of record counts") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("give at least one positive record count")
    return sizes


@click.command("bench")
@click.option("--quick", is_flag=True, help="A short run (under two minutes): 1,000 and 10,000.")
@click.option(
    "--sizes",
    callback=_sizes,
    help="Store sizes, comma-separated (default 1000,10000,100000; quick: 1000,10000).",
)
@click.option("--seed", default=0, type=int, show_default=True, help="Generator seed.")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where stores, indexes and run logs are kept (default: the user cache).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON results file (default: bench-<date>.json in the cache's results folder).",
)
@click.option("--samples", type=click.IntRange(5), help="Samples per one-client query class.")
@click.option("--clients", default=20, type=click.IntRange(1, 200), show_default=True)
@click.option("--workers", default=2, type=click.IntRange(1, 16), show_default=True)
@click.option("--load-seconds", type=click.FloatRange(0.5, 120), help="Length of the load test.")
@click.option("--fail-on-miss", is_flag=True, help="Exit with status 1 if a target is missed.")
def bench_command(
    quick: bool,
    sizes: tuple[int, ...] | None,
    seed: int,
    cache_dir: Path | None,
    output: Path | None,
    samples: int | None,
    clients: int,
    workers: int,
    load_seconds: float | None,
    fail_on_miss: bool,
) -> None:
    """Benchmark the server on stores of 1,000 to 100,000 generated records."""
    # Imported here: the benchmark pulls in Strawberry and the app, which other commands
    # (and the server's own start) should not pay for.
    from graph.bench.exports import measure_exports, render_exports
    from graph.bench.report import evaluate, render
    from graph.bench.runner import BenchConfig, run_benchmark

    config = BenchConfig.quick() if quick else BenchConfig()
    config = replace(config, seed=seed, clients=clients, workers=workers)
    if sizes is not None:
        config = replace(config, sizes=sizes)
    if cache_dir is not None:
        config = replace(config, root=cache_dir)
    if samples is not None:
        config = replace(config, samples=samples, heavy_samples=max(5, samples // 3))
    if load_seconds is not None:
        config = replace(config, load_seconds=load_seconds)

    def log(message: str) -> None:
        click.echo(f"[bench] {message}", err=True)

    result = run_benchmark(config, log)
    log("measuring exports")
    figures = measure_exports(
        records=2_000 if quick else 10_000, report_runs=20 if quick else 100, seed=seed
    )
    targets = evaluate(result)
    document = result.to_json()
    document["exports"] = dataclasses.asdict(figures)
    document["targets"] = [
        {
            "key": t.key,
            "title": t.title,
            "value": t.value,
            "op": t.op,
            "limit": t.limit,
            "unit": t.unit,
            "status": t.status,
            "note": t.note,
        }
        for t in targets
    ]
    if output is None:
        stamp = str(result.meta["date"]).replace(":", "").replace("-", "")
        output = config.root / "results" / f"bench-{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    click.echo(render(result, targets))
    click.echo("\n" + render_exports(figures))
    click.echo(f"\nresults: {output}", err=True)
    if fail_on_miss and any(t.status == "miss" for t in targets):
        sys.exit(1)

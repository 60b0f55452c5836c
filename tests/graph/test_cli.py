"""The command line: schema, index, export, serve's refusals, tokens, the demo store."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from graph.api.schema import print_sdl
from graph.cli.main import DEMO_MARKER, check_port, ensure_demo_store, main
from storage.demo import SHOWCASE_ID


def test_schema_command_prints_the_published_schema() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert result.output == print_sdl()


def test_index_command_builds_the_index(
    populated_store: tuple[Path, list[Any]], index_path: Path
) -> None:
    result = CliRunner().invoke(
        main, ["index", "--store", str(populated_store[0]), "--index", str(index_path)]
    )
    assert result.exit_code == 0, result.output
    assert "60 added" in result.output
    assert "60 runs served, 2 files not servable" in result.output
    assert index_path.exists()


def test_export_command_writes_a_whole_file(
    populated_store: tuple[Path, list[dict[str, Any]]], index_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "runs.json"
    args = ["export", "--store", str(populated_store[0]), "--index", str(index_path)]
    result = CliRunner().invoke(
        main, [*args, "--format", "json", "-o", str(out), "--config", "dada"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text("utf-8"))
    assert {r["config_name"] for r in doc["records"]} == {"dada"}
    assert len(doc["records"]) == sum(r["config_name"] == "dada" for r in populated_store[1])
    assert [p.name for p in out.parent.iterdir()] == ["runs.json"]


def test_export_command_refuses_unknown_ids_and_leaves_nothing(
    populated_store: tuple[Path, list[Any]], index_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "runs.csv"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--store",
            str(populated_store[0]),
            "--index",
            str(index_path),
            "--format",
            "csv",
            "-o",
            str(out),
            "--id",
            "exec_nope",
        ],
    )
    assert result.exit_code != 0
    assert "unknown execution ids: exec_nope" in result.output
    assert not out.exists()


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["index", "--store", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert "store directory not found" in result.output


def execgraph_command() -> list[str]:
    """The ``execgraph`` executable of the environment running the tests."""
    script = Path(sys.executable).with_name("execgraph")
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from graph.cli.main import main; main()"]
    )


def test_serve_on_a_busy_port_names_it_and_says_to_use_port_before_any_banner(
    populated_store: tuple[Path, list[Any]], index_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                *execgraph_command(),
                "serve",
                "--store",
                str(populated_store[0]),
                "--index",
                str(index_path),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "pass --port N" in result.stderr
    assert "GraphiQL" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert not index_path.exists()  # refused before the index was built


def test_serve_refuses_a_port_out_of_range_with_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["serve", "--demo", "--port", "70000"])
    assert result.exit_code == 2
    assert "70000 is not in the range 0<=x<=65535" in result.output


def test_check_port_passes_a_free_port_and_refuses_a_busy_one() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(click.ClickException, match=f"port {port} on 127.0.0.1 is already"):
            check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # closed now: free again


def test_token_create_shows_and_requires_the_tokens_file(tmp_path: Path) -> None:
    help_text = CliRunner().invoke(main, ["token", "create", "--help"]).output
    option_help = help_text.split("--tokens-file FILE", 1)[1].split("--label", 1)[0]
    assert "[required]" in option_help
    result = CliRunner(env={"EXECGRAPH_TOKENS_FILE": None}).invoke(
        main, ["token", "create", "--role", "reader"]
    )
    assert result.exit_code == 2
    assert "Missing option '--tokens-file'" in result.output
    tokens = tmp_path / "tokens"
    created = CliRunner().invoke(
        main, ["token", "create", "--role", "reader", "--tokens-file", str(tokens)]
    )
    assert created.exit_code == 0, created.output
    assert "reader:" in tokens.read_text("utf-8")


def test_the_demo_store_holds_the_showcase_run_and_is_rewritten_when_older(
    tmp_path: Path,
) -> None:
    store = tmp_path / "demo"
    ensure_demo_store(store, count=5)
    assert (store / f"{SHOWCASE_ID}.json").is_file()
    assert (store / ".execgraph-demo").read_text("utf-8") == DEMO_MARKER
    (store / f"{SHOWCASE_ID}.json").unlink()
    ensure_demo_store(store, count=5)  # current marker: left alone
    assert not (store / f"{SHOWCASE_ID}.json").exists()
    (store / ".execgraph-demo").write_text("demo store written by execgraph serve --demo\n")
    ensure_demo_store(store, count=5)  # a demo of an older version: written again
    assert (store / f"{SHOWCASE_ID}.json").is_file()

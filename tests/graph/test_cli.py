"""The command line: schema, index, export (the README's commands)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from graph.cli import main
from graph.schema import print_sdl


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

"""The README says what works: its examples run, and its command lines are the CLI's.

Every ```` ```graphql ```` block (read by :mod:`tests.smoke.readme`, shared with the smoke test of
an installed copy) runs against the store ``execgraph serve --demo`` writes, through the ASGI
app, and must answer with data, no errors and no empty list. Subscriptions are validated here
and run over a real WebSocket by ``tests/smoke/test_installed.py``. Every ``execgraph ...`` code
span names commands and options the CLI has, shows required options as required, and the
"Command line" table lists every command.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click
import pytest
from click.testing import CliRunner
from graphql import parse, validate
from starlette.testclient import TestClient

from graph.api.schema import build_schema
from graph.cli.main import ensure_demo_store, main
from graph.server.app import create_app
from graph.settings import Settings
from tests.smoke.readme import README, Example, answer_problems, examples

EXAMPLES = examples()


@pytest.fixture(scope="module")
def demo_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app on the demo store of ``serve --demo``, exports kept in the test's folder."""
    base = tmp_path_factory.mktemp("readme")
    ensure_demo_store(base / "demo-store")
    settings = Settings(
        store=base / "demo-store",
        index=base / "index.sqlite3",
        watch=False,
        export_dir=base / "exports",
        audit_log=base / "audit.jsonl",
        pseudonym_key="readme-test-key-0123456789",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_readme_has_its_examples_in_graphql_blocks() -> None:
    text = README.read_text("utf-8")
    assert len(EXAMPLES) == text.count("```graphql") >= 8
    kinds = {example.kind for example in EXAMPLES}
    assert kinds == {"query", "mutation", "subscription"}
    assert any('text: "wolken haus"' in example.document for example in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line{e.line}" for e in EXAMPLES])
def test_every_example_is_valid_against_the_schema(example: Example) -> None:
    assert validate(build_schema()._schema, parse(example.document)) == []


QUERIES = [example for example in EXAMPLES if example.kind != "subscription"]


@pytest.mark.parametrize("example", QUERIES, ids=[f"line{e.line}" for e in QUERIES])
def test_every_example_answers_with_data_on_the_demo_store(
    demo_client: TestClient, example: Example
) -> None:
    response = demo_client.post("/graphql", json={"query": example.document})
    assert response.status_code == 200, response.text
    assert answer_problems(response.json()) == []


def test_the_detail_example_shows_the_run_it_names(demo_client: TestClient) -> None:
    [detail] = [e for e in EXAMPLES if "execution(executionId:" in e.document]
    [named] = re.findall(r'executionId: "(exec_[0-9a-f_]+)"', detail.document)
    data = demo_client.post("/graphql", json={"query": detail.document}).json()["data"]
    assert data["execution"]["items"][0]["itemType"] == "PIPELINE_START"
    listed = demo_client.post(
        "/graphql", json={"query": "{ executions(first: 500) { edges { node { executionId } } } }"}
    ).json()["data"]["executions"]["edges"]
    assert named in {edge["node"]["executionId"] for edge in listed}


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"data": None, "errors": [{"message": "boom"}]}, "error: {'message': 'boom'}"),
        ({"data": {"execution": None}}, "execution is null"),
        ({"data": {"executions": {"edges": []}}}, "executions.edges is an empty list"),
        (
            {"data": {"executions": {"edges": [{"node": {"items": []}}]}}},
            "executions.edges[0].node.items is an empty list",
        ),
        ({"data": {}}, "no data"),
        ([], "the response is not a JSON object: []"),
    ],
)
def test_an_answer_that_finds_nothing_is_a_problem(payload: Any, problem: str) -> None:
    assert problem in answer_problems(payload)


def test_an_answer_with_data_everywhere_is_no_problem() -> None:
    payload = {"data": {"executions": {"totalCount": 0, "edges": [{"node": {"items": [1]}}]}}}
    assert answer_problems(payload) == []


# --- the command line ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandLine:
    """One ``execgraph ...`` command line the README shows."""

    text: str
    path: tuple[str, ...]
    options: dict[str, bool]  # option -> shown as optional (in brackets)
    in_table: bool


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


_FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _spans(text: str) -> Iterator[str]:
    """Code spans outside fenced blocks, and the commands of ``sh`` blocks."""
    for match in _FENCE.finditer(text):
        if match.group(1) == "sh":
            for command in re.split(r"&&|\n", match.group(2)):
                words = command.split()
                if words and words[0].endswith("/execgraph"):
                    yield " ".join(["execgraph", *words[1:]])
    for match in re.finditer(r"`([^`]+)`", _FENCE.sub("", text)):
        yield match.group(1)


def _command_line(span: str, table: str) -> CommandLine | None:
    words = " ".join(span.replace("\\|", "|").split()).split(" ")
    if words[0] != "execgraph" or len(words) < 2 or words[1].startswith("-"):
        return None
    path: list[str] = []
    command: click.Command = main
    rest = words[1:]
    while rest and isinstance(command, click.Group) and rest[0] in command.commands:
        command = command.commands[rest[0]]
        path.append(rest.pop(0))
    options: dict[str, bool] = {}
    depth = 0
    for word in rest:
        depth += word.count("[")
        bare = word.strip("[]")
        if bare.startswith("-") and bare not in ("-", "--"):
            options[bare] = depth > 0
        depth -= word.count("]")
    return CommandLine(" ".join(words), tuple(path), options, f"| `{span}` |" in table)


def readme_command_lines() -> list[CommandLine]:
    """Every ``execgraph ...`` command line of the README."""
    text = README.read_text("utf-8")
    table = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    return [line for span in _spans(text) if (line := _command_line(span, table)) is not None]


COMMAND_LINES = readme_command_lines()


def test_the_command_line_table_lists_every_command() -> None:
    in_table = {line.path for line in COMMAND_LINES if line.in_table}
    assert in_table == set(_commands(main))


@pytest.mark.parametrize("line", COMMAND_LINES, ids=[line.text[:60] for line in COMMAND_LINES])
def test_every_command_line_in_the_readme_matches_the_cli(line: CommandLine) -> None:
    assert line.path, f"{line.text!r} names no execgraph command"
    command = _command(line.path)
    assert not isinstance(command, click.Group), f"{line.text!r} names a group, not a command"
    help_text = CliRunner().invoke(main, [*line.path, "--help"]).output
    by_name = {
        name: param
        for param in command.params
        if isinstance(param, click.Option)
        for name in (*param.opts, *param.secondary_opts)
    }
    for option, optional in line.options.items():
        assert option in by_name, f"{line.text!r}: {option} is no option of {line.path}"
        assert option in help_text
        if optional:
            assert not by_name[option].required, f"{line.text!r} shows required {option} optional"
    if line.in_table:
        for param in command.params:
            if isinstance(param, click.Option) and param.required:
                shown = [name for name in param.opts if line.options.get(name) is False]
                assert shown, f"{line.text!r} leaves out the required {param.opts[0]}"


def test_the_command_line_parser_sees_brackets_and_paths() -> None:
    by_text = {line.text: line for line in COMMAND_LINES}
    token = next(
        line for text, line in by_text.items() if text.startswith("execgraph token create")
    )
    assert token.path == ("token", "create")
    assert token.options["--role"] is False
    serve = next(line for line in COMMAND_LINES if line.in_table and "--workers" in line.options)
    assert serve.options["--workers"] is True
    assert serve.options["--watch-mode"] is True

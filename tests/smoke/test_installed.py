"""The smoke test of an installed copy, run here against this environment's ``execgraph``.

CI runs the same script against a wheel installed into a fresh virtual environment
(``.ci/run``); running it here too keeps the script itself tested wherever the suite runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.smoke.installed import page_assets, smoke


def test_the_smoke_test_passes_against_this_environment(capsys: pytest.CaptureFixture[str]) -> None:
    execgraph = Path(sys.executable).with_name("execgraph")
    if not execgraph.exists():
        pytest.skip("no execgraph executable beside this Python")
    results = smoke(execgraph, installed=False)
    out = capsys.readouterr().out
    assert results.failed == [], out
    assert results.passed >= 20, out
    for check in (
        "asset /graphiql-assets/graphiql-3.8.3/graphiql.min.css",
        "subscription",
        "SIGTERM",
    ):
        assert check in out


def test_the_page_parser_finds_scripts_and_stylesheets_with_their_integrity() -> None:
    html = (
        '<link rel="icon" href="data:," /><link rel="stylesheet" href="/a/x.css?v=1" '
        'integrity="sha384-abc" /><script src="b.js"></script><a href="#top">top</a>'
    )
    assets = page_assets(html, "http://127.0.0.1:9/graphql")
    assert [(a.url, a.integrity) for a in assets] == [
        ("http://127.0.0.1:9/a/x.css?v=1", "sha384-abc"),
        ("http://127.0.0.1:9/b.js", None),
    ]

"""Outside tools the end-to-end tests drive: Node with the npm clients, and Debian's Chromium.

On a developer's machine without them (the README's test command needs only Python and pip) the
tests that use them are skipped with the reason; in CI (``CI`` set), where ``.ci/run`` installs
them, a missing tool fails the test instead, so a broken install can never pass as a skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: The npm project of the outside clients (graphql-ws, graphql-http): ``npm ci --prefix`` it.
NODE_PROJECT = Path(__file__).parent / "node"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def _missing(what: str) -> None:
    message = f"{what} (CI installs it: see .ci/run)"
    if os.environ.get("CI"):
        pytest.fail(f"missing in CI: {message}")
    pytest.skip(f"not installed here: {message}")


def require_node() -> str:
    """The ``node`` executable with the npm clients installed, or skip (fail in CI)."""
    node = shutil.which("node")
    if node is None:
        _missing("Node.js")
    if not (NODE_PROJECT / "node_modules" / "graphql-ws").is_dir():
        _missing(f"the npm clients (npm ci --prefix {NODE_PROJECT})")
    assert node is not None
    return node


def require_chromium() -> str:
    """Debian's Chromium executable, or skip (fail in CI)."""
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    _missing("Chromium")
    raise AssertionError("unreachable")


#: Flags for headless Chromium on a machine without a network beyond loopback.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

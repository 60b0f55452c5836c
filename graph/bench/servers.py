"""Server subprocesses: started the way users start them, probed until ready, measured, stopped.

Every server listens on 127.0.0.1 only, runs in its own session (so a Ctrl-C meant for the
benchmark reaches it through :meth:`ServerProcess.stop`, not by accident), writes its output to a
log file beside the run's results, and is stopped by the benchmark, by its own process id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from graph.bench.client import HttpConnection, HttpError, check_ok, get


class ServerError(RuntimeError):
    """A server that exited or did not become ready."""


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def execgraph_command() -> list[str]:
    """How users run ``execgraph``: the installed console script of this environment."""
    script = Path(sys.executable).with_name("execgraph")
    if script.exists():
        return [str(script)]
    found = shutil.which("execgraph")
    if found:
        return [found]
    return [sys.executable, "-c", "from graph.cli.main import main; main()"]


def serve_command(store: Path, index: Path, port: int, *, workers: int = 1) -> list[str]:
    """``execgraph serve`` as documented, on 127.0.0.1."""
    return [
        *execgraph_command(),
        "serve",
        "--store",
        str(store),
        "--index",
        str(index),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def uvicorn_command(factory: str, port: int) -> list[str]:
    """uvicorn serving an app factory the way ``execgraph serve`` does (auto: httptools, uvloop)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--http",
        "auto",
        "--loop",
        "auto",
        "--log-level",
        "warning",
    ]


class ServerProcess:
    """One server subprocess on ``port``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        ready_path: str = "/healthz",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.log_path = log_dir / f"{name}.log"
        self.env = {**os.environ, "EXECGRAPH_LOG_LEVEL": "warning", **(env or {})}
        self.ready_path = ready_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ServerError(f"{self.name} is not running")
        return self._process.pid

    def start(self, timeout: float = 300.0) -> float:
        """Start and wait until ``ready_path`` answers 200; return the seconds that took."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own commands, no shell
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        deadline = started + timeout
        request = get(self.ready_path)
        while True:
            if self._process.poll() is not None:
                raise ServerError(f"{self.name} exited ({self._process.returncode}): {self.tail()}")
            try:
                with HttpConnection(self.port, timeout=5) as conn:
                    check_ok(*conn.request(request))
                return time.perf_counter() - started
            except (OSError, HttpError):
                pass  # not listening yet, or not answering yet
            if time.perf_counter() > deadline:
                self.stop()
                raise ServerError(f"{self.name} not ready after {timeout:.0f} s: {self.tail()}")
            time.sleep(0.005)

    def tail(self, lines: int = 15) -> str:
        """The end of the server's log, for error messages."""
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def peak_rss_mb(self) -> float | None:
        """Peak resident memory (VmHWM) of the server process, in MB (10**6 bytes)."""
        return _vm_hwm_mb(self.pid)

    def children_peak_rss_mb(self) -> float | None:
        """The largest VmHWM among the server's child processes (uvicorn's workers)."""
        peaks = [peak for pid in _children(self.pid) if (peak := _vm_hwm_mb(pid)) is not None]
        return max(peaks) if peaks else None

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the server to shut down (SIGTERM); kill its process group if it does not."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the session this server started
            process.wait(timeout)


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text("ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text("ascii")
            found.extend(int(child) for child in text.split())
    return found

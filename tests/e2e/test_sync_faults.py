"""A real server (uvicorn on 127.0.0.1) through faults of its store and its disk.

The store deleted and recreated, or swapped for a symlink, is followed within seconds;
``/healthz`` answers 503 while the store is missing and 200 after; ``syncIndex`` meanwhile
gives STORE_UNAVAILABLE. A full disk under the index (a small tmpfs, where this machine lets
the tests mount one) makes syncs fail: ``/healthz`` says so, and the runs written meanwhile
are served once space returns, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.index import RecordIndex
from tests.e2e.server import RunningServer, Subscriber, http_json, serve, serving
from tests.factory import record_dict, write_record

WAIT_S = 15.0
RUNS = "{ executions(first: 500) { totalCount edges { node { executionId } } } }"


def post(server: RunningServer, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server.http_url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def served(server: RunningServer) -> set[str]:
    data = post(server, RUNS)["data"]["executions"]
    return {edge["node"]["executionId"] for edge in data["edges"]}


def health(server: RunningServer) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{server.http_url}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - start


def watcher_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "storage.watcher"]


def test_a_deleted_and_recreated_store_is_served_again(
    store: Path, index_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="storage.watcher")
    for n in range(3):
        write_record(store, record_dict(f"exec_old_{n}"))
    with serve(store, index_path) as server:
        assert served(server) == {"exec_old_0", "exec_old_1", "exec_old_2"}
        assert health(server)[0] == 200
        shutil.rmtree(store)
        wait_until(lambda: health(server)[0] == 503, "/healthz 503 while the store is missing")
        body = health(server)[1]
        assert body["status"] == "degraded", body
        assert body["store"]["status"] == "missing", body
        assert body["watching"] is False
        # Queries still answer from the index; a sync says why it cannot run.
        assert post(server, "{ __typename }") == {"data": {"__typename": "Query"}}
        answer = post(server, "mutation { syncIndex { scanned } }")
        assert answer["errors"][0]["extensions"]["code"] == "STORE_UNAVAILABLE", answer
        assert "Traceback" not in json.dumps(answer)
        store.mkdir()
        new = {f"exec_new_{n}" for n in range(5)}
        for eid in sorted(new):
            write_record(store, record_dict(eid))
        back = time.monotonic()
        took = wait_until(lambda: served(server) == new, "the recreated store's runs served")
        wait_until(lambda: health(server)[0] == 200, "/healthz 200 again")
        assert health(server)[1]["watching"] is True
        print(f"recreated store served {took:.2f} s after it was back")  # the report's figure
        assert time.monotonic() - back < 5
        write_record(store, record_dict("exec_later"))
        wait_until(lambda: "exec_later" in served(server), "a later file served (watched)")
    lines = watcher_lines(caplog)
    assert len([line for line in lines if "is missing" in line]) == 1, lines
    assert len([line for line in lines if "is back" in line]) == 1, lines


def test_a_store_swapped_for_a_symlink_is_served(
    store: Path, tmp_path: Path, index_path: Path
) -> None:
    write_record(store, record_dict("exec_first"))
    other = tmp_path / "restored"
    other.mkdir()
    for n in range(4):
        write_record(other, record_dict(f"exec_restored_{n}"))
    with serve(store, index_path) as server:
        assert served(server) == {"exec_first"}
        link = tmp_path / "swap"
        link.symlink_to(other, target_is_directory=True)
        shutil.rmtree(store)
        link.rename(store)
        wanted = {f"exec_restored_{n}" for n in range(4)}
        took = wait_until(lambda: served(server) == wanted, "the symlinked directory served")
        assert took < 5
        write_record(other, record_dict("exec_restored_late"))
        wait_until(lambda: "exec_restored_late" in served(server), "a later file served")
        assert health(server)[0] == 200


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (skips the test where none can be mounted)."""
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        timeout=10,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], timeout=10, check=False)


def fill(folder: Path) -> Path:
    """A file taking every free byte of ``folder``'s file system."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def listen(server: RunningServer, announced: list[str], count: int) -> None:
    """Collect ``count`` executionAdded ids (in a thread of its own, with its own loop)."""

    async def run() -> None:
        sub = await Subscriber.connect(server.ws_url)
        await sub.subscribe("subscription { executionAdded { executionId } }")
        deadline = time.monotonic() + 3 * WAIT_S
        while len(announced) < count and time.monotonic() < deadline:
            message = await sub.receive(max(0.01, deadline - time.monotonic()))
            assert message["type"] == "next", message
            announced.append(message["payload"]["data"]["executionAdded"]["executionId"])
        await sub.close()

    asyncio.run(run())


def test_runs_written_while_the_disk_is_full_are_served_when_space_returns(
    store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="storage.watcher")
    with small_tmpfs(tmp_path / "small", "8m") as disk:
        index = disk / "index.sqlite3"
        write_record(store, record_dict("exec_before"))
        with serve(store, index) as server:
            assert served(server) == {"exec_before"}
            announced: list[str] = []
            listener = threading.Thread(target=listen, args=(server, announced, 150), daemon=True)
            listener.start()
            time.sleep(0.5)  # subscribed
            filler = fill(disk)
            new = {f"exec_full_{n:03d}" for n in range(150)}
            for eid in sorted(new):
                write_record(store, record_dict(eid, shape="stillepost"))
            (store / "exec_before.json").unlink()
            wait_until(lambda: health(server)[0] == 503, "/healthz 503 while syncs fail")
            body = health(server)[1]
            assert body["status"] == "degraded", body
            assert "failing_since" in body["sync"], body
            assert "full" in body["sync"]["error"] or "ENOSPC" in body["sync"]["error"], body
            worst = 0.0  # while syncs fail and are retried, other requests are answered
            until = time.monotonic() + 2  # several retries
            while time.monotonic() < until:
                start = time.monotonic()
                assert post(server, "{ __typename }") == {"data": {"__typename": "Query"}}
                worst = max(worst, time.monotonic() - start)
            print(f"worst {{__typename}} during the fault: {worst * 1000:.1f} ms")
            assert worst < 1.0
            assert served(server) != new  # nothing partial pretends to be done
            filler.unlink()  # space returns
            took = wait_until(lambda: served(server) == new, "every run served after the fault")
            wait_until(lambda: health(server)[0] == 200, "/healthz 200 again")
            print(f"all {len(new)} runs served {took:.2f} s after space returned")
            assert took < 10
            listener.join(WAIT_S)
            assert sorted(announced) == sorted(new)  # each announced once, after the fault
    lines = watcher_lines(caplog)
    print("\n".join(lines))
    failing = [line for line in lines if "index sync failing" in line]
    assert 1 <= len(failing) <= 2, lines  # the error may read two ways (SQLite, then the OS)
    assert len([line for line in lines if "recovered" in line]) == 1, lines


def test_a_start_on_a_full_disk_comes_up_degraded_and_heals(
    store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    wanted = {f"exec_start_{n:03d}" for n in range(150)}
    with small_tmpfs(tmp_path / "small", "8m") as disk:
        index = disk / "index.sqlite3"
        with RecordIndex(store, index) as existing:  # the index of the store as it was
            existing.sync()
        for eid in sorted(wanted):
            write_record(store, record_dict(eid, shape="stillepost"))
        filler = fill(disk)
        os.truncate(filler, filler.stat().st_size - 256 * 1024)  # room to open, not for rows
        with serve(store, index) as server:
            wait_until(lambda: health(server)[0] == 503, "/healthz 503 while the build fails")
            assert post(server, "{ __typename }") == {"data": {"__typename": "Query"}}
            assert served(server) != wanted
            filler.unlink()
            took = wait_until(lambda: served(server) == wanted, "every run served after the fault")
            wait_until(lambda: health(server)[0] == 200, "/healthz 200 again")
            print(f"start on a full disk: all served {took:.2f} s after space returned")
            assert took < 10
    messages = [r.getMessage() for r in caplog.records]
    assert any("index sync at start-up failed" in m for m in messages), messages


def test_runs_written_while_descriptors_run_out_are_served_after(
    store: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with serving(store, home, index=tmp_path / "fd-index.sqlite3") as server:
        pid = server.process.pid

        def runs() -> set[str]:
            data = http_json(f"{server.http}/graphql", {"query": RUNS})["data"]["executions"]
            return {edge["node"]["executionId"] for edge in data["edges"]}

        write_record(store, record_dict("exec_fd_before"))  # the watcher is at work
        wait_until(lambda: runs() == {"exec_fd_before"}, "a first file served")
        new = {f"exec_fd_{n:02d}" for n in range(20)}
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        # No descriptor left for the server process: every open() it makes now fails (EMFILE),
        # the index's lock file first (tests/storage/test_watcher_faults.py takes a record file).
        spare = len(os.listdir(f"/proc/{pid}/fd"))
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (spare, hard))
        try:
            for eid in sorted(new):
                write_record(store, record_dict(eid))
            time.sleep(2)  # the watcher tries, fails, retries
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        back = time.monotonic()
        wait_until(lambda: runs() == new | {"exec_fd_before"}, "every run served after EMFILE")
        print(f"EMFILE: all served {time.monotonic() - back:.2f} s after descriptors returned")
        log = server.log.read_text()
    assert log.count("index sync failing") == 1, log[-3000:]
    assert "EMFILE" in log or "Too many open files" in log, log[-3000:]
    assert log.count("index sync recovered") == 1, log[-3000:]

"""Start `hes-sim run` as a real subprocess on a free port and stop it the way a user does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scenarios" / "demo.yaml"


# Every meter answers after a fixed second: integration tests check wiring, not comm statistics.
INSTANT_COMMS = "comms.classes={wired: {latency: {kind: fixed, value_s: 1.0}, success: 1.0, retries: 0}}"


@contextmanager
def running_simulator(*args: str, timeout: float = 30.0, cwd: Path | None = None
                      ) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`hes-sim run` on the demo scenario; its default outbox lands in `cwd` (a fresh temp dir)."""
    with tempfile.TemporaryDirectory(prefix="hes-sim-test-") as tmp, \
            running("run", str(DEMO), "--host", "127.0.0.1", "--port", "0", *args, timeout=timeout,
                    cwd=cwd or Path(tmp)) as r:
        yield r


def start_listening(cmd: list[str], timeout: float = 30.0, cwd: Path | None = None
                    ) -> tuple[subprocess.Popen[str], str]:
    """Start `cmd`; return (process, URL) once it prints `listening on URL`, or fail with its output."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("listening on "):
            return proc, line.split()[2]
    proc.kill()
    _, err = proc.communicate(timeout=10)
    raise AssertionError(f"{' '.join(cmd[2:])} did not start: {''.join(lines)}{err}")


@contextmanager
def running(*cli: str, timeout: float = 30.0, cwd: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start `hes-sim <cli...>`; yield (base URL, process) once it prints `listening on URL`."""
    proc, base = start_listening([sys.executable, "-m", "simulator.cli", *cli], timeout, cwd)
    try:
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll until `predicate()` is true; fail the test, naming `what`, after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The MDMS receiver's journal: one dict per message received so far."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

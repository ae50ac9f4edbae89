"""What the end-to-end benchmarks share: their subprocesses, how they find `hes-sim`, and the run summary.

The storm benchmarks run the real programs as subprocesses, the way a user would, so each needs
the same care: every child stopped on any way out, stdout read without losing a buffered line,
CPU read from /proc, and the summary `hes-sim run --fast` prints turned back into numbers.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")

_RAN = re.compile(r"^ran (\S+) sim seconds in (\S+) s$")
_EVENTS = re.compile(r"^\s*events: (.*)$")
_MESSAGES = re.compile(
    r"^\s*messages: (\d+) sent, (\d+) delivered, (\d+) retries, (\d+) failed, (\d+) undelivered$")


class Children:
    """Every subprocess this run started, so that any way out of it (error, Ctrl-C, SIGTERM) stops them."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(list(args), **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> int:
        """SIGINT (the CLI's clean stop), then SIGKILL after `grace_s`; returns the exit status."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=grace_s)
        if proc in self.procs:
            self.procs.remove(proc)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc, grace_s=5.0)


def wait_for_line(proc: subprocess.Popen[bytes], prefix: str, timeout_s: float) -> str:
    """The first stdout line starting with `prefix`; a raw read, so no buffered line is missed."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout_s
    buffer = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buffer += chunk
            for line in buffer.decode("utf-8", "replace").splitlines():
                if line.startswith(prefix):
                    return line
    raise RuntimeError(f"{proc.args!r} did not print {prefix!r} within {timeout_s:g} s; it printed: {buffer!r}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process, from /proc (0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def hes_sim() -> list[str]:
    """The installed `hes-sim` beside this Python, else the module (same code either way)."""
    script = Path(sys.executable).with_name("hes-sim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "simulator.cli"]


def shown(args: Sequence[str]) -> str:
    return " ".join(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else f"'{a}'" for a in args)


def describe_code() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no",
                                "simulator"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return f"{REPO} (not a git checkout)"
    return f"{REPO} at {head}" + (" with uncommitted changes under simulator/" if dirty.strip() else "")


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the `finally` that stops the children runs."""
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class RunSummary:
    """What `hes-sim run --fast` prints at the end, as numbers."""

    fast_run_s: float | None = None  # "ran ... in X s": after startup, to the end of delivery
    events: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    delivered: int = 0
    retries: int = 0
    failed: int = 0
    undelivered: int = 0


def parse_run_summary(text: str) -> RunSummary:
    summary = RunSummary()
    for line in text.splitlines():
        if m := _RAN.match(line):
            summary.fast_run_s = float(m.group(2))
        elif m := _EVENTS.match(line):
            for part in m.group(1).split(", "):
                kind, _, count = part.rpartition(" x")
                summary.events[kind] = int(count)
        elif m := _MESSAGES.match(line):
            summary.sent, summary.delivered, summary.retries, summary.failed, summary.undelivered = map(
                int, m.groups())
    return summary

"""SIGKILL the outbox's process while the MDMS is down; after a restart every message is delivered.

Real processes and a real HTTP receiver: a worker fills an outbox whose destination is a port
where nothing listens (every attempt fails and is retried), is killed with SIGKILL right after its
last put returned, then the MDMS receiver (`python -m simulator.mdms`, the `hes-sim mdms` code)
comes up on that port, and a second worker reopens the same file and delivers. The receiver's
journal must show every message, valid, in order within each correlation.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
WORKER = HERE / "outbox_worker.py"
REPO = HERE.parents[1]
CORRELATIONS, PARTS = 10, 6
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lines:
    """Lines of a child's stdout with a bounded wait (readline alone could block forever)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.queue.put(line)
            self.queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, prefix: str, timeout: float) -> str:
        while True:
            try:
                line = self.queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line {prefix!r} within {timeout} s; got {self.seen}") from None
            if line is None:
                raise AssertionError(f"process ended before {prefix!r}; got {self.seen}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line.strip()


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def test_messages_survive_sigkill_while_the_mdms_is_down(tmp_path: Path) -> None:
    db = tmp_path / "data" / "outbox.sqlite"
    journal = tmp_path / "mdms.jsonl"
    port = free_port()
    destination = f"http://127.0.0.1:{port}/ReplyMeterReadings"
    total = CORRELATIONS * PARTS

    filler = subprocess.Popen(
        [sys.executable, str(WORKER), "fill", str(db), destination, str(CORRELATIONS), str(PARTS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
    try:
        Lines(filler).wait_for("ready", timeout=60)
        filler.send_signal(signal.SIGKILL)  # at once: the last put must already be durable
        filler.wait(timeout=15)
    finally:
        stop(filler, signal.SIGKILL)
    assert filler.returncode == -signal.SIGKILL

    mdms = subprocess.Popen(
        [sys.executable, "-m", "simulator.mdms", "--host", "127.0.0.1", "--port", str(port), "--journal", str(journal)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
    try:
        Lines(mdms).wait_for("listening on", timeout=60)
        delivery = subprocess.run([sys.executable, str(WORKER), "deliver", str(db), "60"],
                                  capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120)
    finally:
        stop(mdms)
    assert delivery.returncode == 0, delivery.stderr
    pending_line, stats_line = delivery.stdout.strip().splitlines()
    assert pending_line == f"pending {total}"  # nothing was lost to the kill
    stats = json.loads(stats_line)
    assert (stats["queued"], stats["delivered"], stats["dead"]) == (0, total, 0)

    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    assert all(e["valid"] is True and e["answered"] == "ok" and e["ack_required"] for e in entries)
    arrived: dict[str, list[int]] = defaultdict(list)
    for e in entries:
        arrived[e["correlation_id"]].append(int(e["message_index"].split("/")[0]))
    assert sorted(arrived) == [f"job-{c}" for c in range(CORRELATIONS)]
    for correlation, parts in arrived.items():
        assert sorted(set(parts)) == list(range(1, PARTS + 1)), correlation  # every part, at least once
        assert parts == sorted(parts), correlation  # never a part before an earlier one
    assert {e["message_id"] for e in entries} == {f"job-{c}/{k}" for c in range(CORRELATIONS)
                                                   for k in range(1, PARTS + 1)}

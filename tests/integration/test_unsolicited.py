"""Unsolicited traffic with real processes: a fast outage storm, and the run-time control API."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from .server import REPO, read_journal, running

pytestmark = pytest.mark.integration




def test_fast_outage_storm_delivers_every_last_gasp_once(tmp_path: Path) -> None:
    log = tmp_path / "mdms.jsonl"
    with running("mdms", "--port", "0", "--journal", str(log), "--fail-rate", "0.5") as (mdms, _):
        proc = subprocess.run(
            [sys.executable, "-m", "simulator.cli", "run", str(REPO / "scenarios" / "outage-storm.yaml"),
             "--fast", "--until", "1h", "--set", "fleet.meters=5000",
             "--set", f"destinations.events=[{mdms}/SendEndDeviceEvents]",
             "--set", f"outbox.path={tmp_path / 'outbox.sqlite3'}", "--set", "outbox.retry_initial_s=0.05",
             "--set", "outbox.retry_max_s=0.2"],
            capture_output=True, text=True, timeout=240, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        summary = proc.stdout
        assert "0 failed, 0 undelivered" in summary and "retries" in summary
        counts = dict(item.split(" x") for item in summary.split("events: ", 1)[1].splitlines()[0].split(", "))
        gasps, restores = int(counts["3.26.0.85"]), int(counts["3.26.0.216"])
        assert restores == 5000 and 3000 <= gasps <= 4000
        entries = read_journal(log)
    answered = [e for e in entries if e["answered"] == "ok"]  # half were refused with HTTP 500 and retried
    assert len(answered) < len(entries)
    unique = {e["message_id"]: e for e in answered}  # the receiver deduplicates by MessageID
    assert sum(e["events"] for e in unique.values()) == gasps + restores
    assert all(e["valid"] for e in unique.values())


def test_control_api_starts_an_outage_on_a_live_server(tmp_path: Path) -> None:
    log = tmp_path / "mdms.jsonl"
    with running("mdms", "--port", "0", "--journal", str(log)) as (mdms, _), \
            running("run", str(REPO / "scenarios" / "training.yaml"), "--port", "0", "--speed", "100",
                    "--set", f"destinations.events=[{mdms}/SendEndDeviceEvents]", "--set", "timeline=[]",
                    "--set", f"outbox.path={tmp_path / 'o.sqlite3'}") as (base, _):
        done = subprocess.run([sys.executable, "-m", "simulator.cli", "control", base, "outage", "--group",
                               "FEEDER-01", "--duration", "300"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "outage on FEEDER-01 for 300 s" in done.stdout
        bad = subprocess.run([sys.executable, "-m", "simulator.cli", "control", base, "outage", "--group",
                              "FEEDER-99"], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and bad.stderr.startswith("hes-sim: error: ") and "FEEDER-99" in bad.stderr
        def types() -> Counter[str]:
            total: Counter[str] = Counter()
            for e in read_journal(log):
                total.update(e.get("event_types", {}))
            return total

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and types()["3.26.0.216"] < 10:
            time.sleep(0.2)
        seen = types()
    assert seen["3.26.0.216"] == 10  # FEEDER-01 of the training fleet: 10 meters restored
    assert 1 <= seen["3.26.0.85"] <= 10  # the seeded share of their last gasps made it out

"""The command line as a user meets it: exports, one-line errors, exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli import main

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "scenarios" / "demo.yaml")


def test_fleet_csv_lists_every_meter_with_identity(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", DEMO, "--meters", "50", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 50
    assert len({r["mrid"] for r in rows}) == 50
    assert len({r["serial"] for r in rows}) == 50
    first = rows[0]
    assert first["meter_class"] in {"residential", "commercial", "prosumer"}
    assert "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0" in first["reading_types"].split()
    assert any(g.startswith("FEEDER-") for g in first["groups"].split(";"))
    assert first["customer_name"] and first["usage_point_mrid"]


def test_fleet_json_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    out1, out2, out3 = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    assert main(["fleet", DEMO, "--meters", "20", "--format", "json", "-o", str(out1)]) == 0
    assert main(["fleet", DEMO, "--meters", "20", "--format", "json", "-o", str(out2)]) == 0
    assert main(["fleet", DEMO, "--meters", "20", "--seed", "43", "--format", "json", "-o", str(out3)]) == 0
    a = json.loads(out1.read_text())
    assert a == json.loads(out2.read_text())
    assert a != json.loads(out3.read_text())
    assert isinstance(a[0]["groups"], list)


def test_bad_override_is_one_line_naming_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", DEMO, "--set", "fleet.meters=-3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("hes-sim: error: ") and "fleet.meters" in err and "demo.yaml" in err


def test_missing_scenario_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such file" in capsys.readouterr().err


def test_console_script_entry_point_reports_errors_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("fleet: {meters: lots}\n")
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", "fleet", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith(f"hes-sim: error: {bad}: fleet.meters:")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", DEMO, "--port", "0", "--set", "outbox.path=/proc/no/such/dir/o.sqlite3"],
         "hes-sim: error: outbox.path: cannot use /proc/no/such/dir/o.sqlite3"),
        (["mdms", "--port", "0", "--journal", "/proc"], "hes-sim: error: --journal /proc:"),
    ],
)
def test_unusable_files_are_one_line_errors_naming_the_setting(argv: list[str], expected: str, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", *argv], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(expected), proc.stderr
    assert "Traceback" not in proc.stderr

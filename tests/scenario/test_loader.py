"""Scenario files: defaults, overrides and one-line errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.errors import ScenarioError
from simulator.scenario import load_scenario, scenario_from_mapping

REPO = Path(__file__).resolve().parents[2]


def test_every_shipped_scenario_loads() -> None:
    files = sorted((REPO / "scenarios").glob("*.yaml"))
    assert files, "scenarios/ must ship at least one scenario"
    for f in files:
        s = load_scenario(f)
        assert s.fleet.meters >= 1


def test_defaults_when_sections_are_missing() -> None:
    s = scenario_from_mapping({}, "empty.yaml")
    assert s.fleet.meters == 1000
    assert s.server.port == 8080
    assert s.headend.max_meters_per_request == 10_000
    assert s.clock.start == "now"


def test_override_sets_typed_values_by_dotted_key() -> None:
    s = scenario_from_mapping({"fleet": {"meters": 10}}, "x.yaml",
                              ["fleet.meters=5000", "headend.source=HES-7", "headend.validate_requests=false"])
    assert s.fleet.meters == 5000
    assert s.headend.source == "HES-7"
    assert s.headend.validate_requests is False


@pytest.mark.parametrize(
    ("raw", "overrides", "key", "words"),
    [
        ({"fleet": {"meterz": 5}}, [], "fleet.meterz", "Extra inputs"),
        ({}, ["fleet.meters=0"], "fleet.meters", "greater than or equal to 1"),
        ({}, ["fleet.meters=many"], "fleet.meters", "valid integer"),
        ({}, ["clock.start=2026-01-01T00:00:00"], "clock.start", "UTC offset"),
        ({}, ["fleet.utc_offset_minutes=7"], "fleet.utc_offset_minutes", "multiple of 15"),
        ({}, ["fleet.class_mix.industrial=1"], "fleet.class_mix.industrial", "residential"),
        ({}, ["server.port=70000"], "server.port", "less than or equal"),
    ],
)
def test_errors_name_file_and_key(raw: dict, overrides: list[str], key: str, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_mapping(raw, "plant.yaml", overrides)
    message = str(info.value)
    assert message.startswith(f"plant.yaml: {key}: "), message
    assert words in message
    assert "\n" not in message


def test_bad_override_syntax() -> None:
    with pytest.raises(ScenarioError, match="expected KEY=VALUE"):
        scenario_from_mapping({}, "x.yaml", ["fleet.meters"])
    with pytest.raises(ScenarioError, match="seed: is a value, not a section"):
        scenario_from_mapping({"seed": 3}, "x.yaml", ["seed.x=1"])


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("fleet:\n  meters: [1,\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml: not valid YAML: line \d+"):
        load_scenario(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ScenarioError, match="must be a YAML mapping"):
        load_scenario(listy)

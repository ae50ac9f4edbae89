"""Shared fixtures: a small deterministic simulator, and the reference schemas when present."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from simulator.app import Simulator
from simulator.scenario import scenario_from_mapping

# A fixed sim "now" so readings in tests never depend on the wall clock.
FIXED_START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


# Every meter answers after exactly one second: tests of message content stay exact.
PERFECT_COMMS = {"classes": {"wired": {"latency": {"kind": "fixed", "value_s": 1.0}, "success": 1.0, "retries": 0}}}


def make_sim(meters: int = 200, seed: int = 7, **sections: dict) -> Simulator:
    raw: dict = {"name": "test", "seed": seed, "fleet": {"meters": meters},
                 "clock": {"start": FIXED_START.isoformat()}, "comms": dict(PERFECT_COMMS)}
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return Simulator(scenario_from_mapping(raw, "<test>"), wall_clock=lambda: 1_790_000_000.0)


@pytest.fixture
def sim() -> Simulator:
    return make_sim()

"""Scenario files: the frozen, validated configuration of one simulator run."""

from .loader import apply_override, load_scenario, scenario_from_mapping
from .schema import ClockSection, FleetSection, HeadEndSection, Scenario, ServerSection

__all__ = [
    "ClockSection",
    "FleetSection",
    "HeadEndSection",
    "Scenario",
    "ServerSection",
    "apply_override",
    "load_scenario",
    "scenario_from_mapping",
]

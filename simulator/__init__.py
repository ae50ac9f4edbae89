"""hes-sim: a meter head-end simulator speaking IEC 61968-9 in the IEC 61968-100 envelope.

The public API, for embedding the simulator in other test suites:

    from simulator import Simulator, load_scenario, start_server
    sim = Simulator(load_scenario("scenarios/demo.yaml", ["fleet.meters=500"]))
    served = await start_server(sim, "127.0.0.1", 0)   # served.base_url, await served.close()

Imports are lazy so that `hes-sim fleet` and `import simulator` stay quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CimError",
    "Scenario",
    "ScenarioError",
    "Simulator",
    "SimulatorError",
    "__version__",
    "load_scenario",
    "scenario_from_mapping",
    "start_server",
]

_LAZY = {
    "Simulator": "simulator.app",
    "start_server": "simulator.app",
    "Scenario": "simulator.scenario",
    "load_scenario": "simulator.scenario",
    "scenario_from_mapping": "simulator.scenario",
    "CimError": "simulator.errors",
    "ScenarioError": "simulator.errors",
    "SimulatorError": "simulator.errors",
}

if TYPE_CHECKING:
    from .app import Simulator, start_server
    from .errors import CimError, ScenarioError, SimulatorError
    from .scenario import Scenario, load_scenario, scenario_from_mapping


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

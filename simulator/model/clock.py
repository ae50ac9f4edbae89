"""Simulation time: seconds since the scenario epoch on a simpy clock, mapped to Unix time.

The model reads "now" only through this object, so the same code runs under the fast driver
(env.run as fast as the CPU allows) and the live driver (env stepped against the wall clock).
"""

from __future__ import annotations

import simpy


class SimClock:
    def __init__(self, env: simpy.Environment, epoch_unix: int) -> None:
        self.env = env
        self.epoch_unix = int(epoch_unix)

    def now_unix(self) -> int:
        """The current sim time as whole Unix seconds."""
        return self.epoch_unix + int(self.env.now)

    def to_unix(self, sim_seconds: float) -> int:
        return self.epoch_unix + int(sim_seconds)

    def to_sim(self, unix_seconds: int) -> float:
        return float(unix_seconds - self.epoch_unix)

"""Drivers that advance the simpy environment: live (against the asyncio loop clock) and fast.

Live mode steps the environment from an asyncio task on the server's own loop, never from a
thread: a thread added most of a second of jitter to injected events when we measured it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import simpy

log = logging.getLogger(__name__)


class LiveDriver:
    """Keeps `env.now` equal to (loop time since start) x speed, stepping every `tick` seconds."""

    def __init__(self, env: simpy.Environment, speed: float = 1.0, tick: float = 0.02) -> None:
        self.env = env
        self.speed = float(speed)
        self.tick = float(tick)
        self._task: asyncio.Task[None] | None = None
        self._t0 = 0.0
        self._sim0 = 0.0
        self.errors = 0  # events whose callbacks raised

    def target(self) -> float:
        loop = asyncio.get_running_loop()
        return self._sim0 + (loop.time() - self._t0) * self.speed

    def catch_up(self) -> None:
        """Run every event due by now; called by the task and before answering a request.

        An exception from one event's callback is logged and stepping goes on: one broken job
        must not stop sim time for every other request.
        """
        target = self.target()
        while target > self.env.now:
            try:
                self.env.run(until=target)
            except Exception:
                self.errors += 1
                log.exception("a simulation event failed; the simulation goes on without it")

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        self._sim0 = float(self.env.now)
        self._task = loop.create_task(self._run(), name="hes-sim live driver")

    async def _run(self) -> None:
        while True:
            self.catch_up()
            await asyncio.sleep(self.tick)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def run_fast(env: simpy.Environment, until: float) -> None:
    """Fast mode: process every event up to `until` sim seconds as fast as the CPU allows."""
    if until > env.now:
        env.run(until=until)

"""Wires a scenario into a running simulator: fleet, clock, head-end, transports."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy
from aiohttp import web

from .drivers import LiveDriver
from .headend.dispatch import HeadEnd, HeadEndSettings
from .headend.soap import SoapService
from .ids import IdStream
from .model.clock import SimClock
from .model.fleet import Fleet, FleetConfig
from .model.readings import Readings
from .scenario import Scenario
from .transports.http import make_app


def fleet_config(scenario: Scenario) -> FleetConfig:
    f = scenario.fleet
    return FleetConfig(
        seed=scenario.seed,
        size=f.meters,
        class_mix=tuple((k, float(v)) for k, v in f.class_mix.items()),
        feeders=f.feeders,
        meters_per_collector=f.meters_per_collector,
        serial_prefix=f.serial_prefix,
        utc_offset_minutes=f.utc_offset_minutes,
        register_origin_year=f.register_origin_year,
        locale=f.locale,
    )


class Simulator:
    """One simulator run: owns the simpy environment, the seed and the fleet."""

    def __init__(self, scenario: Scenario, wall_clock: Callable[[], float] = time.time) -> None:
        self.scenario = scenario
        self.seed = scenario.seed
        self.fleet = Fleet(fleet_config(scenario))
        self.readings = Readings(self.fleet)
        self.env = simpy.Environment()
        start = scenario.clock.start
        epoch = int(wall_clock()) if isinstance(start, str) else int(start.timestamp())
        self.clock = SimClock(self.env, epoch)
        h = scenario.headend
        self.headend = HeadEnd(
            fleet=self.fleet,
            readings=self.readings,
            clock=self.clock,
            settings=HeadEndSettings(
                source=h.source,
                max_meters_per_request=h.max_meters_per_request,
                max_readings_per_reply=h.max_readings_per_reply,
                validate_requests=h.validate_requests,
                validate_responses=h.validate_responses,
            ),
            ids=IdStream(scenario.seed, "message"),
            wall_clock=wall_clock,
        )
        self.soap = SoapService(self.headend, max_request_bytes=h.max_request_bytes)

    def summary(self) -> str:
        f = self.fleet
        counts = np.bincount(f.class_index, minlength=len(f.classes))
        mix = ", ".join(f"{int(n)} {name}" for name, n in zip(f.classes, counts, strict=True) if n)
        groups = f.groups()
        kinds = {k: sum(1 for g in groups if g.kind == k) for k in ("feeder", "collector")}
        return (
            f"scenario {self.scenario.name!r}, seed {self.seed}: {f.size} meters ({mix}); "
            f"{kinds['feeder']} feeders, {kinds['collector']} collectors; "
            f"sim clock starts {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.clock.epoch_unix))}"
        )


@dataclass
class Served:
    runner: web.AppRunner
    driver: LiveDriver
    base_url: str

    async def close(self) -> None:
        await self.driver.stop()
        await self.runner.cleanup()


async def start_server(sim: Simulator, host: str, port: int) -> Served:
    """Start the live driver and the HTTP server; returns once the socket is listening."""
    driver = LiveDriver(sim.env, speed=sim.scenario.clock.speed)
    driver.start()
    sim.headend.before_request = driver.catch_up
    runner = web.AppRunner(make_app(sim.soap), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        await driver.stop()
        raise
    addresses = runner.addresses
    actual = addresses[0][1] if addresses else port
    shown = f"[{host}]" if ":" in host else host
    return Served(runner=runner, driver=driver, base_url=f"http://{shown}:{actual}")


async def serve_forever(sim: Simulator, host: str, port: int, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGINT or SIGTERM, then close cleanly."""
    served = await start_server(sim, host, port)
    announce(sim.summary())
    for name in sim.soap.service_names():
        announce(f"  POST {served.base_url}/{name}    WSDL {served.base_url}/{name}?wsdl")
    announce(f"listening on {served.base_url} (Ctrl-C stops)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await served.close()

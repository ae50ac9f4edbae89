"""Wires a scenario into a running simulator: fleet, clock, head-end, transports."""

from __future__ import annotations

import asyncio
import fcntl
import inspect
import logging
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import simpy
from aiohttp import web

from .cim.enddevicecontrols import normalise_control_type
from .control_api import ControlApi, action_of
from .drivers import LiveDriver
from .errors import ScenarioError, SimulatorError
from .headend.dispatch import HeadEnd, HeadEndSettings
from .headend.faults import FAULT_KINDS, FaultInjector, FaultRule
from .headend.jmsservice import JMS_SCHEMES, JmsService, jms_headers
from .headend.outbound import DurableOutbound, MemoryOutbound, is_positive_ack
from .headend.outbox import Outbox, OutboxDeliverer, RetryPolicy
from .headend.push import PushScheduler, PushSpec
from .headend.readjob import ReplySettings
from .headend.soap import SoapService
from .headend.timeline import Timeline
from .headend.unsolicited import EventSender
from .ids import IdStream
from .model.clock import SimClock
from .model.comms import CohortSpec, CommClassSpec, CommConfig, CommModel, LatencySpec
from .model.demand import DemandResets
from .model.events import EventLog
from .model.fleet import Fleet, FleetConfig, Group
from .model.incidents import EventRate, IncidentConfig, IncidentModel, OutageConfig
from .model.jobs import JobScheduler
from .model.readings import Readings
from .model.relay import RelayConfig, RelayModel
from .model.supply import SupplyHistory
from .ports import OutboundSender
from .scenario import Scenario
from .signals import wait_for_stop
from .transports.http import make_app
from .transports.jms import JmsConnection, JmsError, JmsSender
from .transports.jms_consumer import JmsConsumer
from .transports.router import SchemeRouter
from .transports.soap_client import SoapSender

log = logging.getLogger(__name__)


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


def _meter_index(fleet: Fleet, name: str) -> int | None:
    found = fleet.index_of_mrid(name.strip())
    return found if found is not None else fleet.index_of_serial(name.strip())


def _meter(fleet: Fleet, name: str, source: str, key: str) -> int:
    """A meter named in the scenario (mRID or serial), or a ScenarioError naming the key."""
    i = _meter_index(fleet, name)
    if i is None:
        raise ScenarioError(source, key, f"no meter {name!r} (give an mRID or serial)")
    return i


def _group(fleet: Fleet, name: str, source: str, key: str) -> Group:
    """A group named in the scenario, or a ScenarioError naming the key."""
    group = fleet.group_by_name(name)
    if group is None:
        raise ScenarioError(source, key, f"no group named {name!r} in this fleet")
    return group


def comm_config(scenario: Scenario, fleet: Fleet, source: str) -> CommConfig:
    c = scenario.comms
    classes = tuple(
        CommClassSpec(
            name=name,
            latency=LatencySpec(
                kind=k.latency.kind, value_s=k.latency.value_s, low_s=k.latency.low_s, high_s=k.latency.high_s,
                median_s=k.latency.median_s, sigma=k.latency.sigma,
                percentiles=tuple((float(p), float(v)) for p, v in k.latency.percentiles),
            ),
            success=k.success, retries=k.retries, retry_delay_s=k.retry_delay_s,
        )
        for name, k in c.classes.items()
    )
    cohorts = []
    for n, co in enumerate(c.cohorts):
        if co.group is not None:
            _group(fleet, co.group, source, f"comms.cohorts.{n}.group")
        meters = [_meter(fleet, name, source, f"comms.cohorts.{n}.meters") for name in co.meters]
        cohorts.append(CohortSpec(
            mode=co.mode, fraction=co.fraction, group=co.group, meters=tuple(meters), factor=co.factor,
            success=co.success, start_s=co.start_s, end_s=co.end_s, name=co.name or f"cohort-{n}",
        ))
    return CommConfig(
        classes=classes,
        class_mix=tuple((name, k.share) for name, k in c.classes.items()),
        attempt_timeout_s=c.attempt_timeout_s,
        data_unavailable=c.data_unavailable,
        cohorts=tuple(cohorts),
    )


def fault_rules(scenario: Scenario, fleet: Fleet, source: str) -> list[FaultRule]:
    rules = []
    for kind in FAULT_KINDS:
        f = getattr(scenario.replies.faults, kind)
        for name in f.groups:
            _group(fleet, name, source, f"replies.faults.{kind}.groups")
        rules.append(FaultRule(kind=kind, rate=f.rate(), groups=tuple(f.groups), delay_s=f.delay_s))
    return rules


def relay_config(scenario: Scenario, fleet: Fleet, source: str) -> RelayConfig:
    r = scenario.relay
    failing = [_meter(fleet, name, source, "relay.failure_meters") for name in r.failure_meters]
    for name in r.failure_groups:
        failing += fleet.group_members(_group(fleet, name, source, "relay.failure_groups")).tolist()
    return RelayConfig(
        failure_probability=r.failure_probability,
        failure_meters=tuple(sorted(set(failing))),
        connect_when_connected=r.connect_when_connected,
        disconnect_when_disconnected=r.disconnect_when_disconnected,
        customer_closes_probability=r.customer_closes_probability,
        customer_delay_median_s=r.customer_delay_median_s,
    )


def incident_config(scenario: Scenario) -> IncidentConfig:
    o = scenario.incidents.outages
    return IncidentConfig(
        outages=OutageConfig(rate_per_group_per_day=o.rate_per_group_per_day, scope=o.scope,
                             duration_median_s=o.duration_median_s, duration_sigma=o.duration_sigma,
                             last_gasp_fraction=o.last_gasp_fraction),
        rates=tuple(EventRate(normalise_control_type(e.event_type) or e.event_type,
                              {str(k): float(v) for k, v in e.per_meter_per_day.items()})
                    for e in scenario.incidents.events),
    )


def push_specs(scenario: Scenario, fleet: Fleet, source: str) -> list[PushSpec]:
    specs = []
    for n, p in enumerate(scenario.pushes):
        if p.group is not None:
            _group(fleet, p.group, source, f"pushes.{n}.group")
        try:
            spec = PushSpec(
            name=p.name, every=p.every, at=p.at, at_minute=p.at_minute, reading_types=tuple(p.reading_types),
            group=p.group, batch_meters=p.batch_meters, window_s=p.window_s, missing_fraction=p.missing_fraction,
            backfill_after_s=p.backfill_after_s, gap_fraction=p.gap_fraction, estimate_gaps=p.estimate_gaps,
            duplicate_fraction=p.duplicate_fraction,
            )
        except ValueError as exc:
            raise ScenarioError(source, f"pushes.{n}", str(exc)) from None
        specs.append(spec)
    return specs


def jms_destinations(scenario: Scenario, source: str) -> tuple[list[str], list[str]]:
    """Where unsolicited EndDeviceEvents and MeterReadings go: the destinations, plus the event topics.

    A queue:// or topic:// destination needs a broker, so it is refused unless `jms.enabled`.
    """
    d, j = scenario.destinations, scenario.jms
    if not j.enabled:
        named = [("destinations.events", a) for a in d.events] + [("destinations.readings", a) for a in d.readings]
        named.append(("replies.events_address", scenario.replies.events_address or ""))
        for key, address in named:
            if address.startswith(JMS_SCHEMES):
                raise ScenarioError(source, key, f"{address} is a JMS destination: set jms.enabled: true "
                                    "(and run a broker: hes-sim broker)")
        return list(d.events), list(d.readings)
    events, readings = list(d.events), list(d.readings)
    if j.event_topic:
        for noun, destinations in (("EndDeviceEvents", events), ("MeterReadings", readings)):
            topic = j.event_topic.replace("{noun}", noun)
            if topic not in destinations:
                destinations.append(topic)
    return events, readings


def outbox_path(scenario: Scenario) -> Path:
    if scenario.outbox.path:
        return Path(scenario.outbox.path)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in scenario.name)
    return Path("hes-sim-data") / safe / "outbox.sqlite3"


class Simulator:
    """One simulator run: owns the simpy environment, the seed and the fleet."""

    def __init__(
        self, scenario: Scenario, wall_clock: Callable[[], float] = time.time, source: str = "<scenario>",
        run_id: str | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed
        # Message and transaction IDs differ from run to run (an outbox may still hold an earlier
        # run's messages); payloads depend on the seed alone.
        self.run_id = run_id if run_id is not None else secrets.token_hex(8)
        self.fleet = Fleet(fleet_config(scenario))
        # Per-meter state that changes with what happens: supply interruptions, demand resets,
        # relay positions and the event history. Each costs memory only for what happened.
        self.supply = SupplyHistory()
        self.demand = DemandResets()
        self.events = EventLog()
        self.relay = RelayModel(self.fleet, relay_config(scenario, self.fleet, source), self.supply)
        self.readings = Readings(self.fleet, supply=self.supply, demand=self.demand)
        self.env = simpy.Environment()
        start = scenario.clock.start
        epoch = int(wall_clock()) if isinstance(start, str) else int(start.timestamp())
        self.clock = SimClock(self.env, epoch)
        self.comms = CommModel(self.fleet, comm_config(scenario, self.fleet, source))
        h = scenario.headend
        self.scheduler = JobScheduler(self.env, self.comms, max_in_flight=h.max_jobs_in_flight,
                                      max_queued=h.max_queued_jobs)
        r = scenario.replies
        # Until a server starts, async messages are kept in memory (embedding, tests).
        self.outbound = MemoryOutbound()
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
                max_outbox_backlog=h.max_outbox_backlog,
                max_events_per_reply=h.max_events_per_reply,
            ),
            ids=IdStream(scenario.seed, f"message:{self.run_id}"),
            scheduler=self.scheduler,
            replies=ReplySettings(style=r.style, part_size=r.part_size, delivery=r.delivery,
                                  ack_required=r.ack_required, sync_timeout_s=h.sync_timeout_s),
            faults=FaultInjector(self.fleet, fault_rules(scenario, self.fleet, source), scenario.seed),
            outbound=self.outbound,
            relay=self.relay,
            events=self.events,
            demand=self.demand,
            ping_control_type=h.ping_control_type,
            events_address=r.events_address,
            run_id=self.run_id,
            wall_clock=wall_clock,
        )
        self.soap = SoapService(self.headend, max_request_bytes=h.max_request_bytes)
        self.jms = JmsService(self.headend, max_request_bytes=h.max_request_bytes)
        event_destinations, reading_destinations = jms_destinations(scenario, source)
        if scenario.jms.enabled:
            self.headend.reply_schemes += JMS_SCHEMES
        # Unsolicited traffic: incidents and pushes run as one simpy process per kind from the start.
        d = scenario.destinations
        self.event_sender = EventSender(self.headend, event_destinations, d.ack_required)
        self.incidents = IncidentModel(self.env, self.fleet, self.clock, self.supply, self.relay, self.comms,
                                       self.events, incident_config(scenario), on_events=self.event_sender.send)
        self.incidents.start()
        self.pushes = PushScheduler(self.headend, push_specs(scenario, self.fleet, source), reading_destinations,
                                    d.ack_required)
        self.pushes.start()
        self.timeline = Timeline(self.headend, outage=self.incidents.outage, storm=self.incidents.storm,
                                 push_now=self.pushes.push_now,
                                 destination=event_destinations[0] if event_destinations else r.events_address)
        push_names = {p.name for p in scenario.pushes}
        for n, entry in enumerate(scenario.timeline):
            if entry.group is not None:
                _group(self.fleet, entry.group, source, f"timeline.{n}.group")
            if entry.comm_class is not None and entry.comm_class not in scenario.comms.classes:
                raise ScenarioError(source, f"timeline.{n}.comm_class", f"no comm class {entry.comm_class!r} in comms")
            if entry.push is not None and entry.push not in push_names:
                raise ScenarioError(source, f"timeline.{n}.push", f"no push named {entry.push!r} in pushes")
            for name in entry.meters:
                _meter(self.fleet, name, source, f"timeline.{n}.meters")
            self.timeline.schedule(entry.at_s, action_of(entry))

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


async def _step(what: str, action: Callable[[], Awaitable[object] | object]) -> None:
    """One shutdown step: run it, log a failure, never stop the steps after it."""
    try:
        result = action()
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("while stopping: %s failed", what)


@dataclass
class Delivery:
    """The way out: a locked SQLite outbox, its deliverer and the senders (SOAP, and JMS when on)."""

    outbox: Outbox
    outbound: DurableOutbound
    deliverer: OutboxDeliverer
    sender: SoapSender
    lock: IO[bytes]
    flusher: asyncio.Task[None]
    jms_sender: JmsSender | None = None

    async def close(self) -> None:
        self.flusher.cancel()
        await _step("store unsaved messages", self.outbound.flush)
        await _step("stop deliveries", self.deliverer.stop)
        await _step("close the HTTP client", self.sender.close)
        if self.jms_sender is not None:
            jms = self.jms_sender
            await _step("close the JMS sender", jms.close)
            await _step("close the JMS connection", lambda: asyncio.to_thread(jms.connection.close))
        await _step("close the outbox", self.outbox.close)
        await _step("release the outbox lock", self.lock.close)


def jms_connection(sim: Simulator) -> JmsConnection:
    j = sim.scenario.jms
    return JmsConnection(j.host, j.port, login=j.login, passcode=j.passcode)


async def open_delivery(sim: Simulator) -> Delivery:
    """Open the scenario's outbox (one run at a time), start delivering, route the head-end's messages to it.

    Messages left undelivered by an earlier run (even one that was killed) are delivered too.
    """
    o = sim.scenario.outbox
    path = outbox_path(sim.scenario)
    lock = _lock_outbox(path)
    try:
        outbox = Outbox(path, RetryPolicy(initial_s=o.retry_initial_s, factor=o.retry_factor,
                                          max_s=o.retry_max_s, max_attempts=o.max_attempts))
    except (OSError, sqlite3.Error) as exc:
        lock.close()
        raise SimulatorError(f"outbox.path: cannot open {path}: {exc}") from None
    sender = SoapSender(timeout_s=o.timeout_s, ack_check=is_positive_ack)
    jms_sender = None
    routes: list[tuple[tuple[str, ...], OutboundSender]] = [(("http://", "https://"), sender)]
    if sim.scenario.jms.enabled:
        # Connects on the first send; a broker that is down only delays delivery (the outbox retries).
        jms_sender = JmsSender(jms_connection(sim), jms_headers, persistent=sim.scenario.jms.persistent)
        routes.append((JMS_SCHEMES, jms_sender))
    deliverer = OutboxDeliverer(outbox, SchemeRouter(routes), concurrency=o.concurrency)
    deliverer.start()
    outbound = DurableOutbound(outbox, deliverer.wake)
    sim.headend.outbound = outbound
    flusher = asyncio.get_running_loop().create_task(_flush_forever(outbound), name="hes-sim outbox flush")
    return Delivery(outbox, outbound, deliverer, sender, lock, flusher, jms_sender)


@dataclass
class Served:
    sim: Simulator
    runner: web.AppRunner
    driver: LiveDriver
    delivery: Delivery
    base_url: str
    consumer: JmsConsumer | None = None

    @property
    def outbox(self) -> Outbox:
        return self.delivery.outbox

    def _cancel_jobs(self) -> None:
        self.sim.scheduler.cancel_all()
        self.driver.catch_up()  # deliver the final batches: sync answers, async results to the outbox

    async def close(self) -> None:
        """Stop in an order that loses nothing accepted.

        Running and queued jobs are cancelled first, so waiting synchronous callers get their
        answer (unreached meters: 4.1) and async results go to the outbox before the server and
        the deliverer stop. Each step runs even if an earlier one failed.
        """
        consumer = self.consumer
        if consumer is not None:
            await _step("stop taking JMS requests", consumer.stop_taking)
        await _step("cancel running jobs", self._cancel_jobs)
        if consumer is not None:
            await _step("finish JMS requests in hand", consumer.stop)
            await _step("close the JMS request connection", lambda: asyncio.to_thread(consumer.connection.close))
        await _step("stop the HTTP server", self.runner.cleanup)
        await _step("stop the sim clock", self.driver.stop)
        await self.delivery.close()


def _lock_outbox(path: Path) -> IO[bytes]:
    """One simulator per outbox: two would deliver the same messages and break their order."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("wb")
    except OSError as exc:
        raise SimulatorError(f"outbox.path: cannot use {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise SimulatorError(f"outbox.path: {path} is in use by another hes-sim run "
                             "(give this run its own --set outbox.path=...)") from None
    return handle


async def _flush_forever(outbound: DurableOutbound, every_s: float = 1.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        if outbound.unsaved:
            outbound.flush()


async def start_server(sim: Simulator, host: str, port: int) -> Served:
    """Start the outbox, the live driver and the HTTP server; returns once listening."""
    delivery = await open_delivery(sim)
    speed = sim.scenario.clock.speed
    driver = LiveDriver(sim.env, speed=speed)
    driver.start()
    sim.headend.before_request = driver.catch_up
    sim.headend.live = True
    longest_fault = max(getattr(sim.scenario.replies.faults, k).delay_s for k in ("late", "no_reply"))
    sim.soap.max_wait_s = (sim.scenario.headend.sync_timeout_s + longest_fault) / speed + 30.0
    sim.jms.max_wait_s = sim.soap.max_wait_s
    runner = web.AppRunner(make_app(sim.soap, ControlApi(sim.timeline, driver.catch_up)), access_log=None,
                           handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    served = Served(sim=sim, runner=runner, driver=driver, delivery=delivery, base_url="")
    try:
        await site.start()
        j = sim.scenario.jms
        if j.enabled:
            served.consumer = JmsConsumer(jms_connection(sim), j.request_queue, sim.jms,
                                          j.dead_letter_queue, prefetch=j.prefetch)
            await served.consumer.start()
    except OSError as exc:
        await served.close()
        raise SimulatorError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except JmsError as exc:
        await served.close()
        raise SimulatorError(f"jms: cannot take requests from {sim.scenario.jms.request_queue}: {exc} "
                             "(is a broker running? hes-sim broker starts one)") from None
    except BaseException:
        await served.close()
        raise
    addresses = runner.addresses
    actual = addresses[0][1] if addresses else port
    shown = f"[{host}]" if ":" in host else host
    served.base_url = f"http://{shown}:{actual}"
    return served


async def serve_forever(sim: Simulator, host: str, port: int, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGINT or SIGTERM, then close cleanly."""
    served = await start_server(sim, host, port)
    announce(sim.summary())
    pending = served.outbox.pending()
    announce(f"outbox {served.outbox.path}: {pending} message{'s' if pending != 1 else ''} to deliver")
    for name in sim.soap.service_names():
        announce(f"  POST {served.base_url}/{name}    WSDL {served.base_url}/{name}?wsdl")
    j = sim.scenario.jms
    if j.enabled:
        announce(f"JMS: requests from {j.request_queue} on {j.host}:{j.port} (STOMP); "
                 f"unanswerable ones to {j.dead_letter_queue}")
        topics = [t for t in (*sim.event_sender.destinations, *sim.pushes.destinations) if t.startswith(JMS_SCHEMES)]
        if topics:
            announce(f"  unsolicited messages to {', '.join(topics)}")
    announce(f"listening on {served.base_url} (Ctrl-C stops)")
    try:
        await wait_for_stop()
    finally:
        await served.close()

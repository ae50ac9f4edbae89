"""The head-end: routes 61968-100 requests on (verb, noun) and turns them into jobs in sim time.

`submit(msg, respond)` is the only entry: `respond` is called with the synchronous answer, now
or later in sim time. Whatever drives the simpy environment (the live driver in a server, or
`run_until` when the simulator is embedded without one) makes jobs progress.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import simpy
from lxml import etree

from ..cim import codes, ns
from ..cim.enddevicecontrols import normalise_control_type, parse_end_device_controls
from ..cim.envelope import InboundMessage
from ..cim.getenddeviceevents import parse_get_end_device_events
from ..cim.getmeterreadings import MeterReadingsQuery, parse_get_meter_readings
from ..cim.messages import ErrorItem, IdRef, OutHeader, Reply, status_item
from ..cim.schemas import validate
from ..errors import CimError
from ..ids import IdStream, derive_uuid
from ..model.clock import SimClock
from ..model.demand import DemandResets
from ..model.events import EventLog
from ..model.fleet import Fleet
from ..model.jobs import Job, JobBatch, JobScheduler, Overloaded
from ..model.readings import Readings
from ..model.relay import RelayModel
from ..timeutil import format_datetime_ms
from .controls import ControlDesk, accepted_reply
from .eventsquery import get_end_device_events
from .faults import ActiveFaults, FaultInjector
from .meterreadings import ReadLimits, ReadPlan, build_payload, prepare_read
from .ping import PING_READING_TYPE, PingReply
from .readjob import AsyncReadReply, OutboundPart, ReplySettings, ResultCollector, overall_reply
from .selection import select_meters


@dataclass(frozen=True)
class HeadEndSettings:
    source: str = "hes-sim"
    max_meters_per_request: int = 10_000
    max_readings_per_reply: int = 10_000_000
    validate_requests: bool = True
    validate_responses: bool = False
    max_outbox_backlog: int = 100_000
    max_events_per_reply: int = 100_000


@dataclass
class Outcome:
    """A synchronous answer: the reply, the payload document (bytes) and its noun.

    `transport_fault` asks the transport to misbehave on purpose ("http_500", "connection_reset");
    `corrupt` asks for a schema-invalid answer. Both come from the reply-fault settings.
    """

    noun: str
    reply: Reply
    payload: bytes | None = None
    transport_fault: str | None = None
    corrupt: bool = False
    correlation_id: str | None = None  # when the request had none: the one its async results carry


class Outbound(Protocol):
    """Where asynchronous messages go: the durable outbox, or a list in tests."""

    def put_parts(self, parts: Sequence[OutboundPart]) -> None: ...

    def backlog(self) -> int: ...


# Nouns we know, so an unknown noun (2.5) is told apart from a known noun with a verb we
# do not serve for it (2.9).
KNOWN_NOUNS = ("MeterReadings", "EndDeviceControls", "EndDeviceEvents")
Respond = Callable[[Outcome], None]


class HeadEnd:
    def __init__(
        self,
        fleet: Fleet,
        readings: Readings,
        clock: SimClock,
        settings: HeadEndSettings,
        ids: IdStream,
        scheduler: JobScheduler,
        replies: ReplySettings,
        faults: FaultInjector,
        outbound: Outbound,
        relay: RelayModel,
        events: EventLog,
        demand: DemandResets,
        ping_control_type: str = "3.1.0.0",
        events_address: str | None = None,
        run_id: str = "",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet = fleet
        self.readings = readings
        self.clock = clock
        self.env: simpy.Environment = clock.env
        self.settings = settings
        self.ids = ids
        self.scheduler = scheduler
        self.replies = replies
        self.faults = faults
        self.outbound = outbound
        self.relay = relay
        self.events = events
        self.demand = demand
        self.ping_control_type = normalise_control_type(ping_control_type) or ping_control_type
        self.events_address = events_address
        # Where async results may go: the outbox has a sender for each of these (JMS adds its own).
        self.reply_schemes: tuple[str, ...] = ("http://", "https://")
        self.run_id = run_id
        self.controls = ControlDesk(self)
        self.wall_clock = wall_clock
        self._keys = itertools.count()
        # Set by the live driver so every request sees the sim clock caught up to the wall clock.
        self.before_request: Callable[[], None] | None = None
        # True while a live driver advances the environment; otherwise requests drive it themselves.
        self.live = False
        self._routes: dict[tuple[str, str], Callable[[InboundMessage, Respond], None]] = {
            ("get", "MeterReadings"): self._get_meter_readings,
            ("create", "EndDeviceControls"): self._create_controls,
            ("cancel", "EndDeviceControls"): self._cancel_controls,
            ("get", "EndDeviceEvents"): self._get_end_device_events,
        }

    # -- routing -------------------------------------------------------------------------
    def submit(self, msg: InboundMessage, respond: Respond) -> None:
        """Serve one request; raises CimError for requests that cannot be served at all."""
        route = self.route_of(msg)
        if self.before_request is not None:
            self.before_request()
        route(msg, respond)
        if self.before_request is not None:
            # Run what the request made due right now (instant comms, immediate answers) instead of
            # leaving it for the live driver's next tick.
            self.before_request()

    def route_of(self, msg: InboundMessage) -> Callable[[InboundMessage, Respond], None]:
        """The route serving this verb and noun; raises CimError 2.5 (noun) or 2.9 (verb) when none does."""
        verb, noun = msg.header.verb, msg.header.noun
        route = self._routes.get((verb, noun))
        if route is None:
            served = ", ".join(f"{v} {n}" for v, n in self._routes)
            if noun not in KNOWN_NOUNS:
                raise CimError(codes.INVALID_NOUN, f"noun {noun!r} is not served here; served: {served}")
            raise CimError(codes.INVALID_VERB, f"verb {verb!r} is not served for {noun}; served: {served}")
        return route

    def run_until(self, done: Callable[[], bool]) -> None:
        """Drive the environment ourselves until `done()`: for use without a live driver."""
        while not done():
            if self.env.peek() == simpy.core.Infinity:
                raise RuntimeError("the simulation ran out of events before the request was answered")
            self.env.step()

    def header(self, msg: InboundMessage | None, verb: str, noun: str,
               properties: tuple[tuple[str, str | None], ...] = (), correlation_id: str | None = None,
               ack_required: bool | None = None) -> OutHeader:
        h = msg.header if msg is not None else None
        return OutHeader(
            verb=verb,
            noun=noun,
            message_id=self.ids.next(),
            correlation_id=correlation_id or (h.correlation_id or h.message_id if h else None),
            timestamp=format_datetime_ms(self.wall_clock()),
            source=self.settings.source,
            properties=properties,
            ack_required=ack_required,
        )

    def reply_header(self, msg: InboundMessage, noun: str, correlation_id: str | None = None) -> OutHeader:
        return self.header(msg, "reply", noun, correlation_id=correlation_id)

    # -- get MeterReadings ---------------------------------------------------------------
    def _get_meter_readings(self, msg: InboundMessage, respond: Respond) -> None:
        profile = _find_profile(msg, ns.GET_METER_READINGS, "GetMeterReadings")
        if self.settings.validate_requests:
            errors = validate(profile, "GetMeterReadings")
            if errors:
                raise CimError(codes.SCHEMA_INVALID, "the GetMeterReadings element is not valid: "
                               + "; ".join(errors[:3]))
        query = parse_get_meter_readings(profile)
        if tuple(query.reading_types) == (PING_READING_TYPE,):
            self._ping_read(msg, query, respond)
            return
        req = msg.request
        plan = prepare_read(
            self.fleet, self.readings, query,
            req.start_time if req else None, req.end_time if req else None,
            now=self.clock.now_unix(),
            limits=ReadLimits(self.settings.max_meters_per_request, self.settings.max_readings_per_reply),
        )
        key = next(self._keys)
        faults = self.faults.decide(key, plan.idx)
        ack = (_ack(),) if msg.header.ack_required else ()
        if msg.header.async_reply_flag:
            self._start_async(msg, plan, key, faults, ack, respond)
            return
        if plan.empty_range or not len(plan.idx):
            failed = Reply(codes.RESULT_FAILED, (*ack, *plan.item_errors))
            self._answer(respond, Outcome("MeterReadings", failed), faults)
            return
        self._start_sync(plan, key, faults, ack, respond)

    def _start_sync(self, plan: ReadPlan, key: int, faults: ActiveFaults, ack: tuple[ErrorItem, ...],
                    respond: Respond) -> None:
        collector = ResultCollector(self.fleet.mrids, plan.idx)
        good: list[np.ndarray] = []
        errors: list[ErrorItem] = []

        def on_batch(batch: JobBatch) -> None:
            g, e = collector.split(batch)
            good.append(g)
            errors.extend(e)
            if batch.final:
                positions = np.concatenate(good) if good else np.zeros(0, dtype=np.int64)
                # Meters in request order, as a synchronous reader expects.
                payload, meters = build_payload(self.fleet, self.readings, plan, np.sort(positions))
                reply = overall_reply(meters > 0, [*errors, *plan.item_errors], multipart=False, notes=ack)
                self._answer(respond, Outcome("MeterReadings", reply, payload), faults)

        self._cancel_at_sync_timeout(self._submit_job(plan.idx, key, on_batch, None))

    def _cancel_at_sync_timeout(self, job: Job) -> None:
        """A synchronous answer waits at most sync_timeout_s: then the meters not done report 4.1."""
        def cut(env: simpy.Environment):
            yield env.timeout(self.replies.sync_timeout_s)
            if not job.done.triggered:
                job.cancel()

        self.env.process(cut(self.env))

    def _start_async(self, msg: InboundMessage, plan: ReadPlan, key: int, faults: ActiveFaults,
                     ack: tuple[ErrorItem, ...], respond: Respond) -> None:
        address = self._reply_address(msg)
        if address is None:
            raise self._no_reply_address(msg)
        if self.outbound.backlog() >= self.settings.max_outbox_backlog:
            raise CimError(codes.BUSY, f"{self.outbound.backlog()} messages wait for delivery "
                           f"(setting headend.max_outbox_backlog); try again later")
        correlation = self.correlation_of(msg, key)
        transaction = self.uid("job", key)
        if not plan.empty_range and len(plan.idx):
            reply = AsyncReadReply(
                plan=plan,
                collector=ResultCollector(self.fleet.mrids, plan.idx),
                build_payload_for=lambda pos: build_payload(self.fleet, self.readings, plan, pos),
                header=lambda verb, props: self.header(None, verb, "MeterReadings", props, correlation,
                                                       self.replies.ack_required or None),
                settings=self.replies,
                faults=faults,
                destination=address,
                correlation_id=correlation,
                emit=self._emit,
            )
            self._submit_job(plan.idx, key, reply.on_batch, self.replies.part_size or None)
            result = codes.RESULT_PARTIAL if plan.item_errors else codes.RESULT_OK
        else:
            result = codes.RESULT_FAILED
        accepted = Reply(result, (*ack, *plan.item_errors),
                         ids=(IdRef(transaction, kind="transaction"),))
        self._answer(respond, Outcome("MeterReadings", accepted, correlation_id=correlation), faults,
                     sync_faults_only=True)

    # -- ping ------------------------------------------------------------------------------
    def _destination(self, msg: InboundMessage) -> str | None:
        address = self._reply_address(msg)
        if address is not None:
            return address
        if msg.header.async_reply_flag:
            raise self._no_reply_address(msg)
        return self.events_address

    def _reply_address(self, msg: InboundMessage) -> str | None:
        address = (msg.header.reply_address or "").strip()
        return address if address.startswith(self.reply_schemes) else None

    def _no_reply_address(self, msg: InboundMessage) -> CimError:
        kinds = "an http(s) URL" + (", queue:// or topic://" if "queue://" in self.reply_schemes else "")
        return CimError(codes.MANDATORY_FIELD_MISSING,
                        f"AsyncReplyFlag is true, so Header/ReplyAddress must say where results are sent: "
                        f"{kinds} (got {(msg.header.reply_address or '').strip()!r})")

    def _ping(self, msg: InboundMessage, idx: np.ndarray, item_errors: list[ErrorItem], key: int,
              sync: Respond | None, noun: str, correlation: str | None = None) -> None:
        """Start a ping job; sync answers through `sync`, otherwise results go to the destination."""
        correlation = correlation or self.correlation_of(msg, key)
        faults = self.faults.decide(key, idx)
        destination = None if sync else self._destination(msg)
        if sync is None and destination is None:
            raise CimError(codes.MANDATORY_FIELD_MISSING, "a ping needs a ReplyAddress (or replies.events_address) "
                           "to send its results to")

        def answer(reply: Reply, payload: bytes | None) -> None:
            assert sync is not None
            self._answer(sync, Outcome(noun, reply, payload), faults)

        ping = PingReply(
            fleet=self.fleet, idx=idx, epoch_unix=self.clock.epoch_unix, item_errors=item_errors,
            header=lambda verb, props: self.header(None, verb, "MeterReadings", props, correlation,
                                                   self.replies.ack_required or None),
            emit=lambda parts: self._emit(parts, faults.delay_s if "late" in faults else 0.0),
            destination=destination, correlation_id=correlation, ack_required=self.replies.ack_required,
            sync_answer=answer if sync is not None else None,
        )
        job = self._submit_job(idx, key, ping.on_batch, None)
        if sync is not None:
            self._cancel_at_sync_timeout(job)

    def _ping_read(self, msg: InboundMessage, query: MeterReadingsQuery, respond: Respond) -> None:
        sel = select_meters(self.fleet, self.settings.max_meters_per_request, query.end_devices, query.usage_points,
                            (*query.end_device_groups, *query.usage_point_groups))
        key = next(self._keys)
        ack = (_ack(),) if msg.header.ack_required else ()
        if not len(sel.indices):
            self._answer(respond, Outcome("MeterReadings", Reply(codes.RESULT_FAILED, (*ack, *sel.errors))),
                         ActiveFaults())
            return
        if not msg.header.async_reply_flag:
            self._ping(msg, sel.indices, sel.errors, key, respond, "MeterReadings")
            return
        self._ping(msg, sel.indices, sel.errors, key, None, "MeterReadings")
        accepted = Reply(codes.RESULT_PARTIAL if sel.errors else codes.RESULT_OK, (*ack, *sel.errors),
                         ids=(IdRef(self.uid("job", key), kind="transaction"),))
        respond(Outcome("MeterReadings", accepted, correlation_id=self.correlation_of(msg, key)))

    # -- EndDeviceControls -------------------------------------------------------------------
    def _create_controls(self, msg: InboundMessage, respond: Respond) -> None:
        payload = _validated(self, _find_profile(msg, ns.END_DEVICE_CONTROLS, "EndDeviceControls", in_payload=True),
                             "EndDeviceControls")
        items = parse_end_device_controls(payload)
        destination = self._destination(msg)
        ack = (_ack(),) if msg.header.ack_required else ()
        correlation = self.correlation_of(msg, next(self._keys))
        ping_items = [i for i in items if normalise_control_type(i.control_type or "") == self.ping_control_type]
        others = tuple(i for i in items if i not in ping_items)
        if ping_items and destination is None:  # refuse before anything starts
            raise CimError(codes.MANDATORY_FIELD_MISSING, "a ping needs a ReplyAddress (or replies.events_address) "
                           "to send its results to")
        controls, errors = self.controls.create(others, correlation, destination, lambda: next(self._keys))
        pinged = False
        for item in ping_items:
            sel = select_meters(self.fleet, self.settings.max_meters_per_request, item.end_devices,
                                item.usage_points, (*item.end_device_groups, *item.usage_point_groups))
            errors.extend(sel.errors)
            if len(sel.indices):
                self._ping(msg, sel.indices, list(sel.errors), next(self._keys), None, "EndDeviceControls",
                           correlation)
                pinged = True
        reply = accepted_reply(controls, errors, ack)
        if pinged and not controls:  # a ping alone: accepted unless every item failed
            reply = Reply(codes.RESULT_PARTIAL if errors else codes.RESULT_OK, (*ack, *errors))
        respond(Outcome("EndDeviceControls", reply, correlation_id=correlation))

    def _cancel_controls(self, msg: InboundMessage, respond: Respond) -> None:
        idents = [i.value for i in (*(msg.request.ids if msg.request else ()), *msg.payload_ids)]
        for el in (*(msg.request.elements if msg.request else ()), *msg.payload_elements):
            if el.tag == f"{{{ns.END_DEVICE_CONTROLS}}}EndDeviceControls":
                for item in parse_end_device_controls(_validated(self, el, "EndDeviceControls")):
                    idents += [v for v in (item.issuer_tracking_id, item.mrid) if v]
        reply = self.controls.cancel(list(dict.fromkeys(idents)))
        if msg.header.ack_required:
            reply = Reply(reply.result, (_ack(), *reply.errors), reply.ids)
        respond(Outcome("EndDeviceControls", reply))

    # -- EndDeviceEvents ---------------------------------------------------------------------
    def _get_end_device_events(self, msg: InboundMessage, respond: Respond) -> None:
        profile = _validated(self, _find_profile(msg, ns.GET_END_DEVICE_EVENTS, "GetEndDeviceEvents"),
                             "GetEndDeviceEvents")
        query = parse_get_end_device_events(profile)
        req = msg.request
        answer = get_end_device_events(self, query, req.start_time if req else None, req.end_time if req else None,
                                       self.settings.max_events_per_reply)
        reply = answer.reply
        if msg.header.ack_required:
            reply = Reply(reply.result, (_ack(), *reply.errors), reply.ids)
        respond(Outcome("EndDeviceEvents", reply, answer.payload))

    def correlation_of(self, msg: InboundMessage, key: int) -> str:
        """The CorrelationID tying a request's acceptance to its later results (made up if it sent none)."""
        return msg.header.correlation_id or msg.header.message_id or self.uid("corr", key)

    def uid(self, *parts: object) -> str:
        """An ID for this run: seeded, and distinct between runs (an outbox may hold an older run's)."""
        return derive_uuid(self.fleet.seed, self.run_id, *parts)

    def _submit_job(self, idx: np.ndarray, key: int, on_batch: Callable[[JobBatch], None],
                    batch_size: int | None):
        try:
            return self.scheduler.submit(idx, key, on_batch, batch_size)
        except Overloaded as exc:
            raise CimError(exc.code, exc.reason) from None

    def _emit(self, parts: list[OutboundPart], delay_s: float) -> None:
        if not parts:
            return
        if delay_s <= 0:
            self.outbound.put_parts(parts)
            return

        def later(env: simpy.Environment):
            yield env.timeout(delay_s)
            self.outbound.put_parts(parts)

        self.env.process(later(self.env))

    def _answer(self, respond: Respond, outcome: Outcome, faults: ActiveFaults, sync_faults_only: bool = False) -> None:
        """Apply the sync-answer faults, then respond (now or after a delay in sim time)."""
        delay = 0.0
        if "http_500" in faults:
            outcome.transport_fault = "http_500"
        elif "connection_reset" in faults:
            outcome.transport_fault = "connection_reset"
        if "invalid" in faults:
            outcome.corrupt = True
        if not sync_faults_only:
            if "no_reply" in faults:
                outcome.transport_fault = "connection_reset"
                delay = faults.delay_s
            elif "late" in faults:
                delay = faults.delay_s
        if delay <= 0:
            respond(outcome)
            return

        def later(env: simpy.Environment):
            yield env.timeout(delay)
            respond(outcome)

        self.env.process(later(self.env))


def _validated(self: HeadEnd, element: etree._Element, schema: str) -> etree._Element:
    if self.settings.validate_requests:
        errors = validate(element, schema)
        if errors:
            raise CimError(codes.SCHEMA_INVALID, f"the {etree.QName(element).localname} element is not valid: "
                           + "; ".join(errors[:3]))
    return element


def _ack() -> ErrorItem:
    return status_item(codes.ACKNOWLEDGED)


def _find_profile(msg: InboundMessage, namespace: str, local: str, in_payload: bool = False) -> etree._Element:
    tag = f"{{{namespace}}}{local}"
    for el in (*(msg.request.elements if msg.request else ()), *msg.payload_elements):
        if el.tag == tag:
            return el
    if in_payload:
        raise CimError(codes.PAYLOAD_MISSING, f"the message carries no {local} payload (namespace {namespace})")
    if msg.request is None:
        raise CimError(codes.REQUEST_MISSING, f"the message has no Request element; it must carry {local}")
    raise CimError(codes.REQUEST_MISSING, f"the Request carries no {local} element "
                   f"(namespace {namespace})")

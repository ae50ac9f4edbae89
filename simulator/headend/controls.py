"""create and cancel EndDeviceControls: relay operations, demand resets and load limits as jobs.

A control is accepted at once (the synchronous answer carries its transaction ID), waits for
its scheduled start (`primaryDeviceTiming/interval/start`), then reaches its meters through the
comm model. Each meter that acts produces an EndDeviceEvent (e.g. 3.31.0.68 disconnected, or
3.31.0.84 when the relay failed), sent as `CreatedEndDeviceEvents` with the request's
CorrelationID and the control's issuerTrackingID; when the job ends, an
`EndDeviceControlsResponseMessage` carries the outcome and one Error per meter that did not
act. Results go to the request's ReplyAddress, else to `replies.events_address`; with neither,
events are only kept for GetEndDeviceEvents.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import simpy

from ..cim import codes, ns
from ..cim.enddevicecontrols import ControlItem, ControlOut, build_end_device_controls, normalise_control_type
from ..cim.enddeviceevents import EventOut, build_end_device_events
from ..cim.messages import ErrorItem, IdRef, Reply, build_event, build_response, meter_error
from ..model.comms import OUTCOME_OK, OUTCOME_TIMEOUT
from ..model.events import Event
from ..model.jobs import Job, JobBatch, Overloaded
from ..timeutil import format_datetime
from .readjob import PER_METER_CODE, OutboundPart, overall_reply
from .selection import select_meters

if TYPE_CHECKING:
    from .dispatch import HeadEnd


@dataclass(frozen=True)
class ControlAction:
    name: str               # relay action ("disconnect", "connect", "arm") or "demand_reset", "load_limit"
    ok_event: str
    fail_event: str | None  # None: this action cannot fail at the meter


ACTIONS: dict[str, ControlAction] = {
    "3.31.0.23": ControlAction("disconnect", "3.31.0.68", "3.31.0.84"),
    "3.31.0.18": ControlAction("connect", "3.31.0.42", "3.31.0.67"),
    "3.31.0.5": ControlAction("arm", "3.31.0.11", "3.31.0.226"),
    "3.8.0.214": ControlAction("demand_reset", "3.8.0.214", None),
    "3.15.0.54": ControlAction("load_limit", "3.15.0.54", None),
    "3.15.0.55": ControlAction("load_limit", "3.15.0.55", None),
}
RELAY_STATES = ("connected", "disconnected", "armed")
EVENTS_WRAPPER = (ns.END_DEVICE_EVENTS_MSG, "CreatedEndDeviceEvents")
CONTROLS_REPLY = (ns.END_DEVICE_CONTROLS_MSG, "EndDeviceControlsResponseMessage")
CONTROLS_CREATED = (ns.END_DEVICE_CONTROLS_MSG, "CreatedEndDeviceControls")
SOAP_ACTION_EVENTS = "http://iec.ch/TC57/2011/EndDeviceEvents/CreatedEndDeviceEvents"
SOAP_ACTION_CONTROLS_CREATED = "http://iec.ch/TC57/2011/EndDeviceControls/CreatedEndDeviceControls"
KEEP_CONTROLS = 10_000  # controls remembered for cancel; a long live run would grow without bound


@dataclass
class Control:
    """One EndDeviceControl of a request, from acceptance to its last event."""

    transaction: str
    item: ControlItem
    code: str
    action: ControlAction
    meters: np.ndarray
    key: int
    correlation_id: str | None
    destination: str | None
    item_errors: list[ErrorItem]
    state: str = "scheduled"          # scheduled | running | done | canceled
    job: Job | None = None
    started_at: int | None = None
    acted: int = 0
    errors: list[ErrorItem] = field(default_factory=list)
    parts_sent: int = 0
    pending_events: list[Event] = field(default_factory=list)  # acted since the last part was sent
    part_meters: int = 0
    canceled_at: float | None = None  # sim time of a cancel while running


class ControlDesk:
    """Every control the head-end has accepted, findable for cancel by transaction, mRID or issuerTrackingID."""

    def __init__(self, headend: HeadEnd) -> None:
        self.he = headend
        self.controls: dict[str, Control] = {}

    # -- create ----------------------------------------------------------------------------
    def create(self, items: tuple[ControlItem, ...], correlation: str, destination: str | None,
               key_of: Callable[[], int]) -> tuple[list[Control], list[ErrorItem]]:
        he = self.he
        accepted: list[Control] = []
        errors: list[ErrorItem] = []
        for item in items:
            code = normalise_control_type(item.control_type) if item.control_type else None
            action = ACTIONS.get(code or "")
            if action is None:
                errors.append(ErrorItem(codes.NOT_ATTEMPTED, codes.level_for(codes.NOT_ATTEMPTED),
                                        f"EndDeviceControlType {item.control_type!r} is not supported; supported: "
                                        + ", ".join(ACTIONS), id=_control_id(item)))
                continue
            sel = select_meters(he.fleet, he.settings.max_meters_per_request, item.end_devices, item.usage_points,
                                (*item.end_device_groups, *item.usage_point_groups))
            errors.extend(sel.errors)
            if not len(sel.indices):
                continue
            key = key_of()
            control = Control(
                transaction=he.uid("control", key), item=item, code=code or "", action=action,
                meters=sel.indices, key=key, correlation_id=correlation, destination=destination,
                item_errors=list(sel.errors),
            )
            self.controls[control.transaction] = control
            self._forget_old()
            accepted.append(control)
            self._schedule(control)
        return accepted, errors

    def _schedule(self, control: Control) -> None:
        he = self.he
        start = control.item.start_time
        delay = 0.0 if start is None else max(0.0, float(start - he.clock.now_unix()))

        def run(env: simpy.Environment):
            if delay > 0:
                yield env.timeout(delay)
            if control.state != "scheduled":
                return
            control.state = "running"
            control.started_at = he.clock.now_unix()
            try:
                # A batch per sim second: each meter acts at the second it was reached, never later.
                control.job = he.scheduler.submit(control.meters, control.key, lambda b: self._on_batch(control, b),
                                                  per_second=True)
            except Overloaded as exc:  # accepted earlier, but the head-end is full when it is due
                control.errors += [meter_error(exc.code, m, f"not attempted: {exc.reason}")
                                   for m in he.fleet.mrids(control.meters)]
                control.state = "done"
                self._flush(control, final=True)
                self._send_final(control)

        he.env.process(run(he.env))

    def _on_batch(self, control: Control, batch: JobBatch) -> None:
        """Meters whose outcome became known this sim second: act now, report per meter in order."""
        he = self.he
        plan = batch.plan
        t = he.clock.now_unix()
        powered = he.relay.outages[plan.idx] == 0
        reached = (plan.outcome == OUTCOME_OK) & powered
        by_meter: dict[int, Event] = {}
        if reached.any():
            for acted in self._act(control, plan.idx[reached], t):
                by_meter[acted.meter] = acted
        mrids = he.fleet.mrids(plan.idx)
        for k, meter in enumerate(plan.idx.tolist()):
            ev = by_meter.get(meter)
            if ev is not None:
                control.pending_events.append(ev)
            elif not powered[k]:
                control.errors.append(meter_error(codes.TIMED_OUT, mrids[k], "the meter has no power (outage)"))
            elif plan.outcome[k] != OUTCOME_OK:
                code, reason = PER_METER_CODE.get(int(plan.outcome[k]), PER_METER_CODE[OUTCOME_TIMEOUT])
                if control.canceled_at is not None and plan.done_at[k] >= control.canceled_at:
                    code, reason = codes.CANCELLED_BY_USER, "the control was cancelled before this meter was reached"
                control.errors.append(meter_error(code, mrids[k], reason))
            control.part_meters += 1
            if he.replies.part_size and control.part_meters >= he.replies.part_size and not batch.final:
                self._flush(control, final=False)
        if batch.final:
            control.state = "done" if control.state != "canceled" else control.state
            self._flush(control, final=True)
            self._send_final(control)

    def _flush(self, control: Control, final: bool) -> None:
        """Send the events of the meters reported since the last part, as part k of n."""
        events, control.pending_events, control.part_meters = control.pending_events, [], 0
        self._send_events(control, events, final=final)

    def _act(self, control: Control, meters: np.ndarray, t: int) -> list[Event]:
        he = self.he
        a = control.action
        common = {"issuer_tracking_id": control.item.issuer_tracking_id, "correlation_id": control.correlation_id}
        details = (("ControlType", control.code), ("Transaction", control.transaction))
        if a.name in ("disconnect", "connect", "arm"):
            result = he.relay.operate(meters, a.name, t, control.key)
            out: list[Event] = []
            ok, failed = result.ok, ~result.ok
            control.acted += int(ok.sum())
            for state in np.unique(result.state_after[ok]).tolist():
                group = meters[ok & (result.state_after == state)]
                out += he.events.append(group, t, a.ok_event, details=(*details, ("RelayState", RELAY_STATES[state])),
                                        **common)
            if failed.any() and a.fail_event is not None:
                out += he.events.append(meters[failed], t, a.fail_event,
                                        details=(*details, ("Reason", "the relay did not operate")), **common)
                control.errors += [meter_error(codes.ATTEMPTED_AND_FAILED, m, "the relay did not operate")
                                   for m in he.fleet.mrids(meters[failed])]
            if a.name == "arm":
                self._customer_closings(control, meters, result.customer_close_at)
            return out
        if a.name == "demand_reset":
            he.demand.reset(meters, t)
        control.acted += len(meters)
        return he.events.append(meters, t, a.ok_event, details=details, **common)

    def _customer_closings(self, control: Control, meters: np.ndarray, close_at: np.ndarray) -> None:
        """One process per control walks the customers' closing times (nan: the customer never acts)."""
        he = self.he
        known = ~np.isnan(close_at)
        if not known.any():
            return
        order = np.argsort(close_at[known], kind="stable")
        times = close_at[known][order]
        who = meters[known][order]

        def walk(env: simpy.Environment):
            for t in np.unique(np.floor(times)).tolist():
                wait = he.clock.to_sim(int(t)) - env.now
                if wait > 0:
                    yield env.timeout(wait)
                group = who[np.floor(times) == t]
                closed = group[he.relay.customer_close(group, int(t))]
                if len(closed):
                    evs = he.events.append(closed, int(t), "3.31.0.42",
                                           issuer_tracking_id=control.item.issuer_tracking_id,
                                           correlation_id=control.correlation_id,
                                           details=(("RelayState", "connected"), ("ClosedBy", "customer"),
                                                    ("Transaction", control.transaction)))
                    self._send_events(control, evs, final=False, indexed=False)

        he.env.process(walk(he.env))

    # -- messages --------------------------------------------------------------------------
    def events_out(self, events: Sequence[Event]) -> list[EventOut]:
        """Events as the codec writes them; identity for the whole batch in vectorised calls.

        One meter at a time cost ~40 ms per 1,000 events, most of an outage storm's CPU.
        """
        if not events:
            return []
        f = self.he.fleet
        meters = np.fromiter((e.meter for e in events), dtype=np.int64, count=len(events))
        mrids, serials, ups = f.mrids(meters), f.serials(meters), f.usage_point_mrids(meters)
        stamps: dict[int, str] = {}
        source = self.he.settings.source
        return [
            EventOut(
                mrid=self.he.uid("event", ev.seq),
                created=stamps.get(ev.t) or stamps.setdefault(ev.t, format_datetime(ev.t)),
                event_type=ev.event_type, meter_mrid=mrids[k], meter_name=serials[k], usage_point_mrid=ups[k],
                issuer_id=source, issuer_tracking_id=ev.issuer_tracking_id, details=ev.details,
            )
            for k, ev in enumerate(events)
        ]

    def _send_events(self, control: Control, events: list[Event], final: bool, indexed: bool = True) -> None:
        if control.destination is None or (not events and not indexed):
            return
        he = self.he
        n = max(1, math.ceil(len(control.meters) / he.replies.part_size)) if he.replies.part_size else 1
        props: tuple[tuple[str, str | None], ...] = ()
        if indexed:
            control.parts_sent += 1
            k = control.parts_sent
            # A cancelled control ends early: its last part says so by closing the count (k/k).
            props = (("MessageIndex", f"{k}/{k if final else n}"),)
        payload = build_end_device_events(self.events_out(events)) if events else None
        header = he.header(None, "created", "EndDeviceEvents", props, control.correlation_id,
                           he.replies.ack_required or None)
        self._put(control, build_event(EVENTS_WRAPPER, header, payload), SOAP_ACTION_EVENTS)

    def _send_final(self, control: Control) -> None:
        if control.destination is None:
            return
        he = self.he
        if he.replies.style == "created":
            out = ControlOut(mrid=control.item.mrid, control_type=control.code, issuer_id=control.item.issuer_id,
                             issuer_tracking_id=control.item.issuer_tracking_id, reason=control.item.reason,
                             end_device_mrids=tuple(he.fleet.mrids(control.meters)),
                             start_time=format_datetime(control.started_at) if control.started_at else None)
            header = he.header(None, "created", "EndDeviceControls", (), control.correlation_id,
                               he.replies.ack_required or None)
            self._put(control, build_event(CONTROLS_CREATED, header, build_end_device_controls([out])),
                      SOAP_ACTION_CONTROLS_CREATED)
        reply = overall_reply(control.acted > 0, [*control.errors, *control.item_errors], multipart=False)
        reply = Reply(reply.result, reply.errors, ids=(IdRef(control.transaction, kind="transaction"),))
        header = he.header(None, "reply", "EndDeviceControls", (), control.correlation_id,
                           he.replies.ack_required or None)
        self._put(control, build_response(CONTROLS_REPLY, header, reply), "")

    def _put(self, control: Control, body: bytes, action: str) -> None:
        assert control.destination is not None
        self.he.outbound.put_parts([OutboundPart(control.destination, action, body,
                                                 control.correlation_id or control.transaction,
                                                 self.he.replies.ack_required)])

    def _forget_old(self) -> None:
        """Keep at most KEEP_CONTROLS: the oldest finished ones go (a cancel of those gets 2.15)."""
        excess = len(self.controls) - KEEP_CONTROLS
        if excess <= 0:
            return
        finished = [t for t, c in self.controls.items() if c.state in ("done", "canceled")][:excess]
        for t in finished:
            del self.controls[t]

    # -- cancel ----------------------------------------------------------------------------
    def find(self, ident: str) -> list[Control]:
        ident = ident.strip()
        if ident in self.controls:
            return [self.controls[ident]]
        return [c for c in self.controls.values() if ident in (c.item.mrid, c.item.issuer_tracking_id)]

    def cancel(self, idents: list[str]) -> Reply:
        """Cancel what has not run yet, report what had."""
        if not idents:
            return Reply(codes.RESULT_FAILED, (ErrorItem(codes.MANDATORY_FIELD_MISSING,
                                                         codes.level_for(codes.MANDATORY_FIELD_MISSING),
                                                         "name the control: Request/ID, Payload/ID, or "
                                                         "EndDeviceControl mRID or issuerTrackingID"),))
        errors: list[ErrorItem] = []
        ids: list[IdRef] = []
        canceled = 0
        for ident in idents:
            found = self.find(ident)
            if not found:
                errors.append(ErrorItem(codes.INVALID_REQUEST_ID, codes.level_for(codes.INVALID_REQUEST_ID),
                                        "no control with this transaction ID, mRID or issuerTrackingID",
                                        id=IdRef(ident, kind="name", object_type="EndDeviceControl")))
            for c in found:
                ids.append(IdRef(c.transaction, kind="transaction"))
                if c.state == "scheduled":
                    c.state = "canceled"
                    canceled += 1
                elif c.state == "running" and c.job is not None:
                    c.state = "canceled"
                    c.canceled_at = float(self.he.env.now)
                    canceled += 1
                    c.job.cancel()  # meters not yet reached are reported with 6.5
                elif c.state == "canceled":
                    errors.append(ErrorItem(codes.NOT_ATTEMPTED, codes.level_for(codes.NOT_ATTEMPTED),
                                            "this control was already cancelled",
                                            id=IdRef(c.transaction, kind="transaction")))
                else:
                    ran = format_datetime(c.started_at) if c.started_at else "earlier"
                    errors.append(ErrorItem(
                        codes.NOT_ATTEMPTED, codes.level_for(codes.NOT_ATTEMPTED),
                        f"too late: the control ran at {ran}; {c.acted} of {len(c.meters)} meters acted",
                        id=IdRef(c.transaction, kind="transaction")))
        if canceled and errors:
            result = codes.RESULT_PARTIAL
        elif canceled:
            result = codes.RESULT_OK
        else:
            result = codes.RESULT_FAILED
        return Reply(result, tuple(errors), ids=tuple(ids))


def _control_id(item: ControlItem) -> IdRef:
    if item.issuer_tracking_id:
        return IdRef(item.issuer_tracking_id, kind="name", object_type="EndDeviceControl")
    if item.mrid:
        return IdRef(item.mrid, kind="uuid", object_type="EndDeviceControl")
    return IdRef(str(item.index), kind="other", object_type="EndDeviceControl")


def accepted_reply(controls: list[Control], errors: list[ErrorItem], notes: tuple[ErrorItem, ...]) -> Reply:
    if not controls:
        return Reply(codes.RESULT_FAILED, (*notes, *errors))
    result = codes.RESULT_PARTIAL if errors else codes.RESULT_OK
    return Reply(result, (*notes, *errors), ids=tuple(IdRef(c.transaction, kind="transaction") for c in controls))

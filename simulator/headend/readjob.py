"""A get MeterReadings request as a job: meters answer in sim time, results leave per the reply plan.

Sync: the answer waits for the job, at most `sync_timeout_s` sim seconds; meters not done by then
are cancelled and reported with 4.1. Async: the request is accepted at once; results go to the
ReplyAddress through the outbox, in parts of at most `part_size` meters. Every part but the last
carries Result PARTIAL and code 0.1; the last carries the whole job's outcome (OK with 0.0,
PARTIAL with 0.2, or FAILED). Each part's Header has Property MessageIndex = k/n. Style
`created` sends Created<Noun> parts, which have no Reply, followed by one closing
<Noun>ResponseMessage with the outcome and every per-meter error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..cim import codes, ns
from ..cim.messages import ErrorItem, OutHeader, Reply, build_event, build_response, meter_error, status_item
from ..model.comms import OUTCOME_FAILED, OUTCOME_NO_DATA, OUTCOME_OK, OUTCOME_TIMEOUT
from ..model.jobs import JobBatch
from .faults import ActiveFaults, corrupt
from .meterreadings import ReadPlan

PER_METER_CODE = {
    OUTCOME_FAILED: (codes.ATTEMPTED_AND_FAILED, "the meter was contacted but the read failed"),
    OUTCOME_TIMEOUT: (codes.TIMED_OUT, "the meter did not answer in time"),
    OUTCOME_NO_DATA: (codes.DATA_UNAVAILABLE, "the meter answered but has no data for the request"),
}
REPLY_WRAPPER = (ns.METER_READINGS_MSG, "MeterReadingsResponseMessage")
CREATED_WRAPPER = (ns.METER_READINGS_MSG, "CreatedMeterReadings")
SOAP_ACTION_CREATED = "http://iec.ch/TC57/2011/MeterReadings/CreatedMeterReadings"
SOAP_ACTION_RESPONSE = ""  # no WSDL operation takes a ResponseMessage as input; see README


@dataclass(frozen=True)
class ReplySettings:
    style: str = "response"        # "response" | "created"
    part_size: int = 0             # 0: one message
    delivery: str = "as_completed"  # "as_completed" | "at_end"
    ack_required: bool = False
    sync_timeout_s: float = 60.0


@dataclass(frozen=True)
class OutboundPart:
    """One message for the outbox."""

    destination: str
    soap_action: str
    body: bytes
    correlation_id: str
    ack_required: bool


class ResultCollector:
    """Turns job batches into per-meter data positions and per-meter errors."""

    def __init__(self, fleet_mrids: Callable[[np.ndarray], list[str]], idx: np.ndarray) -> None:
        self._mrids = fleet_mrids
        order = np.argsort(idx, kind="stable")
        self._sorted = idx[order]
        self._order = order

    def positions(self, meters: np.ndarray) -> np.ndarray:
        return self._order[np.searchsorted(self._sorted, meters)]

    def split(self, batch: JobBatch) -> tuple[np.ndarray, list[ErrorItem]]:
        """Positions of meters with data (completion order) and errors for the rest."""
        p = batch.plan
        ok = p.outcome == OUTCOME_OK
        good = self.positions(p.idx[ok])
        errors: list[ErrorItem] = []
        bad = ~ok
        if bad.any():
            mrids = self._mrids(p.idx[bad])
            for mrid, outcome in zip(mrids, p.outcome[bad].tolist(), strict=True):
                code, reason = PER_METER_CODE[outcome]
                errors.append(meter_error(code, mrid, reason))
        return good, errors


def overall_reply(
    has_data: bool, errors: list[ErrorItem], multipart: bool, notes: tuple[ErrorItem, ...] = ()
) -> Reply:
    """The outcome of a whole job (sync answer, or the last part of an async one).

    `notes` (e.g. the 0.3 acknowledgement) are listed first and do not change the Result.
    """
    if not has_data:
        return Reply(codes.RESULT_FAILED, (*notes, *errors))
    if errors:
        status = (status_item(codes.PARTIAL_NONE_FOLLOW),) if multipart else ()
        return Reply(codes.RESULT_PARTIAL, (*notes, *status, *errors))
    return Reply(codes.RESULT_OK, (*notes, *((status_item(codes.OK),) if multipart else ())))


class AsyncReadReply:
    """Collects job batches into parts and hands finished messages to `emit` (the outbox)."""

    def __init__(
        self,
        *,
        plan: ReadPlan,
        collector: ResultCollector,
        build_payload_for: Callable[[np.ndarray], tuple[bytes | None, int]],
        header: Callable[[str, tuple[tuple[str, str | None], ...]], OutHeader],
        settings: ReplySettings,
        faults: ActiveFaults,
        destination: str,
        correlation_id: str,
        emit: Callable[[list[OutboundPart], float], None],
    ) -> None:
        self.plan = plan
        self.collector = collector
        self.build_payload_for = build_payload_for
        self.header = header
        self.settings = settings
        self.faults = faults
        self.destination = destination
        self.correlation_id = correlation_id
        self.emit = emit
        n = len(plan.idx)
        self.n_parts = max(1, math.ceil(n / settings.part_size)) if settings.part_size else 1
        self.part_no = 0
        self.held: list[OutboundPart] = []
        self.all_errors: list[ErrorItem] = []
        self.any_data = False

    # Called by the job scheduler in sim time.
    def on_batch(self, batch: JobBatch) -> None:
        good, errors = self.collector.split(batch)
        self.all_errors.extend(errors)
        payload, meters = self.build_payload_for(good) if len(good) else (None, 0)
        self.any_data = self.any_data or meters > 0
        self.part_no += 1
        k, n = self.part_no, self.n_parts
        last = batch.final
        parts = [self._part(k, n, last, payload, errors)]
        if "missing_part" in self.faults and n > 1 and k == self.faults.pick(n) + 1:
            parts = []  # this part is lost; its meters are never reported
        closing = [self._closing()] if last and self.settings.style == "created" else []
        self._release(parts, closing, last)

    def _part(self, k: int, n: int, last: bool, payload: bytes | None, errors: list[ErrorItem]) -> OutboundPart:
        props: tuple[tuple[str, str | None], ...] = (("MessageIndex", f"{k}/{n}"),)
        if self.settings.style == "created":
            head = self.header("created", props)
            body = build_event(CREATED_WRAPPER, head, payload)
            action = SOAP_ACTION_CREATED
        else:
            head = self.header("reply", props)
            if last:
                reply = overall_reply(self.any_data, [*errors, *self.plan.item_errors], self.n_parts > 1)
            else:
                reply = Reply(codes.RESULT_PARTIAL, (status_item(codes.PARTIAL_MORE_FOLLOW), *errors))
            body = build_response(REPLY_WRAPPER, head, reply, payload)
            action = SOAP_ACTION_RESPONSE
        return self._out(body, action)

    def _closing(self) -> OutboundPart:
        head = self.header("reply", ())
        reply = overall_reply(self.any_data, [*self.all_errors, *self.plan.item_errors], multipart=False)
        return self._out(build_response(REPLY_WRAPPER, head, reply, None), SOAP_ACTION_RESPONSE)

    def _out(self, body: bytes, action: str) -> OutboundPart:
        if "invalid" in self.faults:
            body = corrupt(body)
        return OutboundPart(self.destination, action, body, self.correlation_id, self.settings.ack_required)

    def _release(self, parts: list[OutboundPart], closing: list[OutboundPart], last: bool) -> None:
        f = self.faults
        hold = self.settings.delivery == "at_end" or "out_of_order" in f
        self.held.extend(parts)
        if hold and not last:
            return
        out, self.held = self.held, []
        if "no_reply" in f:
            return
        if last and "out_of_order" in f:
            out.reverse()  # the data parts only: a closing summary stays last
        out += closing
        if "duplicate" in f:
            out = [p for part in out for p in (part, replace(part))]
        delay = f.delay_s if "late" in f else 0.0
        self.emit(out, delay)

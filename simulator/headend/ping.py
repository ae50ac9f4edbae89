"""Ping: is each meter reachable, and how long did it take to answer?

Asked as an on-demand read (GetMeterReadings whose only ReadingType is PING_READING_TYPE) or as
an EndDeviceControl whose type is `headend.ping_control_type`. Both give the three-message
pattern: the synchronous acceptance (with the job's transaction ID), then to the ReplyAddress
a `MeterReadingsResponseMessage` "1/2" (Result PARTIAL, code 0.1) with one reading per meter
that answered, and a final "2/2" with the outcome (0.0, or 0.2 / FAILED with an Error per
unreachable meter). A synchronous ping read (no AsyncReplyFlag) gets all of it in one answer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..cim import codes
from ..cim.messages import ErrorItem, OutHeader, Reply, build_response, status_item
from ..cim.meterreadings import MeterReadingData, ReadingData, build_meter_readings
from ..model.comms import OUTCOME_OK
from ..model.fleet import Fleet
from ..model.jobs import JobBatch
from ..timeutil import format_datetime
from .readjob import REPLY_WRAPPER, OutboundPart, ResultCollector, overall_reply

# energization check, instantaneous, electricity; unit 27 (s): the value is the round-trip time in
# seconds, the timestamp when the meter answered. Our convention: no public ping code is known.
PING_READING_TYPE = "0.0.0.12.0.1.11.0.0.0.0.0.0.0.0.0.27.0"


def ping_payload(fleet: Fleet, batch_plan, epoch_unix: int) -> bytes | None:
    """One Readings entry per meter that answered: round-trip seconds at the time it answered."""
    ok = batch_plan.outcome == OUTCOME_OK
    meters = batch_plan.idx[ok]
    if not len(meters):
        return None
    rtt_ms = np.rint(batch_plan.rtt_s[ok] * 1000).astype(np.int64)
    answered = np.floor(batch_plan.done_at[ok]).astype(np.int64) + epoch_unix
    mrids, serials = fleet.mrids(meters), fleet.serials(meters)
    ups, upn = fleet.usage_point_mrids(meters), fleet.usage_point_names(meters)
    docs = [
        MeterReadingData(meter_mrid=mrids[k], meter_name=serials[k], usage_point_mrid=ups[k], usage_point_name=upn[k],
                         values_interval=None, interval_blocks=(),
                         readings=(ReadingData(PING_READING_TYPE, format_datetime(int(answered[k])),
                                               int(rtt_ms[k]), decimals=3),))
        for k in range(len(meters))
    ]
    return build_meter_readings(docs)


class PingReply:
    """Collects the job and sends results then the final message (or answers in one, when sync)."""

    def __init__(self, *, fleet: Fleet, idx: np.ndarray, epoch_unix: int, item_errors: list[ErrorItem],
                 header: Callable[[str, tuple[tuple[str, str | None], ...]], OutHeader],
                 emit: Callable[[list[OutboundPart]], None] | None, destination: str | None,
                 correlation_id: str, ack_required: bool,
                 sync_answer: Callable[[Reply, bytes | None], None] | None = None) -> None:
        self.fleet = fleet
        self.collector = ResultCollector(fleet.mrids, idx)
        self.epoch = epoch_unix
        self.item_errors = item_errors
        self.header = header
        self.emit = emit
        self.destination = destination
        self.correlation_id = correlation_id
        self.ack_required = ack_required
        self.sync_answer = sync_answer

    def on_batch(self, batch: JobBatch) -> None:
        assert batch.final  # pings run as one batch
        _, errors = self.collector.split(batch)
        payload = ping_payload(self.fleet, batch.plan, self.epoch)
        final = overall_reply(payload is not None, [*errors, *self.item_errors], multipart=self.sync_answer is None)
        if self.sync_answer is not None:
            self.sync_answer(final, payload)
            return
        assert self.emit is not None and self.destination is not None
        status = status_item(codes.PARTIAL_MORE_FOLLOW)
        results = build_response(REPLY_WRAPPER, self.header("reply", (("MessageIndex", "1/2"),)),
                                 Reply(codes.RESULT_PARTIAL, (status,)), payload)
        closing = build_response(REPLY_WRAPPER, self.header("reply", (("MessageIndex", "2/2"),)), final)
        self.emit([OutboundPart(self.destination, "", body, self.correlation_id, self.ack_required)
                   for body in (results, closing)])


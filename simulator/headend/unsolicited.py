"""Events nobody asked for (outages, tamper, storms) on their way to the MDMS.

Events that happen in the same sim second are sent together, up to `batch_events` per
`CreatedEndDeviceEvents` message, to every events destination.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..cim import ns
from ..cim.enddeviceevents import build_end_device_events
from ..cim.messages import build_event
from ..model.events import Event
from .readjob import OutboundPart

if TYPE_CHECKING:
    from .dispatch import HeadEnd

EVENTS_WRAPPER = (ns.END_DEVICE_EVENTS_MSG, "CreatedEndDeviceEvents")
SOAP_ACTION = "http://iec.ch/TC57/2011/EndDeviceEvents/CreatedEndDeviceEvents"


class EventSender:
    def __init__(self, headend: HeadEnd, destinations: Sequence[str], ack_required: bool = False,
                 batch_events: int = 1000) -> None:
        self.he = headend
        self.destinations = tuple(destinations)
        self.ack_required = ack_required
        self.batch_events = batch_events
        self.sent_events = 0
        self.messages = 0

    def send(self, events: list[Event]) -> None:
        if not events or not self.destinations:
            return
        he = self.he
        for start in range(0, len(events), self.batch_events):
            chunk = events[start:start + self.batch_events]
            correlation = he.uid("events", chunk[0].seq)
            header = he.header(None, "created", "EndDeviceEvents", (), correlation, self.ack_required or None)
            body = build_event(EVENTS_WRAPPER, header, build_end_device_events(he.controls.events_out(chunk)))
            he.outbound.put_parts([OutboundPart(d, SOAP_ACTION, body, correlation, self.ack_required)
                                   for d in self.destinations])
            self.messages += 1
            self.sent_events += len(chunk)

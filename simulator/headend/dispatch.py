"""The head-end: routes 61968-100 requests on (verb, noun) to the handlers that serve them.

A handler returns a Reply and an optional payload; how those travel (SOAP, later JMS; typed or
generic wrapper) is decided by the adapter that called us, not here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from ..cim import codes, ns
from ..cim.envelope import InboundMessage, OutHeader, Reply
from ..cim.getmeterreadings import parse_get_meter_readings
from ..cim.schemas import validate
from ..errors import CimError
from ..ids import IdStream
from ..model.clock import SimClock
from ..model.fleet import Fleet
from ..model.readings import Readings
from ..timeutil import format_datetime_ms
from .meterreadings import ReadLimits, get_meter_readings


@dataclass(frozen=True)
class HeadEndSettings:
    source: str = "hes-sim"
    max_meters_per_request: int = 10_000
    max_readings_per_reply: int = 10_000_000
    validate_requests: bool = True
    validate_responses: bool = False


@dataclass
class Outcome:
    """What a handler produced: the reply, the payload document (bytes) and its noun."""

    noun: str
    reply: Reply
    payload: bytes | None = None


# Nouns we know, so an unknown noun (2.5) is told apart from a known noun with a verb we
# do not serve for it (2.9).
KNOWN_NOUNS = ("MeterReadings",)


class HeadEnd:
    def __init__(
        self,
        fleet: Fleet,
        readings: Readings,
        clock: SimClock,
        settings: HeadEndSettings,
        ids: IdStream,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet = fleet
        self.readings = readings
        self.clock = clock
        self.settings = settings
        self.ids = ids
        self.wall_clock = wall_clock
        # Set by the live driver so every request sees the sim clock caught up to the wall clock.
        self.before_request: Callable[[], None] | None = None
        self._routes: dict[tuple[str, str], Callable[[InboundMessage], Outcome]] = {
            ("get", "MeterReadings"): self._get_meter_readings,
        }

    # -- routing -------------------------------------------------------------------------
    def handle(self, msg: InboundMessage) -> Outcome:
        """Serve one request; raises CimError for requests that cannot be served at all."""
        verb, noun = msg.header.verb, msg.header.noun
        route = self._routes.get((verb, noun))
        if route is None:
            if noun not in KNOWN_NOUNS:
                raise CimError(codes.INVALID_NOUN, f"noun {noun!r} is not served here; served: "
                               + ", ".join(f"{v} {n}" for v, n in self._routes))
            raise CimError(codes.INVALID_VERB, f"verb {verb!r} is not served for {noun}; served: "
                           + ", ".join(f"{v} {n}" for v, n in self._routes))
        if self.before_request is not None:
            self.before_request()
        return route(msg)

    def reply_header(self, msg: InboundMessage, noun: str) -> OutHeader:
        h = msg.header
        return OutHeader(
            verb="reply",
            noun=noun,
            message_id=self.ids.next(),
            correlation_id=h.correlation_id or h.message_id,
            timestamp=format_datetime_ms(self.wall_clock()),
            source=self.settings.source,
        )

    # -- get MeterReadings ---------------------------------------------------------------
    def _get_meter_readings(self, msg: InboundMessage) -> Outcome:
        profile = _find_profile(msg, ns.GET_METER_READINGS, "GetMeterReadings")
        if self.settings.validate_requests:
            errors = validate(profile, "GetMeterReadings")
            if errors:
                raise CimError(codes.SCHEMA_INVALID, "the GetMeterReadings element is not valid: "
                               + "; ".join(errors[:3]))
        query = parse_get_meter_readings(profile)
        req = msg.request
        answer = get_meter_readings(
            self.fleet, self.readings, query,
            req.start_time if req else None, req.end_time if req else None,
            now=self.clock.now_unix(),
            limits=ReadLimits(self.settings.max_meters_per_request, self.settings.max_readings_per_reply),
        )
        return Outcome(noun="MeterReadings", reply=answer.reply, payload=answer.payload)


def _find_profile(msg: InboundMessage, namespace: str, local: str) -> etree._Element:
    tag = f"{{{namespace}}}{local}"
    for el in (*(msg.request.elements if msg.request else ()), *msg.payload_elements):
        if el.tag == tag:
            return el
    if msg.request is None:
        raise CimError(codes.REQUEST_MISSING, f"the message has no Request element; it must carry {local}")
    raise CimError(codes.REQUEST_MISSING, f"the Request carries no {local} element "
                   f"(namespace {namespace})")

"""The GetEndDeviceEvents profile (IEC 61968-9): which events the MDMS asks for, as plain data.

Filters of different kinds narrow together (meters, groups and usage points say whose events;
event types which; TimeSchedule intervals when), and an empty list means "no filter" on that
kind. The profile also offers Customer, ServiceCategory and EndDeviceEvent filters, which the
simulator cannot resolve; rather than silently answering with every event, the query lists them
in `unsupported_filters` so the head-end can refuse or warn. The envelope's Request/StartTime
and EndTime are not folded in here: the head-end decides, as for GetMeterReadings.

In this profile an EndDeviceEventType is named by `mRID` or `Names/name` (it has no `ref`);
`ref="..."` is accepted too because the EndDeviceEvents profile uses it and clients mix them up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from simulator.cim.envelope import InboundMessage, OutHeader, build_request
from simulator.cim.getmeterreadings import ObjRef
from simulator.cim.ns import GET_END_DEVICE_EVENTS, GET_END_DEVICE_EVENTS_MSG
from simulator.cim.profileread import Period, obj_ref, obj_refs, period_of, profile_namespace
from simulator.cim.xml import xml_escape
from simulator.errors import CimError
from simulator.timeutil import format_datetime

UNSUPPORTED_FILTERS: tuple[str, ...] = ("Customer", "EndDeviceEvent", "ServiceCategory")


@dataclass(frozen=True, slots=True)
class EventsQuery:
    meters: tuple[ObjRef, ...] = ()  # Meter elements
    end_device_groups: tuple[ObjRef, ...] = ()
    usage_points: tuple[ObjRef, ...] = ()
    event_types: tuple[str, ...] = ()  # EndDeviceEventType codes as given (mRID, first name or ref)
    periods: tuple[Period, ...] = ()  # TimeSchedule/scheduleInterval (start, end)
    unsupported_filters: tuple[str, ...] = ()  # names from UNSUPPORTED_FILTERS present in the request


def _event_type(el: etree._Element, ns: str) -> str:
    ref = (el.get("ref") or "").strip()
    if ref:
        return ref
    obj = obj_ref(el, ns)
    code = obj.mrid or (obj.names[0] if obj.names else None)
    if code is None:
        raise CimError("1.8", "an EndDeviceEventType filter names no code: give mRID or Names/name")
    return code


def parse_get_end_device_events(el: etree._Element) -> EventsQuery:
    """Read a GetEndDeviceEvents profile element; CimError 1.8 (bad root, dateTime or type filter)."""
    ns = profile_namespace(el, "GetEndDeviceEvents")
    periods = []
    for schedule in el.iterfind(f"{{{ns}}}TimeSchedule"):
        interval = schedule.find(f"{{{ns}}}scheduleInterval")
        if interval is not None:
            periods.append(period_of(interval, ns, "TimeSchedule/scheduleInterval"))
    return EventsQuery(
        meters=obj_refs(el, ns, "Meter"),
        end_device_groups=obj_refs(el, ns, "EndDeviceGroup"),
        usage_points=obj_refs(el, ns, "UsagePoint"),
        event_types=tuple(_event_type(e, ns) for e in el.iterfind(f"{{{ns}}}EndDeviceEventType")),
        periods=tuple(periods),
        unsupported_filters=tuple(f for f in UNSUPPORTED_FILTERS if el.find(f"{{{ns}}}{f}") is not None),
    )


def events_query_from_message(message: InboundMessage) -> EventsQuery:
    """The query of a `get EndDeviceEvents` message, under Request (or, tolerated, Payload); else 1.6."""
    element = message.find_element("GetEndDeviceEvents")
    if element is None:
        raise CimError("1.6", "the request carries no GetEndDeviceEvents element under Request")
    return parse_get_end_device_events(element)


# ----------------------------------------------------------------------------------- building


def _refs_xml(name: str, refs: Iterable[ObjRef]) -> str:
    out = []
    for ref in refs:
        mrid = "" if ref.mrid is None else f"<mRID>{xml_escape(ref.mrid)}</mRID>"
        names = "".join(f"<Names><name>{xml_escape(n)}</name></Names>" for n in ref.names)
        out.append(f"<{name}>{mrid}{names}</{name}>")
    return "".join(out)


def _period_xml(period: Period) -> str:
    start, end = period
    end_xml = "" if end is None else f"<end>{format_datetime(end)}</end>"
    start_xml = "" if start is None else f"<start>{format_datetime(start)}</start>"
    return f"<TimeSchedule><scheduleInterval>{end_xml}{start_xml}</scheduleInterval></TimeSchedule>"


def build_get_end_device_events(query: EventsQuery) -> bytes:
    """The profile element for a query (tests and examples), in the profile's element order.

    Event types are written as `mRID`; `unsupported_filters` are not written (they carry no values).
    """
    return "".join(
        (
            f'<GetEndDeviceEvents xmlns="{GET_END_DEVICE_EVENTS}">',
            "".join(
                f"<EndDeviceEventType><mRID>{xml_escape(code)}</mRID></EndDeviceEventType>"
                for code in query.event_types
            ),
            _refs_xml("EndDeviceGroup", query.end_device_groups),
            _refs_xml("Meter", query.meters),
            "".join(_period_xml(p) for p in query.periods),
            _refs_xml("UsagePoint", query.usage_points),
            "</GetEndDeviceEvents>",
        )
    ).encode()


def build_get_end_device_events_request(
    query: EventsQuery,
    header: OutHeader,
    *,
    typed: bool = True,
    start_time: str | None = None,
    end_time: str | None = None,
) -> bytes:
    """A whole request: the typed `GetEndDeviceEvents` wrapper, or a generic `RequestMessage`."""
    wrapper = f"{{{GET_END_DEVICE_EVENTS_MSG}}}GetEndDeviceEvents" if typed else None
    return build_request(
        wrapper,
        header,
        start_time=start_time,
        end_time=end_time,
        request_elements=(build_get_end_device_events(query),),
    )

"""The GetMeterReadings profile (IEC 61968-9): what the MDMS asks for, as plain data.

The head-end never sees XML: it gets a `MeterReadingsQuery` of object references, ReadingType
codes and unix-second periods. The standard offers two places for the time range
(`Reading/timePeriod` and `TimeSchedule/scheduleInterval`, plus the envelope's
`Request/StartTime`/`EndTime`) and does not say which wins, so all are kept and the head-end
decides. A ReadingType may come as `<mRID>`, as `<Names><name>` or as `ref="..."`; all three
are accepted because all three are seen in the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from simulator.cim.envelope import InboundMessage, OutHeader, build_request
from simulator.cim.ns import GET_METER_READINGS, GET_METER_READINGS_MSG
from simulator.cim.profileread import ObjRef, Period, obj_ref, obj_refs, period_of, text
from simulator.errors import CimError
from simulator.timeutil import format_datetime

_PROFILE_NS = re.compile(r"^http://iec\.ch/TC57/(2011|2015|2017)/GetMeterReadings#$")

@dataclass(frozen=True, slots=True)
class MeterReadingsQuery:
    end_devices: tuple[ObjRef, ...] = ()
    end_device_groups: tuple[ObjRef, ...] = ()
    usage_points: tuple[ObjRef, ...] = ()
    usage_point_groups: tuple[ObjRef, ...] = ()
    reading_types: tuple[str, ...] = ()
    reading_periods: tuple[Period, ...] = ()  # from Reading/timePeriod, in document order
    schedule_periods: tuple[Period, ...] = ()  # from TimeSchedule/scheduleInterval
    reading_reasons: tuple[str, ...] = ()  # from Reading/reason


def _reading_type(el: etree._Element, ns: str) -> str:
    ref = (el.get("ref") or "").strip()
    if ref:
        return ref
    obj = obj_ref(el, ns)
    code = obj.mrid or (obj.names[0] if obj.names else None)
    if code is None:
        raise CimError("2.6", "a ReadingType names no code: give mRID, Names/name or ref")
    return code


def parse_get_meter_readings(element: etree._Element) -> MeterReadingsQuery:
    """Read a GetMeterReadings profile element; CimError 1.8 (bad element or dateTime) or 2.6."""
    tag = element.tag
    if not isinstance(tag, str):
        raise CimError("1.8", "GetMeterReadings expected, found a non-element node")
    qname = etree.QName(tag)
    if qname.localname != "GetMeterReadings" or not _PROFILE_NS.match(qname.namespace or ""):
        raise CimError("1.8", f"expected {{{GET_METER_READINGS}}}GetMeterReadings, found {tag}")
    ns = qname.namespace or ""

    def refs(name: str) -> tuple[ObjRef, ...]:
        return obj_refs(element, ns, name)

    reading_periods: list[Period] = []
    reasons: list[str] = []
    for reading in element.iterfind(f"{{{ns}}}Reading"):
        reason = text(reading.find(f"{{{ns}}}reason"))
        if reason is not None:
            reasons.append(reason)
        period_el = reading.find(f"{{{ns}}}timePeriod")
        if period_el is not None:
            reading_periods.append(period_of(period_el, ns, "GetMeterReadings Reading/timePeriod"))
    schedule_periods = []
    for schedule in element.iterfind(f"{{{ns}}}TimeSchedule"):
        interval = schedule.find(f"{{{ns}}}scheduleInterval")
        if interval is not None:
            schedule_periods.append(period_of(interval, ns, "GetMeterReadings TimeSchedule/scheduleInterval"))
    return MeterReadingsQuery(
        end_devices=refs("EndDevice"),
        end_device_groups=refs("EndDeviceGroup"),
        usage_points=refs("UsagePoint"),
        usage_point_groups=refs("UsagePointGroup"),
        reading_types=tuple(_reading_type(e, ns) for e in element.iterfind(f"{{{ns}}}ReadingType")),
        reading_periods=tuple(reading_periods),
        schedule_periods=tuple(schedule_periods),
        reading_reasons=tuple(reasons),
    )


def query_from_message(message: InboundMessage) -> MeterReadingsQuery:
    """The query of a `get MeterReadings` message, found under Request (or, tolerated, Payload).

    A message without one answers 1.6: the Get profile is the mandatory part of a Get request.
    """
    element = message.find_element("GetMeterReadings")
    if element is None:
        raise CimError("1.6", "the request carries no GetMeterReadings element under Request")
    return parse_get_meter_readings(element)


# ------------------------------------------------------------------------------ building


def _add_ref(parent: etree._Element, name: str, ref: ObjRef) -> None:
    el = etree.SubElement(parent, f"{{{GET_METER_READINGS}}}{name}")
    if ref.mrid is not None:
        etree.SubElement(el, f"{{{GET_METER_READINGS}}}mRID").text = ref.mrid
    for n in ref.names:
        names = etree.SubElement(el, f"{{{GET_METER_READINGS}}}Names")
        etree.SubElement(names, f"{{{GET_METER_READINGS}}}name").text = n


def _add_period(parent: etree._Element, name: str, period: Period) -> None:
    el = etree.SubElement(parent, f"{{{GET_METER_READINGS}}}{name}")
    start, end = period
    # DateTimeInterval is an xs:sequence of end, then start.
    if end is not None:
        etree.SubElement(el, f"{{{GET_METER_READINGS}}}end").text = format_datetime(end)
    if start is not None:
        etree.SubElement(el, f"{{{GET_METER_READINGS}}}start").text = format_datetime(start)


def build_get_meter_readings(query: MeterReadingsQuery) -> bytes:
    """The profile element for a query (tests and examples); Reading i pairs period i with reason i."""
    m = f"{{{GET_METER_READINGS}}}"
    root = etree.Element(f"{m}GetMeterReadings", nsmap={None: GET_METER_READINGS})

    def add_all(name: str, refs: Iterable[ObjRef]) -> None:
        for ref in refs:
            _add_ref(root, name, ref)

    add_all("EndDevice", query.end_devices)
    add_all("EndDeviceGroup", query.end_device_groups)
    for i in range(max(len(query.reading_periods), len(query.reading_reasons))):
        reading = etree.SubElement(root, f"{m}Reading")
        if i < len(query.reading_reasons):
            etree.SubElement(reading, f"{m}reason").text = query.reading_reasons[i]
        if i < len(query.reading_periods):
            _add_period(reading, "timePeriod", query.reading_periods[i])
    for code in query.reading_types:
        rt = etree.SubElement(root, f"{m}ReadingType")
        etree.SubElement(rt, f"{m}mRID").text = code
    for period in query.schedule_periods:
        schedule = etree.SubElement(root, f"{m}TimeSchedule")
        _add_period(schedule, "scheduleInterval", period)
    add_all("UsagePoint", query.usage_points)
    add_all("UsagePointGroup", query.usage_point_groups)
    return etree.tostring(root)


def build_get_meter_readings_request(
    query: MeterReadingsQuery,
    header: OutHeader,
    *,
    typed: bool = True,
    start_time: str | None = None,
    end_time: str | None = None,
) -> bytes:
    """A whole request: the typed `GetMeterReadings` wrapper, or a generic `RequestMessage`."""
    wrapper = f"{{{GET_METER_READINGS_MSG}}}GetMeterReadings" if typed else None
    return build_request(
        wrapper,
        header,
        start_time=start_time,
        end_time=end_time,
        request_elements=(build_get_meter_readings(query),),
    )

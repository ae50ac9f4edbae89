"""EndDeviceEvents payloads (IEC 61968-9): what happened to meters, for the MDMS.

A group disconnect or a mass outage produces one event per meter at once, so the builder is
written for storms: escaped text slotted into string templates, with the fragments that repeat
across events (a meter's Assets and UsagePoint, an event type, a control's details) escaped once
per document and looked up after that. `parse_end_device_events` reads the document back into
the same `EventOut` values (for the MDMS stand-in and the tests).

The profile has no EndDevice or Meter element: the meter is the event's `Assets` (mRID and
Names/name). An EndDeviceEventDetail value is a StringQuantity, which every public copy of the
profile declares as a plain xs:string restriction, so it is written as text.

Element order follows the profile's xs:sequence: mRID, createdDateTime, issuerID,
issuerTrackingID, reason, severity, userID, Assets, EndDeviceEventDetails, EndDeviceEventType,
UsagePoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from simulator.cim.ns import END_DEVICE_EVENTS
from simulator.cim.profileread import child_text, datetime_of, obj_ref, profile_namespace, text
from simulator.cim.xml import xml_escape


@dataclass(frozen=True, slots=True)
class EventOut:
    mrid: str  # the event's own id (a seeded uuid)
    created: str  # xs:dateTime text: the sim time it happened
    event_type: str  # e.g. "3.31.0.68"
    meter_mrid: str  # -> Assets/mRID
    meter_name: str | None  # -> Assets/Names/name
    usage_point_mrid: str | None  # -> UsagePoint/mRID
    issuer_id: str | None = None
    issuer_tracking_id: str | None = None
    reason: str | None = None
    severity: str | None = None
    user_id: str | None = None
    details: tuple[tuple[str, str], ...] = ()  # EndDeviceEventDetails name/value


def _opt(name: str, value: str | None) -> str:
    return "" if value is None else f"<{name}>{xml_escape(value)}</{name}>"


def _middle_xml(
    issuer_id: str | None, tracking_id: str | None, reason: str | None, severity: str | None, user_id: str | None
) -> str:
    return (
        _opt("issuerID", issuer_id)
        + _opt("issuerTrackingID", tracking_id)
        + _opt("reason", reason)
        + _opt("severity", severity)
        + _opt("userID", user_id)
    )


def _details_xml(details: tuple[tuple[str, str], ...]) -> str:
    return "".join(
        f"<EndDeviceEventDetails><name>{xml_escape(n)}</name><value>{xml_escape(v)}</value></EndDeviceEventDetails>"
        for n, v in details
    )


def build_end_device_events(events: Iterable[EventOut]) -> bytes:
    """The EndDeviceEvents document (no XML declaration, default namespace), for storms.

    What varies per event (its ids, time, meter, usage point) is escaped per event; what a whole
    control or outage shares (issuer fields, details, event type) is escaped once and looked up.
    The caches live for one document only, so their memory is bounded by the document's.
    """
    out = [f'<EndDeviceEvents xmlns="{END_DEVICE_EVENTS}">']
    append = out.append
    esc = xml_escape
    middles: dict[tuple[str | None, ...], str] = {}
    details: dict[tuple[tuple[str, str], ...], str] = {(): ""}
    types: dict[str, str] = {}
    for e in events:
        key = (e.issuer_id, e.issuer_tracking_id, e.reason, e.severity, e.user_id)
        middle = middles.get(key)
        if middle is None:
            middle = middles[key] = _middle_xml(*key)
        detail = details.get(e.details)
        if detail is None:
            detail = details[e.details] = _details_xml(e.details)
        type_xml = types.get(e.event_type)
        if type_xml is None:
            type_xml = types[e.event_type] = f'<EndDeviceEventType ref="{esc(e.event_type)}"/>'
        name = e.meter_name
        up = e.usage_point_mrid
        append(
            f"<EndDeviceEvent><mRID>{esc(e.mrid)}</mRID><createdDateTime>{esc(e.created)}</createdDateTime>"
            f"{middle}<Assets><mRID>{esc(e.meter_mrid)}</mRID>"
            f"{'' if name is None else f'<Names><name>{esc(name)}</name></Names>'}</Assets>"
            f"{detail}{type_xml}"
            f"{'' if up is None else f'<UsagePoint><mRID>{esc(up)}</mRID></UsagePoint>'}</EndDeviceEvent>"
        )
    append("</EndDeviceEvents>")
    return "".join(out).encode()


# ------------------------------------------------------------------------------------ reading


def _event(el: etree._Element, ns: str, position: int) -> EventOut:
    created_el = el.find(f"{{{ns}}}createdDateTime")
    datetime_of(created_el, f"EndDeviceEvent[{position}]/createdDateTime")  # checks the form
    type_el = el.find(f"{{{ns}}}EndDeviceEventType")
    asset = el.find(f"{{{ns}}}Assets")
    meter = obj_ref(asset, ns) if asset is not None else None
    up = el.find(f"{{{ns}}}UsagePoint")
    details = []
    for d in el.iterfind(f"{{{ns}}}EndDeviceEventDetails"):
        name = child_text(d, ns, "name")
        if name is not None:
            details.append((name, child_text(d, ns, "value") or ""))
    return EventOut(
        mrid=child_text(el, ns, "mRID") or "",
        created=text(created_el) or "",
        event_type=(type_el.get("ref") or "").strip() if type_el is not None else "",
        meter_mrid=(meter.mrid or "") if meter is not None else "",
        meter_name=meter.names[0] if meter is not None and meter.names else None,
        usage_point_mrid=child_text(up, ns, "mRID") if up is not None else None,
        issuer_id=child_text(el, ns, "issuerID"),
        issuer_tracking_id=child_text(el, ns, "issuerTrackingID"),
        reason=child_text(el, ns, "reason"),
        severity=child_text(el, ns, "severity"),
        user_id=child_text(el, ns, "userID"),
        details=tuple(details),
    )


def parse_end_device_events(el: etree._Element) -> tuple[EventOut, ...]:
    """The events of an EndDeviceEvents element; CimError 1.8 for a bad root or createdDateTime.

    Absent strings come back as "" (mrid, meter_mrid, event_type, created) or None (the
    optional ones); only the first Assets name is kept, as `EventOut` holds one.
    """
    ns = profile_namespace(el, "EndDeviceEvents")
    return tuple(_event(e, ns, i + 1) for i, e in enumerate(el.iterfind(f"{{{ns}}}EndDeviceEvent")))

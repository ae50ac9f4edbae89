"""The EndDeviceControls profile (IEC 61968-9): what the MDMS orders, as plain data, and back.

The head-end gets one `ControlItem` per `EndDeviceControl`, in document order, so it can answer
per item (an unknown control type is an error for that item, not for the request). Reading is
lenient where the field is: the control code may arrive as `EndDeviceControlType/@ref` (the
profile's form), as its `mRID` or `Names/name` (hand-written clients), or as a ref to the mRID
of a top-level `EndDeviceControlType` that spells the code in its type/domain/subDomain/
eventOrAction fields. A control that names no type is kept with `control_type=""`: the item,
not the request, is what is wrong.

Scheduling sits in `primaryDeviceTiming`: `interval/start` is when to act (our reading; the
profile does not say it) and `duration` is in minutes, turned into seconds here so nothing
downstream deals in minutes.

Element order of the builders follows the profile's xs:sequence: in EndDeviceControl, mRID,
issuerID, issuerTrackingID, reason, EndDeviceControlType, EndDeviceGroups, EndDevices,
primaryDeviceTiming, UsagePointGroups, UsagePoints; in EndDeviceTiming, duration before
interval; in DateTimeInterval, end before start.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from simulator.cim.envelope import IdRef, InboundMessage, OutHeader, build_request, typed_root
from simulator.cim.getmeterreadings import ObjRef
from simulator.cim.messages import id_xml
from simulator.cim.ns import END_DEVICE_CONTROLS
from simulator.cim.profileread import child_text, float_of, obj_ref, period_of, profile_namespace, text
from simulator.cim.xml import xml_escape
from simulator.errors import CimError
from simulator.timeutil import format_datetime

ELECTRIC_METER_TYPE = "3"
_CODE = re.compile(r"^([0-9]{1,9})\.([0-9]{1,9})\.([0-9]{1,9})\.([0-9]{1,9})$")
_CODE_FIELDS = ("type", "domain", "subDomain", "eventOrAction")


@dataclass(frozen=True, slots=True)
class ControlItem:
    index: int  # position among the EndDeviceControl elements (for per-item errors)
    mrid: str | None
    control_type: str  # the code as given, e.g. "3.31.0.23" or "0.31.0.23"; "" when none is named
    issuer_id: str | None
    issuer_tracking_id: str | None
    reason: str | None
    end_devices: tuple[ObjRef, ...]
    end_device_groups: tuple[ObjRef, ...]
    usage_points: tuple[ObjRef, ...]
    usage_point_groups: tuple[ObjRef, ...]
    start_time: int | None  # primaryDeviceTiming/interval/start (unix s)
    end_time: int | None  # primaryDeviceTiming/interval/end
    duration_s: float | None  # primaryDeviceTiming/duration, given in minutes


@dataclass(frozen=True, slots=True)
class ControlOut:
    """One control as echoed in a `Created EndDeviceControls` (or a reply payload)."""

    mrid: str | None
    control_type: str
    issuer_id: str | None
    issuer_tracking_id: str | None
    reason: str | None
    end_device_mrids: tuple[str, ...]
    start_time: str | None  # xs:dateTime text


def normalise_control_type(code: str) -> str | None:
    """The code with the device-type digit set to 3 (electric meter); None unless four integers.

    Field practice writes the same action with type 0 (n/a), 2 or 3, so the head-end matches on
    the normalised form: "0.31.0.23" and " 2.31.0.18 " become "3.31.0.23" and "3.31.0.18".
    Leading zeros go ("3.031.0.23" -> "3.31.0.23"); more than 9 digits in a field is not a code.
    """
    m = _CODE.match(code.strip())
    if m is None:
        return None
    return ".".join((ELECTRIC_METER_TYPE, *(str(int(part)) for part in m.groups()[1:])))


# ------------------------------------------------------------------------------------ reading


def _defined_types(element: etree._Element, ns: str) -> dict[str, str]:
    """mRID -> code of the top-level EndDeviceControlType entries that spell out a code."""
    defined: dict[str, str] = {}
    for el in element.iterfind(f"{{{ns}}}EndDeviceControlType"):
        ref = obj_ref(el, ns)
        if ref.mrid is None or ref.mrid in defined:
            continue
        fields = [child_text(el, ns, f) for f in _CODE_FIELDS]
        candidates = [".".join(f for f in fields if f is not None)] if None not in fields else []
        candidates.extend(ref.names)
        for candidate in candidates:
            if normalise_control_type(candidate) is not None:
                defined[ref.mrid] = candidate
                break
    return defined


def _control_type(el: etree._Element | None, ns: str, defined: dict[str, str]) -> str:
    if el is None:
        return ""
    code = (el.get("ref") or "").strip()
    if not code:
        ref = obj_ref(el, ns)
        code = ref.mrid or (ref.names[0] if ref.names else "")
    if code and normalise_control_type(code) is None:
        return defined.get(code, code)
    return code


_TEXT_FIELDS = ("mRID", "issuerID", "issuerTrackingID", "reason")
_REF_LISTS = ("EndDevices", "EndDeviceGroups", "UsagePoints", "UsagePointGroups")


def _control(index: int, el: etree._Element, ns: str, defined: dict[str, str]) -> ControlItem:
    # One pass over the children (a `find` per field cost more than the rest of the parse);
    # for single-valued fields the first occurrence counts, as `find` would have it.
    prefix = f"{{{ns}}}"
    cut = len(prefix)
    texts: dict[str, str | None] = {}
    lists: dict[str, list[ObjRef]] = {name: [] for name in _REF_LISTS}
    type_el = timing = None
    for child in el:
        tag = child.tag
        if not isinstance(tag, str) or not tag.startswith(prefix):
            continue
        local = tag[cut:]
        found = lists.get(local)
        if found is not None:
            found.append(obj_ref(child, ns))
        elif local in _TEXT_FIELDS:
            texts.setdefault(local, text(child))
        elif local == "EndDeviceControlType":
            type_el = child if type_el is None else type_el
        elif local == "primaryDeviceTiming":
            timing = child if timing is None else timing
    start = end = None
    duration_min = None
    if timing is not None:
        where = f"EndDeviceControl[{index + 1}]/primaryDeviceTiming"
        duration_min = float_of(timing.find(f"{prefix}duration"), f"{where}/duration")
        interval = timing.find(f"{prefix}interval")
        if interval is not None:
            start, end = period_of(interval, ns, f"{where}/interval")
    return ControlItem(
        index=index,
        mrid=texts.get("mRID"),
        control_type=_control_type(type_el, ns, defined),
        issuer_id=texts.get("issuerID"),
        issuer_tracking_id=texts.get("issuerTrackingID"),
        reason=texts.get("reason"),
        end_devices=tuple(lists["EndDevices"]),
        end_device_groups=tuple(lists["EndDeviceGroups"]),
        usage_points=tuple(lists["UsagePoints"]),
        usage_point_groups=tuple(lists["UsagePointGroups"]),
        start_time=start,
        end_time=end,
        duration_s=None if duration_min is None else duration_min * 60.0,
    )


def parse_end_device_controls(el: etree._Element) -> tuple[ControlItem, ...]:
    """Every EndDeviceControl of an EndDeviceControls element; CimError 1.8 for a bad root or time."""
    ns = profile_namespace(el, "EndDeviceControls")
    defined = _defined_types(el, ns)
    return tuple(
        _control(i, control, ns, defined) for i, control in enumerate(el.iterfind(f"{{{ns}}}EndDeviceControl"))
    )


def controls_from_message(message: InboundMessage) -> tuple[ControlItem, ...]:
    """The controls of a create/cancel/... EndDeviceControls message, from Payload (or Request).

    CimError 1.7 when the message has no EndDeviceControls: a cancel that names its target by
    `Request/ID` or `Payload/ID` only should be recognised before calling this.
    """
    element = message.find_element("EndDeviceControls")
    if element is None:
        raise CimError("1.7", "the message carries no EndDeviceControls element under Payload")
    return parse_end_device_controls(element)


def control_ids(message: InboundMessage) -> tuple[str, ...]:
    """Values of `Request/ID` and `Payload/ID`, in that order: how a cancel may name its controls."""
    ids = (message.request.ids if message.request is not None else ()) + message.payload_ids
    return tuple(i.value for i in ids if i.value)


# ----------------------------------------------------------------------------------- building


def _opt(name: str, value: str | None) -> str:
    return "" if value is None else f"<{name}>{xml_escape(value)}</{name}>"


def _ref_xml(name: str, ref: ObjRef) -> str:
    names = "".join(f"<Names><name>{xml_escape(n)}</name></Names>" for n in ref.names)
    return f"<{name}>{_opt('mRID', ref.mrid)}{names}</{name}>"


def _minutes_text(duration_s: float) -> str:
    if not math.isfinite(duration_s) or duration_s < 0:
        raise ValueError(f"duration_s must be finite and >= 0, got {duration_s!r}")
    return repr(duration_s / 60.0)


def _timing_xml(start: str | None, end: str | None, duration_s: float | None) -> str:
    if start is None and end is None and duration_s is None:
        return ""
    duration = "" if duration_s is None else f"<duration>{_minutes_text(duration_s)}</duration>"
    interval = ""
    if start is not None or end is not None:
        interval = f"<interval>{_opt('end', end)}{_opt('start', start)}</interval>"
    return f"<primaryDeviceTiming>{duration}{interval}</primaryDeviceTiming>"


def _control_xml(
    head: tuple[str | None, str | None, str | None, str | None],
    control_type: str,
    refs: tuple[Sequence[ObjRef], Sequence[ObjRef], Sequence[ObjRef], Sequence[ObjRef]],
    timing: str,
) -> str:
    mrid, issuer_id, tracking_id, reason = head
    groups, devices, up_groups, ups = refs
    type_xml = (
        f'<EndDeviceControlType ref="{xml_escape(control_type)}"/>' if control_type else ("<EndDeviceControlType/>")
    )
    return "".join(
        (
            "<EndDeviceControl>",
            _opt("mRID", mrid),
            _opt("issuerID", issuer_id),
            _opt("issuerTrackingID", tracking_id),
            _opt("reason", reason),
            type_xml,
            "".join(_ref_xml("EndDeviceGroups", r) for r in groups),
            "".join(_ref_xml("EndDevices", r) for r in devices),
            timing,
            "".join(_ref_xml("UsagePointGroups", r) for r in up_groups),
            "".join(_ref_xml("UsagePoints", r) for r in ups),
            "</EndDeviceControl>",
        )
    )


def build_end_device_controls(controls: Sequence[ControlOut]) -> bytes:
    """The EndDeviceControls document of a `Created EndDeviceControls` (no XML declaration)."""
    out = [f'<EndDeviceControls xmlns="{END_DEVICE_CONTROLS}">']
    for c in controls:
        devices = [ObjRef(m) for m in c.end_device_mrids]
        timing = _timing_xml(c.start_time, None, None)
        out.append(
            _control_xml(
                (c.mrid, c.issuer_id, c.issuer_tracking_id, c.reason), c.control_type, ((), devices, (), ()), timing
            )
        )
    out.append("</EndDeviceControls>")
    return "".join(out).encode()


def build_requested_controls(controls: Sequence[ControlItem]) -> bytes:
    """The EndDeviceControls document an MDMS sends, with every field `ControlItem` carries.

    `index` is positional and not written; parsing the result gives the same items back.
    """
    out = [f'<EndDeviceControls xmlns="{END_DEVICE_CONTROLS}">']
    for c in controls:
        timing = _timing_xml(
            None if c.start_time is None else format_datetime(c.start_time),
            None if c.end_time is None else format_datetime(c.end_time),
            c.duration_s,
        )
        out.append(
            _control_xml(
                (c.mrid, c.issuer_id, c.issuer_tracking_id, c.reason),
                c.control_type,
                (c.end_device_groups, c.end_devices, c.usage_point_groups, c.usage_points),
                timing,
            )
        )
    out.append("</EndDeviceControls>")
    return "".join(out).encode()


def build_end_device_controls_request(
    controls: Sequence[ControlItem],
    header: OutHeader,
    *,
    typed: bool = True,
    year: str = "2011",
    request_ids: tuple[IdRef, ...] = (),
    payload_ids: tuple[IdRef, ...] = (),
) -> bytes:
    """A `Create/Cancel/...EndDeviceControls` request as an MDMS sends it (tests, examples).

    The verb comes from `header.verb`. Typed: `{.../<year>/EndDeviceControlsMessage}<Verb>EndDeviceControls`
    with the controls as Payload (none when `controls` is empty, e.g. a cancel by `request_ids`).
    Generic (`typed=False`): a `msg:RequestMessage`; `payload_ids` puts `Payload/ID`s instead of
    the document (the generic Payload holds one or the other; the typed one cannot hold IDs).
    """
    if payload_ids and (typed or controls):
        raise ValueError("payload_ids need typed=False and no controls (Payload holds IDs or a document)")
    payload: bytes | None = build_requested_controls(controls) if controls else None
    if payload_ids:
        payload = "".join(_id_xml(i) for i in payload_ids).encode()
    wrapper = None
    if typed:
        title = header.verb[:1].upper() + header.verb[1:]
        wrapper = typed_root(title, "EndDeviceControls", year)
    return build_request(wrapper, header, ids=request_ids, payload=payload)


def _id_xml(ref: IdRef) -> str:
    # build_request declares the msg prefix on the root, so the ID needs no declaration of its own.
    return id_xml("ID", ref)

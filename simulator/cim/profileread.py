"""Small readers shared by the 61968-9 profile parsers (meter readings, controls, events, queries).

Every 61968-9 profile names objects the same way (`mRID` and/or `Names/name`), writes times as
xs:dateTime and lives in a `http://iec.ch/TC57/<year>/<Profile>#` namespace; these helpers read
those pieces once, so each profile module only says which elements it wants. Text is trimmed
and empty text counts as absent, as in the GetMeterReadings reader, because hand-written
requests pad values with blanks and an empty `<mRID/>` names nothing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from lxml import etree

from simulator.errors import CimError
from simulator.timeutil import parse_datetime

Period = tuple[int | None, int | None]  # (start, end) in unix seconds; None = open


@dataclass(frozen=True, slots=True)
class ObjRef:
    """A device, group or usage point named by mRID and/or names; both may be empty."""

    mrid: str | None = None
    names: tuple[str, ...] = ()

# xs:float lexical space (the Minutes type is a restricted xs:float); Python's float() accepts
# far more ("1_0", "infinity", " nan "), so the form is checked before converting.
_XS_FLOAT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?INF$|^NaN$")


def text(el: etree._Element | None) -> str | None:
    """Trimmed text of an element; None when the element or its text is missing or blank."""
    if el is None or el.text is None:
        return None
    value = el.text.strip()
    return value or None


def child_text(parent: etree._Element, ns: str, name: str) -> str | None:
    return text(parent.find(f"{{{ns}}}{name}"))


def obj_ref(el: etree._Element, ns: str) -> ObjRef:
    """An object named by `mRID` and/or `Names/name`, in document order of the names.

    One pass over the children: `find` costs ~2 us a call, and a request may name 10,000 meters.
    The first mRID element counts, as `find` would have it.
    """
    mrid_tag, names_tag, name_tag = f"{{{ns}}}mRID", f"{{{ns}}}Names", f"{{{ns}}}name"
    mrid_el = None
    names = []
    for child in el:
        tag = child.tag
        if tag == names_tag:
            name = text(child.find(name_tag))
            if name is not None:
                names.append(name)
        elif tag == mrid_tag and mrid_el is None:
            mrid_el = child
    mrid = text(mrid_el)
    return ObjRef(mrid=mrid, names=tuple(names))


def obj_refs(parent: etree._Element, ns: str, name: str) -> tuple[ObjRef, ...]:
    return tuple(obj_ref(e, ns) for e in parent.iterfind(f"{{{ns}}}{name}"))


def datetime_of(el: etree._Element | None, where: str) -> int | None:
    """Unix seconds of an xs:dateTime element, None when absent; CimError 1.8 when malformed."""
    value = text(el)
    if value is None:
        return None
    try:
        return parse_datetime(value)
    except (ValueError, OverflowError):
        raise CimError("1.8", f"{where} is not an xs:dateTime: {value!r}") from None


def period_of(el: etree._Element, ns: str, where: str) -> Period:
    """(start, end) of a DateTimeInterval (whose xs:sequence is end, then start)."""
    return (
        datetime_of(el.find(f"{{{ns}}}start"), f"{where}/start"),
        datetime_of(el.find(f"{{{ns}}}end"), f"{where}/end"),
    )


def float_of(el: etree._Element | None, where: str) -> float | None:
    """An xs:float element as a finite, non-negative float; CimError 1.8 otherwise.

    INF and NaN are lexically valid xs:float, but no duration the simulator could schedule.
    """
    value = text(el)
    if value is None:
        return None
    if _XS_FLOAT.match(value) is None:
        raise CimError("1.8", f"{where} is not an xs:float: {value!r}")
    number = float(value.replace("INF", "inf"))
    if not number >= 0.0 or number == float("inf"):
        raise CimError("1.8", f"{where} must be a finite number >= 0, got {value!r}")
    return number


def profile_namespace(element: etree._Element, profile: str) -> str:
    """Namespace of a profile root (`http://iec.ch/TC57/<year>/<profile>#`), or CimError 1.8."""
    tag = element.tag
    if not isinstance(tag, str):
        raise CimError("1.8", f"{profile} expected, found a non-element node")
    qname = etree.QName(tag)
    ns = qname.namespace or ""
    if qname.localname != profile or _profile_ns(profile).match(ns) is None:
        raise CimError("1.8", f"expected {{http://iec.ch/TC57/2011/{profile}#}}{profile}, found {tag}")
    return ns


@functools.cache
def _profile_ns(profile: str) -> re.Pattern[str]:
    return re.compile(rf"^http://iec\.ch/TC57/(2011|2015|2017)/{re.escape(profile)}#$")

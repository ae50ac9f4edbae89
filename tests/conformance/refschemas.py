"""Validate against our profiles and, when ``../shared/reference`` is there, against public reference schemas.

Tests all over the suite use `assert_valid_both` so that every message kind we emit is checked
against what other implementations accept, not only against schemas we wrote ourselves.
The reference files are never copied into the project; they are read in place beside the repo.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TypeAlias

from lxml import etree

from simulator.cim import schemas

SHARED_DIR = Path(__file__).resolve().parents[2] / ".." / "shared"
REFERENCE_DIR = SHARED_DIR / "reference"

_MR_2014 = "61968-9-2013/connexo-2014-elster"
_MR_PUBLIC = "61968-9-2013/connexo/meterreadings/xsd"
_ED_CLEAN = "61968-9-2013/cim4-enddevice/xsd"
_EDC_PUBLIC = "61968-9-2013/connexo/enddevicecontrols/xsd"
_EDE_PUBLIC = "61968-9-2013/connexo/enddeviceevents/xsd"
_GEDE_PUBLIC = "61968-9-2013/connexo/getenddeviceevents/xsd"

# kind -> reference files (relative to REFERENCE_DIR); the first is the primary one.
# MeterReadings/GetMeterReadings: the 2014 copies are the closest to the plain IEC profiles.
# Wrappers: also the copies the public GetMeterReadings/SendMeterReadings WSDLs import (their
# profile copies carry optional vendor additions, so anything IEC-valid is valid there too).
REFERENCE_FILES: dict[str, tuple[str, ...]] = {
    "Message": ("61968-100-2013/Message.xsd",),
    "MeterReadings": (f"{_MR_2014}/MeterReadings.xsd",),
    "GetMeterReadings": (f"{_MR_2014}/GetMeterReadings.xsd",),
    "MeterReadingsMessage": (f"{_MR_PUBLIC}/MeterReadingsMessage.xsd",),
    "GetMeterReadingsMessage": (
        f"{_MR_2014}/GetMeterReadingsMessage.xsd",
        f"{_MR_PUBLIC}/GetMeterReadingsMessage.xsd",
    ),
    # EndDevice families. Payloads: the clean CIMTool copies first, then the copies the public
    # WSDLs import (their vendor additions are optional, so IEC-valid documents pass there too).
    # Wrappers: only copies in OUR wrapper namespaces (.../2011/...Message), i.e. the public ones.
    "EndDeviceControls": (f"{_ED_CLEAN}/EndDeviceControls.xsd", f"{_EDC_PUBLIC}/EndDeviceControls.xsd"),
    "EndDeviceControlsMessage": (f"{_EDC_PUBLIC}/EndDeviceControlsMessage.xsd",),
    "EndDeviceEvents": (f"{_ED_CLEAN}/EndDeviceEvents.xsd", f"{_EDE_PUBLIC}/EndDeviceEvents.xsd"),
    "EndDeviceEventsMessage": (f"{_EDE_PUBLIC}/EndDeviceEventsMessage.xsd",),
    "GetEndDeviceEvents": (f"{_GEDE_PUBLIC}/GetEndDeviceEvents.xsd",),
    "GetEndDeviceEventsMessage": (f"{_GEDE_PUBLIC}/GetEndDeviceEventsMessage.xsd",),
    # The same wrappers in the 2017 namespaces (http://iec.ch/TC57/2017/<Noun>Message), which readers
    # accept: we ship no schema for them, so use reference_errors() rather than assert_valid_both().
    "EndDeviceControlsMessage2017": (f"{_ED_CLEAN}/EndDeviceControlsMessage.xsd",),
    "EndDeviceEventsMessage2017": (f"{_ED_CLEAN}/EndDeviceEventsMessage.xsd",),
}

Document: TypeAlias = "etree._Element | etree._ElementTree | bytes"


def reference_available() -> bool:
    return REFERENCE_DIR.is_dir()


@functools.cache
def _compile(relative: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(REFERENCE_DIR / relative), parser))


def reference_validators(kind: str) -> list[tuple[str, etree.XMLSchema]]:
    """All reference schemas for ``kind`` as (relative path, schema); empty when ../shared is absent."""
    if kind not in REFERENCE_FILES:
        raise ValueError(f"unknown reference kind {kind!r}; known: {', '.join(REFERENCE_FILES)}")
    if not reference_available():
        return []
    return [(relative, _compile(relative)) for relative in REFERENCE_FILES[kind]]


def reference_validator(kind: str) -> etree.XMLSchema | None:
    """The primary reference schema for ``kind``, or None when ../shared is absent."""
    found = reference_validators(kind)
    return found[0][1] if found else None


def _as_element(document: Document) -> etree._Element:
    if isinstance(document, bytes | bytearray):
        parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
        return etree.fromstring(bytes(document), parser)
    if isinstance(document, etree._ElementTree):
        return document.getroot()
    return document


def reference_errors(document: Document, kind: str) -> dict[str, list[str]]:
    """Errors per reference file (only files that reject the document appear)."""
    root = _as_element(document)
    failures: dict[str, list[str]] = {}
    for relative, schema in reference_validators(kind):
        if not schema.validate(root):
            failures[relative] = [f"line {e.line}: {e.message}" for e in schema.error_log]
    return failures


def assert_valid_both(document: Document, our_name: str, ref_kind: str) -> None:
    """Fail unless ``document`` is valid against our ``profiles/xsd/<our_name>.xsd`` and the reference(s).

    The reference part is skipped only when ../shared is absent.
    """
    root = _as_element(document)
    problems: list[str] = []
    ours = schemas.validate(root, our_name)
    if ours:
        problems.append(f"ours ({our_name}.xsd):\n  " + "\n  ".join(ours[:20]))
    for relative, errors in reference_errors(root, ref_kind).items():
        problems.append(f"reference ({relative}):\n  " + "\n  ".join(errors[:20]))
    if problems:
        head = etree.tostring(root, encoding="unicode")[:600]
        listing = "\n".join(problems)
        raise AssertionError(f"schema validation failed\n{listing}\ndocument starts: {head}")

"""Schema checks for the end-device families: our profiles plus every public reference copy.

Each family has more than one public copy (a plain CIM one and a vendor one with optional
additions; the wrappers in 2011 and 2017 namespaces), and a message we emit should satisfy all
of them. The reference files are read in place from ../shared/reference, never copied; that part
is skipped only when the directory is absent.
"""

from __future__ import annotations

import functools

from lxml import etree

from simulator.cim import schemas
from tests.conformance.refschemas import REFERENCE_DIR, reference_available

_CIM4 = "61968-9-2013/cim4-enddevice/xsd"
_EDC = "61968-9-2013/connexo/enddevicecontrols/xsd"
_EDE = "61968-9-2013/connexo/enddeviceevents/xsd"
_GEDE = "61968-9-2013/connexo/getenddeviceevents/xsd"

# kind -> (our profile stem or None, reference files relative to REFERENCE_DIR)
KINDS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "Message": ("Message", ("61968-100-2013/Message.xsd",)),
    "EndDeviceControls": ("EndDeviceControls", (f"{_CIM4}/EndDeviceControls.xsd", f"{_EDC}/EndDeviceControls.xsd")),
    "EndDeviceControlsMessage": ("EndDeviceControlsMessage", (f"{_EDC}/EndDeviceControlsMessage.xsd",)),
    # The 2017 wrapper namespace: only the reference copy uses it; our profile is 2011.
    "EndDeviceControlsMessage2017": (None, (f"{_CIM4}/EndDeviceControlsMessage.xsd",)),
    "EndDeviceEvents": (
        "EndDeviceEvents",
        (f"{_CIM4}/EndDeviceEvents.xsd", f"{_EDE}/EndDeviceEvents.xsd", f"{_GEDE}/EndDeviceEvents.xsd"),
    ),
    "EndDeviceEventsMessage": ("EndDeviceEventsMessage", (f"{_EDE}/EndDeviceEventsMessage.xsd",)),
    "GetEndDeviceEvents": ("GetEndDeviceEvents", (f"{_GEDE}/GetEndDeviceEvents.xsd",)),
    "GetEndDeviceEventsMessage": ("GetEndDeviceEventsMessage", (f"{_GEDE}/GetEndDeviceEventsMessage.xsd",)),
}


@functools.cache
def _compile(relative: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(REFERENCE_DIR / relative), parser))


def schema_errors(document: bytes | etree._Element, kind: str) -> dict[str, list[str]]:
    """Errors per schema that rejects the document (ours under "ours:<stem>")."""
    root = etree.fromstring(document) if isinstance(document, bytes) else document
    ours, references = KINDS[kind]
    failures: dict[str, list[str]] = {}
    if ours is not None:
        errors = schemas.validate(root, ours)
        if errors:
            failures[f"ours:{ours}"] = errors
    if reference_available():
        for relative in references:
            schema = _compile(relative)
            if not schema.validate(root):
                failures[relative] = [f"line {e.line}: {e.message}" for e in schema.error_log]
    return failures


def assert_valid(document: bytes | etree._Element, kind: str) -> None:
    failures = schema_errors(document, kind)
    if failures:
        head = document[:600] if isinstance(document, bytes) else etree.tostring(document)[:600]
        listing = "\n".join(f"{where}:\n  " + "\n  ".join(errs[:10]) for where, errs in failures.items())
        raise AssertionError(f"schema validation failed\n{listing}\ndocument starts: {head!r}")

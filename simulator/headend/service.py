"""Serving one 61968-100 request, whatever carried it: the part SOAP and JMS share.

A request is read and checked the same way whichever transport brought it, and its answer is the
same document: the strongly-typed roots get their typed `<Noun>ResponseMessage`, generic
RequestMessages a generic ResponseMessage. Only the wrapping differs (a SOAP envelope, or a bare
JMS TextMessage), which is what keeps the SOAP and JMS payloads identical.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lxml import etree

from ..cim import codes, ns, schemas
from ..cim.envelope import InboundMessage, build_response, read_request
from ..errors import CimError
from .dispatch import HeadEnd, Outcome
from .faults import corrupt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TypedService:
    name: str
    request_tags: tuple[str, ...]  # the root elements this service accepts
    request_schema: str      # profiles/xsd file stem that validates the whole request
    response_ns: str         # namespace of <Noun>ResponseMessage / <Noun>FaultMessage on the wire
    noun: str


TYPED_SERVICES: dict[str, TypedService] = {
    "GetMeterReadings": TypedService(
        name="GetMeterReadings",
        request_tags=(f"{{{ns.GET_METER_READINGS_MSG}}}GetMeterReadings",),
        request_schema="GetMeterReadingsMessage",
        response_ns=ns.GET_METER_READINGS_MSG,
        noun="MeterReadings",
    ),
    "ExecuteEndDeviceControls": TypedService(
        name="ExecuteEndDeviceControls",
        # The 2017 copies of these wrappers are in use too; we read both and answer in 2011.
        request_tags=tuple(
            f"{{http://iec.ch/TC57/{year}/EndDeviceControlsMessage}}{verb}EndDeviceControls"
            for year in ("2011", "2017") for verb in ("Create", "Cancel")
        ),
        request_schema="EndDeviceControlsMessage",
        response_ns=ns.END_DEVICE_CONTROLS_MSG,
        noun="EndDeviceControls",
    ),
    "GetEndDeviceEvents": TypedService(
        name="GetEndDeviceEvents",
        request_tags=(f"{{{ns.GET_END_DEVICE_EVENTS_MSG}}}GetEndDeviceEvents",),
        request_schema="GetEndDeviceEventsMessage",
        response_ns=ns.GET_END_DEVICE_EVENTS_MSG,
        noun="EndDeviceEvents",
    ),
}
GENERIC_SERVICE = "Message"


def typed_service_of(root: etree._Element) -> TypedService | None:
    """The typed service whose request this root is, or None for anything else (generic or unknown)."""
    for typed in TYPED_SERVICES.values():
        if root.tag in typed.request_tags:
            return typed
    return None


def read_checked(headend: HeadEnd, typed: TypedService | None, root: etree._Element) -> InboundMessage:
    """Read the envelope and, when the scenario says so, validate it; raises CimError."""
    if typed is not None:
        if root.tag not in typed.request_tags:
            raise CimError(codes.SCHEMA_INVALID,
                           f"/{typed.name} takes {' or '.join(typed.request_tags)}, got {root.tag}; "
                           f"send generic RequestMessages to /{GENERIC_SERVICE}")
        # A 2017 wrapper is read, but our schemas are the 2011 ones: its payload is still checked.
        wrapper_ns = etree.QName(root).namespace or ""
        schema: str | None = typed.request_schema if wrapper_ns.startswith("http://iec.ch/TC57/2011/") else None
    else:
        schema = "Message" if etree.QName(root).namespace == ns.MSG else None
    msg = read_request(root)
    if headend.settings.validate_requests and schema is not None:
        errors = schemas.validate(root, schema)
        if errors:
            raise CimError(codes.SCHEMA_INVALID, "the request is not valid: " + "; ".join(errors[:3]))
    return msg


def answer_body(headend: HeadEnd, msg: InboundMessage, outcome: Outcome, typed: TypedService | None) -> bytes:
    """The answer document (no transport envelope) for a request's synchronous outcome."""
    header = headend.reply_header(msg, outcome.noun, outcome.correlation_id)
    wrapper = (typed.response_ns, f"{typed.noun}ResponseMessage") if typed else None
    body = build_response(wrapper, header, outcome.reply, outcome.payload)
    if outcome.corrupt:
        body = corrupt(body)
    if headend.settings.validate_responses:
        name = typed.request_schema if typed else "Message"
        problems = schemas.validate(body, name)
        if problems:
            log.error("reply fails %s: %s", name, problems[:3])
    return body

"""The SOAP face of the head-end: SOAP bodies in, SOAP bodies out, faults for bad input.

Strongly-typed services (one per WSDL, e.g. /GetMeterReadings) accept only their own request
element and answer with their own typed wrappers, so clients generated from the WSDL decode
both answers and faults. The generic /Message service accepts any 61968-100 RequestMessage
and routes it on Header Verb and Noun.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from lxml import etree

from ..cim import codes, ns, schemas, soap
from ..cim.envelope import Reply, build_fault_message, build_response, read_request
from ..cim.soap import SoapVersion
from ..errors import CimError
from ..ports import HttpAnswer
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


class SoapService:
    def __init__(self, headend: HeadEnd, max_request_bytes: int = 10 * 1024 * 1024) -> None:
        self.headend = headend
        self.max_request_bytes = max_request_bytes
        # Wall seconds a synchronous answer may take before the MDMS gets a 5.3 fault instead
        # (a safety net against a job that died; the server sets it from the sim speed).
        self.max_wait_s: float | None = None

    def service_names(self) -> list[str]:
        return [*TYPED_SERVICES, GENERIC_SERVICE]

    def wsdl(self, service: str, base_url: str) -> bytes | None:
        try:
            return schemas.read_wsdl(service, base_url)
        except (FileNotFoundError, KeyError, ValueError):
            return None

    def xsd(self, filename: str) -> bytes | None:
        return schemas.read_xsd(filename)

    def too_large(self, service: str, content_type: str, size: int | None) -> HttpAnswer:
        got = f"{size} bytes" if size is not None else "more than that"
        err = CimError(codes.SCHEMA_INVALID, f"the request is too large ({got}); the limit is "
                       f"{self.max_request_bytes} bytes (setting headend.max_request_bytes)")
        return self._fault(err, soap.version_of_content_type(content_type), TYPED_SERVICES.get(service))

    async def handle(self, service: str, soap_action: str | None, content_type: str, body: bytes) -> HttpAnswer:
        typed = TYPED_SERVICES.get(service)
        version: SoapVersion = soap.version_of_content_type(content_type)
        try:
            version, root = soap.unwrap(body, content_type)
            return await self._serve(typed, version, root)
        except CimError as err:
            return self._fault(err, version, typed)
        except Exception:  # a bug must still give the MDMS a fault, never a dropped connection
            log.exception("internal error serving %s", service)
            return self._fault(CimError(codes.ATTEMPTED_AND_FAILED, "internal error in the simulator"),
                               version, typed, server=True)

    async def _serve(self, typed: TypedService | None, version: SoapVersion, root: etree._Element) -> HttpAnswer:
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
        if self.headend.settings.validate_requests and schema is not None:
            errors = schemas.validate(root, schema)
            if errors:
                raise CimError(codes.SCHEMA_INVALID, "the request is not valid: " + "; ".join(errors[:3]))
        answered: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

        def respond(outcome: Outcome) -> None:
            if not answered.done():  # the client may have gone away meanwhile
                answered.set_result(outcome)

        self.headend.submit(msg, respond)
        if not self.headend.live:
            self.headend.run_until(answered.done)
        try:
            outcome = await asyncio.wait_for(answered, self.max_wait_s)
        except TimeoutError:
            raise RuntimeError(f"no answer within {self.max_wait_s} s of wall time") from None
        if outcome.transport_fault == "http_500":
            return HttpAnswer(500, "text/plain; charset=utf-8", b"Internal Server Error\n")
        if outcome.transport_fault == "connection_reset":
            return HttpAnswer(500, "text/plain; charset=utf-8", b"", reset=True)
        header = self.headend.reply_header(msg, outcome.noun, outcome.correlation_id)
        wrapper = (typed.response_ns, f"{typed.noun}ResponseMessage") if typed else None
        body = build_response(wrapper, header, outcome.reply, outcome.payload)
        if outcome.corrupt:
            body = corrupt(body)
        if self.headend.settings.validate_responses:
            name = typed.request_schema if typed else "Message"
            problems = schemas.validate(body, name)
            if problems:
                log.error("reply fails %s: %s", name, problems[:3])
        return HttpAnswer(200, soap.content_type(version), soap.wrap(body, version))

    def _fault(
        self, err: CimError, version: SoapVersion, typed: TypedService | None, server: bool = False
    ) -> HttpAnswer:
        wrapper = (typed.response_ns, f"{typed.noun}FaultMessage") if typed else None
        reply = Reply.failed(err)
        detail = build_fault_message(reply, wrapper)
        status = 500 if server else soap.fault_http_status(err, version)
        return HttpAnswer(status, soap.content_type(version), soap.fault(err, version, detail=detail, server=server))

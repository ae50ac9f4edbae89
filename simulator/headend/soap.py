"""The SOAP face of the head-end: SOAP bodies in, SOAP bodies out, faults for bad input.

Strongly-typed services (one per WSDL, e.g. /GetMeterReadings) accept only their own request
element and answer with their own typed wrappers, so clients generated from the WSDL decode
both answers and faults. The generic /Message service accepts any 61968-100 RequestMessage
and routes it on Header Verb and Noun.
"""

from __future__ import annotations

import asyncio
import logging

from lxml import etree

from ..cim import codes, schemas, soap
from ..cim.envelope import Reply, build_fault_message
from ..cim.soap import SoapVersion
from ..errors import CimError
from ..ports import HttpAnswer
from .dispatch import HeadEnd, Outcome
from .service import GENERIC_SERVICE, TYPED_SERVICES, TypedService, answer_body, read_checked

log = logging.getLogger(__name__)




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
        msg = read_checked(self.headend, typed, root)
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
        body = answer_body(self.headend, msg, outcome, typed)
        return HttpAnswer(200, soap.content_type(version), soap.wrap(body, version))

    def _fault(
        self, err: CimError, version: SoapVersion, typed: TypedService | None, server: bool = False
    ) -> HttpAnswer:
        wrapper = (typed.response_ns, f"{typed.noun}FaultMessage") if typed else None
        reply = Reply.failed(err)
        detail = build_fault_message(reply, wrapper)
        status = 500 if server else soap.fault_http_status(err, version)
        return HttpAnswer(status, soap.content_type(version), soap.fault(err, version, detail=detail, server=server))

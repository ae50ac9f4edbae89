"""SOAP envelopes around 61968-100 messages: unwrap what arrives, wrap and fault what leaves.

Every public 61968-9 WSDL is SOAP 1.1 document/literal, with the IEC Header inside the Body
and an empty `soapenv:Header`. Clients in the wild also send SOAP 1.2, so both are accepted
and answered in the version they came in; the envelope's namespace decides the version, not
the Content-Type (a mismatch between the two is tolerated). SOAP headers are ignored, even
with mustUnderstand: the simulator should answer the 61968 message, not reject a WS-Security
header it has no use for.

A body that is not a SOAP envelope at all but a bare 61968-100 message is accepted too
(version None): JMS carries bare messages, and accepting them over HTTP costs nothing. Its
answers are then bare as well (`wrap` and `fault` with version None return the message alone).

A fault carries a 61968-100 FaultMessage in its detail: the typed `<Noun>FaultMessage` of the
service's WSDL when `detail_wrapper` names it (so WSDL-generated clients decode it as the
declared fault), the generic `msg:FaultMessage` otherwise.
"""

from __future__ import annotations

from typing import Literal

from lxml import etree

from simulator.cim import codes
from simulator.cim.messages import Reply, Wrapper, build_fault_message, reply_for_error
from simulator.cim.ns import SOAP11, SOAP12
from simulator.cim.xml import DEFAULT_MAX_BYTES, parse_xml, xml_escape
from simulator.errors import CimError

SoapVersion = Literal["1.1", "1.2"] | None

CONTENT_TYPE_SOAP11 = "text/xml; charset=utf-8"
CONTENT_TYPE_SOAP12 = "application/soap+xml; charset=utf-8"
CONTENT_TYPE_BARE = "application/xml; charset=utf-8"

_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_OPEN = {
    "1.1": _DECLARATION
    + f'<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Header/><soapenv:Body>'.encode(),
    "1.2": _DECLARATION + f'<env:Envelope xmlns:env="{SOAP12}"><env:Header/><env:Body>'.encode(),
}
_CLOSE = {
    "1.1": b"</soapenv:Body></soapenv:Envelope>",
    "1.2": b"</env:Body></env:Envelope>",
}


def content_type(version: SoapVersion) -> str:
    """The Content-Type of an answer in this SOAP version (None: a bare message)."""
    if version == "1.1":
        return CONTENT_TYPE_SOAP11
    if version == "1.2":
        return CONTENT_TYPE_SOAP12
    return CONTENT_TYPE_BARE


def version_of_content_type(content_type: str | None) -> Literal["1.1", "1.2"]:
    """The SOAP version a Content-Type announces, for answering before the body is parsed."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return "1.2" if media == "application/soap+xml" else "1.1"


def unwrap(
    data: bytes, content_type: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[SoapVersion, etree._Element]:
    """(SOAP version, the one element in Body) of a request; a bare message gives (None, root).

    Raises CimError 1.8 for anything that is not XML, a SOAP envelope without exactly one body
    element, or a Content-Type that is not XML at all.
    """
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media and "xml" not in media:
            raise CimError("1.8", f"Content-Type {media!r} is not XML; send text/xml or application/soap+xml")
    root = parse_xml(data, max_bytes)
    qname = etree.QName(root)
    if qname.namespace in (SOAP11, SOAP12):
        if qname.localname != "Envelope":
            raise CimError("1.8", f"a SOAP message must start with Envelope, found {root.tag}")
        version: SoapVersion = "1.1" if qname.namespace == SOAP11 else "1.2"
        body = root.find(f"{{{qname.namespace}}}Body")
        if body is None:
            raise CimError("1.8", "the SOAP Envelope has no Body")
        children = [c for c in body if isinstance(c.tag, str)]
        if not children:
            raise CimError("1.8", "the SOAP Body is empty; it must hold one 61968-100 message")
        if len(children) > 1:
            found = ", ".join(c.tag for c in children[:3])
            raise CimError("1.8", f"the SOAP Body holds {len(children)} elements ({found}); send one message")
        return version, children[0]
    if qname.localname == "Envelope":
        raise CimError(
            "1.8", f"unknown SOAP envelope namespace {qname.namespace!r}; use {SOAP11} or {SOAP12}"
        )
    return None, root


def _is_client(reply: Reply) -> bool:
    return bool(reply.errors) and codes.is_client_error(reply.errors[0].code)


def fault_http_status(error: CimError | Reply, version: SoapVersion) -> int:
    """HTTP status of a fault: 500 in SOAP 1.1; in SOAP 1.2, 400 for Sender and 500 for Receiver faults."""
    reply = reply_for_error(error) if isinstance(error, CimError) else error
    return 400 if version == "1.2" and _is_client(reply) else 500


def wrap(body: bytes, version: SoapVersion) -> bytes:
    """A message in a SOAP envelope with an empty Header (None: the message unchanged)."""
    if version is None:
        return body
    return b"".join((_OPEN[version], body, _CLOSE[version]))  # one copy of a possibly 10 MB body


def fault(
    error: CimError | Reply,
    version: SoapVersion,
    detail_wrapper: Wrapper = None,
    *,
    detail: bytes | None = None,
    server: bool | None = None,
) -> bytes:
    """A SOAP Fault whose detail is a FaultMessage (Result FAILED with the error's code).

    `detail_wrapper` names the typed fault element of the service (Clark name or (ns, local)),
    e.g. `InboundMessage.fault_root`; None gives the generic `msg:FaultMessage`. A ready-made
    `detail` (FaultMessage bytes) is used as it is. `server` forces Server/Receiver (True) or
    Client/Sender (False); by default the code's category decides (1, 2, 3, 6, 7: client).
    """
    reply = reply_for_error(error) if isinstance(error, CimError) else error
    if detail is None:
        detail = build_fault_message(reply, detail_wrapper)
    if version is None:
        return detail
    first = reply.errors[0] if reply.errors else None
    reason = (first.reason or codes.reason_for(first.code)) if first else "request failed"
    text = xml_escape(reason)
    client = _is_client(reply) if server is None else not server
    if version == "1.1":
        code = "soapenv:Client" if client else "soapenv:Server"
        inner = f"<soapenv:Fault><faultcode>{code}</faultcode><faultstring>{text}</faultstring><detail>"
        return _OPEN["1.1"] + inner.encode() + detail + b"</detail></soapenv:Fault>" + _CLOSE["1.1"]
    code = "env:Sender" if client else "env:Receiver"
    inner = (
        f"<env:Fault><env:Code><env:Value>{code}</env:Value></env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{text}</env:Text></env:Reason><env:Detail>'
    )
    return _OPEN["1.2"] + inner.encode() + detail + b"</env:Detail></env:Fault>" + _CLOSE["1.2"]

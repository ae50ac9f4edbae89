"""The JMS face of the head-end: requests from the request queue, answers through the outbox.

A request is read, checked and served exactly as the SOAP services serve it (`service.py`), so
its answer is the same document; it leaves as a bare 61968-100 message (no SOAP envelope) to the
request's JMSReplyTo, or to Header/ReplyAddress when that names a JMS destination.

ASSUMPTION (61968-100 ed.2 clause 9.3 is not available to us): how 61968 maps onto JMS.
- A request without Header/CorrelationID takes its JMSCorrelationID, so the answer's
  CorrelationID (and JMSCorrelationID) is what the requester already waits for; with neither,
  the answer correlates to the request's MessageID (Header, then JMSMessageID), as JMS
  request/reply does.
- A request without Header/ReplyAddress takes its JMSReplyTo as the ReplyAddress: async results
  and the EndDeviceEvents of a control then go where the requester listens.
- Bad input (not XML, not valid, a verb or noun we do not serve) is answered, not faulted: a
  `ResponseMessage` (typed when the root was typed) whose Reply is FAILED with the code, so a JMS
  client correlates and reads it like any answer. Its Noun is the request's, as far as it could
  be read (Header, then the `Noun` property), else `Message`.
- A message with no destination to answer to is moved to the dead-letter queue with its reason.

Why the answer goes through the outbox instead of straight to the broker: it is then durable
before the request is acknowledged, leaves before the async parts of the same correlation, and
survives a broker that is down right now, exactly as SOAP callbacks do.

Reply faults map onto JMS as follows: `connection_reset` sends no answer at all (the request is
consumed), `http_500` answers FAILED with 5.3; the others (late, no_reply, duplicate, ...)
behave as over SOAP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from lxml import etree

from ..cim import codes
from ..cim.envelope import InboundMessage, Reply, build_response, peek_header
from ..cim.ns import MSG
from ..cim.xml import parse_xml
from ..errors import CimError
from ..ports import Disposition, JmsHeaders, QueuedRequest
from .dispatch import HeadEnd, Outcome
from .readjob import OutboundPart
from .service import TypedService, answer_body, read_checked, typed_service_of

log = logging.getLogger(__name__)

JMS_SCHEMES = ("queue://", "topic://", "temp-queue://", "temp-topic://")


class JmsService:
    """`MessagePort` for the request queue; see the module docstring for the mapping."""

    def __init__(self, headend: HeadEnd, max_request_bytes: int = 10 * 1024 * 1024) -> None:
        self.headend = headend
        self.max_request_bytes = max_request_bytes
        # Wall seconds an answer may take before the requester gets a 5.3 answer instead (a safety
        # net against a job that died; the server sets it from the sim speed).
        self.max_wait_s: float | None = None

    async def handle_message(self, request: QueuedRequest) -> Disposition:
        try:
            return await self._handle(request)
        except Exception:  # a bug must still answer the requester, never stop the consumer
            log.exception("internal error serving JMS message %s", request.message_id)
            err = CimError(codes.ATTEMPTED_AND_FAILED, "internal error in the simulator")
            return self._refuse(request, None, None, err)

    async def _handle(self, request: QueuedRequest) -> Disposition:
        root: etree._Element | None = None
        typed: TypedService | None = None
        try:
            root = parse_xml(request.body, self.max_request_bytes)
            typed = typed_service_of(root)
            msg = _addressed(read_checked(self.headend, typed, root), request)
            self.headend.route_of(msg)  # a verb or noun we do not serve is refused before anything runs
        except CimError as err:
            return self._refuse(request, root, typed, err)
        destination = _jms_destination(request.reply_to) or _jms_destination(msg.header.reply_address)
        if destination is None:
            return Disposition(dead_letter="no JMSReplyTo and no JMS Header/ReplyAddress: nowhere to answer")
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def respond(outcome: Outcome) -> None:
            # Put the answer in the outbox at once, before any async part of its correlation.
            if answered.done():
                return
            answered.set_result(None)
            if outcome.transport_fault == "connection_reset":
                return
            if outcome.transport_fault == "http_500":
                err = CimError(codes.ATTEMPTED_AND_FAILED, "internal error (simulated by replies.faults.http_500)")
                self._answer_error(destination, msg.header.noun, msg, typed, err)
                return
            correlation = outcome.correlation_id or msg.header.correlation_id or msg.header.message_id or ""
            self._put(destination, answer_body(self.headend, msg, outcome, typed), correlation)

        try:
            self.headend.submit(msg, respond)
            if not self.headend.live:
                self.headend.run_until(answered.done)
        except CimError as err:
            self._answer_error(destination, msg.header.noun, msg, typed, err)
            return Disposition()
        try:
            await asyncio.wait_for(asyncio.shield(answered), self.max_wait_s)
        except TimeoutError:
            log.error("no answer within %s s of wall time for JMS message %s", self.max_wait_s, request.message_id)
            respond_error = CimError(codes.ATTEMPTED_AND_FAILED, f"no answer within {self.max_wait_s} s")
            if not answered.done():
                answered.set_result(None)
                self._answer_error(destination, msg.header.noun, msg, typed, respond_error)
        return Disposition()

    def _refuse(self, request: QueuedRequest, root: etree._Element | None, typed: TypedService | None,
                err: CimError) -> Disposition:
        """Answer a request we cannot serve, or dead-letter it when there is nowhere to answer."""
        reply_address = _lenient(root, "ReplyAddress") if root is not None else None
        destination = _jms_destination(request.reply_to) or _jms_destination(reply_address)
        if destination is None:
            return Disposition(dead_letter=f"{err.code} {err.reason}")
        noun = (typed.noun if typed else None) or (_lenient(root, "Noun") if root is not None else None) \
            or request.properties.get("Noun") or "Message"
        correlation = ((_lenient(root, "CorrelationID") if root is not None else None) or request.correlation_id
                       or (_lenient(root, "MessageID") if root is not None else None) or request.message_id)
        header = self.headend.header(None, "reply", noun, correlation_id=correlation)
        wrapper = (typed.response_ns, f"{typed.noun}ResponseMessage") if typed else None
        self._put(destination, build_response(wrapper, header, Reply.failed(err)), correlation)
        return Disposition()

    def _answer_error(self, destination: str, noun: str, msg: InboundMessage, typed: TypedService | None,
                      err: CimError) -> None:
        header = self.headend.reply_header(msg, noun)
        wrapper = (typed.response_ns, f"{typed.noun}ResponseMessage") if typed else None
        self._put(destination, build_response(wrapper, header, Reply.failed(err)), header.correlation_id or "")

    def _put(self, destination: str, body: bytes, correlation: str) -> None:
        """Into the outbox, ordered with the request's other messages by `correlation`."""
        correlation = peek_header(body).correlation_id or correlation  # a corrupted answer may have none
        self.headend.outbound.put_parts([OutboundPart(destination, "", body, correlation, False)])


def _addressed(msg: InboundMessage, request: QueuedRequest) -> InboundMessage:
    """Fill CorrelationID and ReplyAddress from the JMS headers where the 61968 Header has none."""
    h = msg.header
    header = dataclasses.replace(
        h,
        correlation_id=h.correlation_id or request.correlation_id or None,
        reply_address=h.reply_address if (h.reply_address or "").strip() else request.reply_to or h.reply_address,
        message_id=h.message_id or request.message_id or None,
    )
    return msg if header == h else dataclasses.replace(msg, header=header)


def _jms_destination(address: str | None) -> str | None:
    address = (address or "").strip()
    return address if address.startswith(JMS_SCHEMES) else None


def _lenient(root: etree._Element | None, name: str) -> str | None:
    """A Header field of a message that may not be valid, in any namespace; None when absent."""
    if root is None:
        return None
    for header in root.iter(f"{{{MSG}}}Header", "{*}Header"):
        for child in header:
            if isinstance(child.tag, str) and etree.QName(child).localname == name and (child.text or "").strip():
                return (child.text or "").strip()
        break
    return None


def jms_headers(body: bytes, soap_action: str = "") -> JmsHeaders:
    """The JMS envelope of an outbound message, read from its 61968 Header (see the module docstring)."""
    peek = peek_header(body)
    properties = {k: v for k, v in (("Verb", peek.verb), ("Noun", peek.noun)) if v}
    return JmsHeaders(correlation_id=peek.correlation_id, properties=properties)

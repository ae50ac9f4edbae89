"""The interfaces between the head-end and the transports, and nothing more.

Transports move bytes; they never parse 61968 messages or touch the model. Inbound, the
head-end hands a transport an object that satisfies `SoapPort`; outbound, the head-end's
outbox is given an `OutboundSender` that a transport implements. This module sits at the
bottom of the package so that both sides import it and neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    content_type: str
    body: bytes
    reset: bool = False  # close the connection without answering (a simulated fault)


class SoapPort(Protocol):
    max_request_bytes: int

    def service_names(self) -> list[str]:
        """Paths served as /{name}, each with its WSDL at /{name}?wsdl."""
        ...

    async def handle(self, service: str, soap_action: str | None, content_type: str, body: bytes) -> HttpAnswer:
        """Answer one SOAP POST; never raises for bad input (faults are answers)."""
        ...

    def too_large(self, service: str, content_type: str, size: int | None) -> HttpAnswer:
        """The answer for a body over `max_request_bytes` (the transport did not read it all)."""
        ...

    def wsdl(self, service: str, base_url: str) -> bytes | None: ...

    def xsd(self, filename: str) -> bytes | None: ...


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    status: int | None  # HTTP status, None when no answer came
    error: str | None  # why it is not ok (None when ok)
    body: bytes | None  # the answer's body, when there was one
    # Retrying cannot help (e.g. the requester's temporary reply queue is gone): give up at once.
    permanent: bool = False


class OutboundSender(Protocol):
    async def send(self, destination: str, soap_action: str, body: bytes, ack_required: bool) -> DeliveryResult:
        """Deliver one message; never raises except on cancellation."""
        ...


class ControlPort(Protocol):
    async def control(self, body: bytes) -> HttpAnswer:
        """Run one timeline action now (JSON in, JSON out); never raises for bad input."""
        ...


@dataclass(frozen=True)
class JmsHeaders:
    """What the head-end wants on a message's JMS envelope (it reads these from the 61968 Header)."""

    correlation_id: str | None = None
    reply_to: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueuedRequest:
    """One message taken from the request queue, as the head-end sees it (no broker details)."""

    body: bytes
    destination: str  # where it was consumed from, e.g. queue://hes.requests
    reply_to: str | None  # JMSReplyTo, as queue://, topic:// or temp-queue://
    correlation_id: str | None  # JMSCorrelationID
    message_id: str  # JMSMessageID
    properties: Mapping[str, str]
    redelivered: bool = False


@dataclass(frozen=True)
class Disposition:
    """What to do with a consumed message once the head-end is done with it.

    `dead_letter` None: acknowledge it (its answer, if any, is safe in the outbox). Otherwise the
    message could not be answered at all and is moved to the dead-letter queue with this reason.
    """

    dead_letter: str | None = None


class MessagePort(Protocol):
    async def handle_message(self, request: QueuedRequest) -> Disposition:
        """Serve one queued request; never raises for bad input."""
        ...

"""What a transport needs from the head-end, and nothing more.

Transports move bytes; they never parse 61968 messages or touch the model. The head-end
hands them an object that satisfies `SoapPort`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    content_type: str
    body: bytes


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

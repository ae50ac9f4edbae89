"""One outbox, several transports: each message goes to the sender of its destination's scheme."""

from __future__ import annotations

from collections.abc import Sequence

from simulator.ports import DeliveryResult, OutboundSender


class SchemeRouter:
    """An `OutboundSender` that picks a sender by prefix (`http://`, `queue://`, ...), first match wins."""

    def __init__(self, routes: Sequence[tuple[tuple[str, ...], OutboundSender]]) -> None:
        self.routes = tuple(routes)

    async def send(self, destination: str, soap_action: str, body: bytes, ack_required: bool) -> DeliveryResult:
        for prefixes, sender in self.routes:
            if destination.startswith(prefixes):
                return await sender.send(destination, soap_action, body, ack_required)
        known = ", ".join(p for prefixes, _ in self.routes for p in prefixes)
        return DeliveryResult(False, None, f"no transport for {destination!r} (this run sends to: {known})", None)

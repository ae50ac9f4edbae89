"""Where the head-end's asynchronous messages go: a list (embedded, tests) or the durable outbox."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..cim import soap
from ..errors import CimError
from .outbox import OutboundItem, Outbox
from .readjob import OutboundPart


class MemoryOutbound:
    """Keeps every message in order; what an embedding test suite or a fast run inspects."""

    def __init__(self) -> None:
        self.parts: list[OutboundPart] = []

    def put_parts(self, parts: Sequence[OutboundPart]) -> None:
        self.parts.extend(parts)

    def backlog(self) -> int:
        return 0


class DurableOutbound:
    """Writes messages to the SQLite outbox (durable on return) and wakes the deliverer."""

    def __init__(self, outbox: Outbox, wake: Callable[[], None] = lambda: None) -> None:
        self.outbox = outbox
        self.wake = wake

    def put_parts(self, parts: Sequence[OutboundPart]) -> None:
        self.outbox.put_many([
            OutboundItem(p.destination, p.soap_action, p.body, p.correlation_id, p.ack_required, "reply")
            for p in parts
        ])
        self.wake()

    def backlog(self) -> int:
        return self.outbox.pending()


_MSG = "{http://iec.ch/TC57/2011/schema/message}"


def is_positive_ack(answer: bytes) -> bool:
    """Did the MDMS acknowledge? A SOAP answer whose 61968 Reply/Result is OK (or PARTIAL)."""
    try:
        _, root = soap.unwrap(answer, None)
    except CimError:
        return False
    reply = root.find("{*}Reply")
    if reply is None:
        return False
    return (reply.findtext(f"{_MSG}Result") or "").strip() in ("OK", "PARTIAL")

"""Where the head-end's asynchronous messages go: a list (embedded, tests) or the durable outbox."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence

from ..cim import soap
from ..cim.ns import MSG
from ..errors import CimError
from .outbox import OutboundItem, Outbox
from .readjob import OutboundPart

log = logging.getLogger(__name__)


class MemoryOutbound:
    """Keeps every message in order; what an embedding test suite or a fast run inspects."""

    def __init__(self) -> None:
        self.parts: list[OutboundPart] = []

    def put_parts(self, parts: Sequence[OutboundPart]) -> None:
        self.parts.extend(parts)

    def backlog(self) -> int:
        return 0


class DurableOutbound:
    """Writes messages to the SQLite outbox (durable on return) and wakes the deliverer.

    If the database refuses a write (locked, disk full), the parts are kept in memory, in order,
    and stored with the next write or `flush()`: the simulation goes on and nothing is dropped.
    """

    def __init__(self, outbox: Outbox, wake: Callable[[], None] = lambda: None) -> None:
        self.outbox = outbox
        self.wake = wake
        self.unsaved: list[OutboundPart] = []

    def put_parts(self, parts: Sequence[OutboundPart]) -> None:
        self.unsaved.extend(parts)
        self.flush()

    def flush(self) -> bool:
        """Store what is waiting; False (and kept) when the database still refuses."""
        if not self.unsaved:
            return True
        try:
            self.outbox.put_many([
                OutboundItem(p.destination, p.soap_action, p.body, p.correlation_id, p.ack_required, "reply")
                for p in self.unsaved
            ])
        except sqlite3.Error as exc:
            log.error("outbox %s refused %d message(s), kept in memory and retried: %s",
                      self.outbox.path, len(self.unsaved), exc)
            return False
        self.unsaved = []
        self.wake()
        return True

    def backlog(self) -> int:
        return self.outbox.pending() + len(self.unsaved)




def is_positive_ack(answer: bytes) -> bool:
    """Did the MDMS acknowledge? A SOAP answer whose 61968 Reply/Result is OK (or PARTIAL)."""
    try:
        _, root = soap.unwrap(answer, None)
    except CimError:
        return False
    reply = root.find("{*}Reply")
    if reply is None:
        return False
    return (reply.findtext(f"{{{MSG}}}Result") or "").strip() in ("OK", "PARTIAL")

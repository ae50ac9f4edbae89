"""A database that refuses a write does not lose the messages: they wait in memory, in order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from simulator.headend.outbound import DurableOutbound
from simulator.headend.outbox import Outbox
from simulator.headend.readjob import OutboundPart


def _part(n: int) -> OutboundPart:
    return OutboundPart("http://127.0.0.1:9/x", "", f"<m{n}/>".encode(), "corr", False)


def test_parts_refused_by_a_locked_database_are_stored_later_in_order(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    outbox = Outbox(path)
    outbound = DurableOutbound(outbox)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    outbox._db.execute("PRAGMA busy_timeout=0")
    outbound.put_parts([_part(1), _part(2)])
    assert len(outbound.unsaved) == 2 and outbound.backlog() == 2
    outbound.put_parts([_part(3)])  # still locked: kept, behind the others
    other.execute("ROLLBACK")
    assert outbound.flush()
    assert outbound.unsaved == [] and outbox.pending() == 3
    assert [m.body for m in outbox.due(limit=10)] == [b"<m1/>"]  # one correlation: the oldest first

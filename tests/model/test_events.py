"""The event log: what happened, queryable by meters, types and time, at memory per event."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from simulator.model import events as events_module
from simulator.model.events import Event, EventLog

DISC, CONN, FAIL = "3.31.0.68", "3.31.0.42", "3.31.0.84"


def test_append_returns_the_events_in_order() -> None:
    log = EventLog()
    out = log.append(np.array([5, 3]), 1000, DISC, issuer_tracking_id="T-1", correlation_id="C-1",
                     details=[("RelayState", "disconnected")])
    assert out == [Event(0, 5, 1000, DISC, "T-1", "C-1", (("RelayState", "disconnected"),)),
                   Event(1, 3, 1000, DISC, "T-1", "C-1", (("RelayState", "disconnected"),))]
    more = log.append([3], np.array([1500.7]), CONN)
    assert more == [Event(2, 3, 1500, CONN, None, None, ())]
    assert len(log) == 3 and log.event(1) == out[1]
    assert log.append([], 0, CONN) == [] and len(log) == 3
    with pytest.raises(AttributeError):
        out[0].meter = 4  # type: ignore[misc]


def test_query_filters_and_sorts_by_time_then_sequence() -> None:
    log = EventLog()
    log.append([1, 2, 3], 300, DISC)
    log.append([2], 100, FAIL)  # appended later, happened earlier
    log.append([1, 2], np.array([300, 200]), CONN)
    got = log.query(np.array([2]), None, None, None)
    assert [(e.t, e.seq, e.event_type) for e in got] == [(100, 3, FAIL), (200, 5, CONN), (300, 1, DISC)]
    assert [e.seq for e in log.query(None, None, None, None)] == [3, 5, 0, 1, 2, 4]
    assert [e.seq for e in log.query(None, [CONN, DISC], 200, 300)] == [5, 0, 1, 2, 4]  # both ends inclusive
    assert [e.seq for e in log.query([1, 3], [DISC], None, 299)] == []
    assert [e.seq for e in log.query([1, 3, 1], None, 300, None, limit=2)] == [0, 2]
    assert log.query([7], None, None, None) == []
    assert log.query(None, ["9.9.9.9"], None, None) == []
    assert log.query(None, [], None, None) == []


def test_indexed_and_recent_events_answer_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries mix the per-meter index with a scan of newer events: compare with brute force."""
    monkeypatch.setattr(events_module, "_MIN_TAIL", 50)
    rng = np.random.default_rng(3)
    log = EventLog()
    rows: list[tuple[int, int, int, str]] = []  # (seq, meter, t, type)
    types = (DISC, CONN, FAIL)
    for step in range(120):
        meters = rng.integers(0, 40, rng.integers(1, 30))
        t = int(rng.integers(0, 10_000))
        kind = types[step % 3]
        for e in log.append(meters, t, kind, correlation_id=f"c{step % 4}"):
            rows.append((e.seq, e.meter, e.t, kind))
        if step % 7 == 0:
            want = rng.choice(40, 5, replace=False)
            lo, hi = sorted(rng.integers(0, 10_000, 2).tolist())
            kinds = [types[step % 3], types[(step + 1) % 3]]
            got = [e.seq for e in log.query(want, kinds, lo, hi)]
            expected = [s for s, m, t, k in sorted(rows, key=lambda r: (r[2], r[0]))
                        if m in want and k in kinds and lo <= t <= hi]
            assert got == expected


def test_memory_is_per_event_and_shared_context_is_stored_once() -> None:
    log = EventLog()
    meters = np.arange(100_000, dtype=np.int64)
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for k in range(4):
        out = log.append(meters[k::4], 1_000 + k, DISC, "T-1", "C-1", (("a", "b"),))
        del out
    held, _ = tracemalloc.get_traced_memory()
    log.query(meters[:100], None, None, None)  # builds the per-meter index
    indexed, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (held - base) / len(log) < 28  # 24 bytes of columns an event, plus array slack
    assert (indexed - base) / len(log) < 46  # + 16 bytes of index
    assert len(log._contexts) == 1 and log.types_seen() == (DISC,)

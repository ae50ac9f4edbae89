"""The durable outbox: ordering per correlation, backoff, dead letters, restart, and the deliverer.

No sockets here: the deliverer is driven by a fake sender; the real SOAP sender and the
SIGKILL test are in tests/transports and tests/integration.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from simulator.headend.outbox import OutboundItem, OutboundMessage, Outbox, OutboxDeliverer, RetryPolicy
from simulator.ports import DeliveryResult

URL = "http://mdms.invalid/ReplyMeterReadings"
ACTION = "http://iec.ch/TC57/2011/MeterReadings/CreatedMeterReadings"


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite"


def ids(msgs: list[OutboundMessage]) -> list[int]:
    return [m.id for m in msgs]


# ----------------------------------------------------------------------------- the store


def test_put_returns_increasing_ids_and_due_gives_the_message_back(db: Path, clock: FakeClock) -> None:
    box = Outbox(db, clock=clock)
    a = box.put(URL, ACTION, b"<a/>", "c1", ack_required=True, kind="event")
    b = box.put(URL, ACTION, b"<b/>", "c2")
    assert b > a
    first = box.due()[0]
    assert first == OutboundMessage(a, URL, ACTION, b"<a/>", "c1", True, 0, clock.now, "event")
    assert box.pending() == 2


def test_only_the_oldest_message_of_a_correlation_is_due(db: Path, clock: FakeClock) -> None:
    box = Outbox(db, clock=clock)
    p1 = box.put(URL, ACTION, b"<p1/>", "job-1")
    p2 = box.put(URL, ACTION, b"<p2/>", "job-1")
    other = box.put(URL, ACTION, b"<x/>", "job-2")
    p3 = box.put(URL, ACTION, b"<p3/>", "job-1")
    assert ids(box.due()) == [p1, other]
    box.delivered(p1)
    assert ids(box.due()) == [p2, other]  # same due time: put order
    box.delivered(p2)
    assert ids(box.due()) == [other, p3]


def test_due_leaves_out_the_messages_named_in_exclude(db: Path, clock: FakeClock) -> None:
    box = Outbox(db, clock=clock)
    a, b, c = (box.put(URL, ACTION, b"<m/>", f"c{i}") for i in range(3))
    assert ids(box.due(limit=2)) == [a, b]
    assert ids(box.due(limit=2, exclude=[a, b])) == [c]
    assert ids(box.due(exclude=[b])) == [a, c]


def test_a_failing_part_holds_back_the_parts_after_it(db: Path, clock: FakeClock) -> None:
    box = Outbox(db, RetryPolicy(initial_s=10), clock=clock)
    p1 = box.put(URL, ACTION, b"<p1/>", "job-1")
    p2 = box.put(URL, ACTION, b"<p2/>", "job-1")
    box.failed(p1, "connection refused")
    assert box.due() == []  # p1 waits for its retry, and p2 must not overtake it
    clock.now += 10
    assert ids(box.due()) == [p1]
    box.delivered(p1)
    assert ids(box.due()) == [p2]


def test_backoff_is_exponential_and_capped(db: Path, clock: FakeClock) -> None:
    box = Outbox(db, RetryPolicy(initial_s=1.0, factor=2.0, max_s=20.0), clock=clock)
    msg = box.put(URL, ACTION, b"<m/>", "c")
    waits = []
    for attempt in range(1, 8):
        start = clock.now
        box.failed(msg, f"attempt {attempt}")
        # Due exactly when the backoff has passed, not a moment before.
        lo, hi = 0.0, 1000.0
        for _ in range(40):
            mid = (lo + hi) / 2
            clock.now = start + mid
            lo, hi = (lo, mid) if box.due() else (mid, hi)
        waits.append(round(hi, 3))
        clock.now = start + hi
        assert box.due()[0].attempts == attempt
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert box.last_error(msg) == "attempt 7"


def test_retry_policy_delays() -> None:
    policy = RetryPolicy(initial_s=0.5, factor=3.0, max_s=10.0)
    assert [policy.delay_after(n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 10.0, 10.0]
    assert RetryPolicy(max_s=7).delay_after(100_000) == 7
    with pytest.raises(ValueError):
        RetryPolicy(factor=0.5)


def test_a_message_is_dead_after_max_attempts_and_releases_its_correlation(db: Path, clock: FakeClock) -> None:
    box = Outbox(db, RetryPolicy(initial_s=1, max_attempts=3), clock=clock)
    p1 = box.put(URL, ACTION, b"<p1/>", "job")
    p2 = box.put(URL, ACTION, b"<p2/>", "job")
    for _ in range(2):
        box.failed(p1, "HTTP 500")
        clock.now += 100
        assert ids(box.due()) == [p1]
    box.failed(p1, "HTTP 500 again")
    assert ids(box.due()) == [p2]
    assert box.stats() == {"queued": 1, "delivered": 0, "retried": 2, "dead": 1}
    assert box.last_error(p1) == "HTTP 500 again"
    box.failed(p1, "late report")  # reports about a finished message change nothing
    box.delivered(p1)
    assert box.stats()["dead"] == 1


def test_a_permanent_failure_is_dead_at_once_even_without_max_attempts(db: Path, clock: FakeClock) -> None:
    box = Outbox(db, RetryPolicy(initial_s=1, max_attempts=0), clock=clock)
    p1 = box.put("temp-queue://ID:gone", ACTION, b"<p1/>", "job")
    p2 = box.put(URL, ACTION, b"<p2/>", "job")
    box.failed(p1, "temporary queue gone", permanent=True)
    assert ids(box.due()) == [p2]  # the correlation is released, nothing waits for a retry
    assert box.stats()["dead"] == 1 and box.last_error(p1) == "temporary queue gone"


def test_stats_count_queued_delivered_retried_dead(db: Path, clock: FakeClock) -> None:
    box = Outbox(db, RetryPolicy(initial_s=0, max_attempts=2), clock=clock)
    a, b, c, _d = box.put_many([(URL, ACTION, b"<m/>", f"c{i}") for i in range(4)])
    box.delivered(a)
    box.failed(b, "x")
    box.delivered(b)  # delivered on its second attempt: one retry
    box.failed(c, "x")
    box.failed(c, "x")  # dead on its second attempt: one retry
    assert box.stats() == {"queued": 1, "delivered": 2, "retried": 2, "dead": 1}
    assert box.pending() == 1


def test_put_many_is_one_transaction_in_order(db: Path, clock: FakeClock) -> None:
    box = Outbox(db, clock=clock)
    items = [OutboundItem(URL, ACTION, f"<m{i}/>".encode(), f"job-{i % 3}", i % 2 == 0, "reply") for i in range(1000)]
    new = box.put_many(items)
    assert new == sorted(new) and len(set(new)) == 1000
    assert box.pending() == 1000
    heads = box.due(limit=10)
    assert [m.body for m in heads] == [b"<m0/>", b"<m1/>", b"<m2/>"]  # one head per correlation
    # All or nothing: a bad item rolls back the whole batch.
    with pytest.raises(TypeError):
        box.put_many([(URL, ACTION, b"<ok/>", "z"), (URL, ACTION, "not bytes", "z")])
    assert box.pending() == 1000


def test_restart_keeps_pending_messages_and_their_order(db: Path, clock: FakeClock) -> None:
    box = Outbox(db, RetryPolicy(initial_s=5), clock=clock)
    p1, p2, p3 = box.put_many([(URL, ACTION, f"<p{i}/>".encode(), "job") for i in (1, 2, 3)])
    box.delivered(p1)
    in_flight = box.due()[0]  # p2 was being sent when the process died
    assert in_flight.id == p2
    box.failed(p2, "refused")  # ... after one failed attempt
    box.close()

    again = Outbox(db, RetryPolicy(initial_s=5), clock=clock)
    assert again.pending() == 2
    assert again.due() == []  # the stored retry time still holds
    clock.now += 5
    retried = again.due()
    assert ids(retried) == [p2] and retried[0].attempts == 1 and retried[0].body == b"<p2/>"
    again.delivered(p2)
    assert ids(again.due()) == [p3]
    assert again.stats() == {"queued": 1, "delivered": 2, "retried": 1, "dead": 0}


def test_file_is_wal_and_delivered_bodies_are_dropped(db: Path, clock: FakeClock) -> None:
    box = Outbox(db, clock=clock)
    msg = box.put(URL, ACTION, b"x" * 10_000, "c")
    box.delivered(msg)
    box.close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT length(body), state FROM outbox").fetchone() == (0, "delivered")
    plans = " ".join(str(r) for r in con.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE state = 'pending' AND head = 1"
        " AND next_attempt_at <= 0 ORDER BY next_attempt_at, id LIMIT 5"))
    assert "outbox_due" in plans
    con.close()


# ----------------------------------------------------------------------------- the deliverer


class FakeSender:
    """Records sends, holds each one until released, and fails the destinations it is told to."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.sent: list[bytes] = []
        self.active: dict[str, int] = {}
        self.max_active = 0
        self.max_active_per_correlation = 0
        self.failing: set[bytes] = set()

    async def send(self, destination: str, soap_action: str, body: bytes, ack_required: bool) -> DeliveryResult:
        corr = body.split(b"|")[0].decode()
        self.active[corr] = self.active.get(corr, 0) + 1
        self.max_active = max(self.max_active, sum(self.active.values()))
        self.max_active_per_correlation = max(self.max_active_per_correlation, self.active[corr])
        try:
            await asyncio.sleep(self.delay)
            self.sent.append(body)
            if body in self.failing:
                return DeliveryResult(False, 500, "HTTP 500", b"")
            return DeliveryResult(True, 200, None, b"<ok/>")
        finally:
            self.active[corr] -= 1


async def test_deliverer_respects_concurrency_and_per_correlation_order(db: Path) -> None:
    box = Outbox(db)
    sender = FakeSender(delay=0.002)
    items = [(URL, ACTION, f"c{i % 5}|{i}".encode(), f"c{i % 5}") for i in range(60)]
    box.put_many(items)
    delivered: list[int] = []
    deliverer = OutboxDeliverer(box, sender, concurrency=3, poll_s=0.01,
                                on_delivery=lambda m, r: delivered.append(m.id) if r.ok else None)
    deliverer.start()
    assert await deliverer.drain(timeout=10)
    await deliverer.stop()
    assert len(sender.sent) == 60 and len(delivered) == 60
    assert sender.max_active == 3
    assert sender.max_active_per_correlation == 1
    for c in range(5):
        seq = [int(b.split(b"|")[1]) for b in sender.sent if b.startswith(f"c{c}|".encode())]
        assert seq == sorted(seq) == list(range(c, 60, 5))
    assert box.stats() == {"queued": 0, "delivered": 60, "retried": 0, "dead": 0}


async def test_deliverer_retries_failures_until_dead(db: Path) -> None:
    box = Outbox(db, RetryPolicy(initial_s=0.01, max_s=0.02, max_attempts=3))
    sender = FakeSender()
    bad = box.put(URL, ACTION, b"c1|bad", "c1")
    after = box.put(URL, ACTION, b"c1|after", "c1")
    sender.failing.add(b"c1|bad")
    results: list[tuple[int, bool]] = []
    deliverer = OutboxDeliverer(box, sender, poll_s=0.005, on_delivery=lambda m, r: results.append((m.id, r.ok)))
    deliverer.start()
    assert await deliverer.drain(timeout=5)
    await deliverer.stop()
    assert results == [(bad, False), (bad, False), (bad, False), (after, True)]
    assert box.stats() == {"queued": 0, "delivered": 1, "retried": 2, "dead": 1}


async def test_wake_starts_delivery_without_waiting_for_a_poll(db: Path) -> None:
    box = Outbox(db)
    sender = FakeSender()
    deliverer = OutboxDeliverer(box, sender, poll_s=30.0)  # a poll would never come in time
    deliverer.start()
    await asyncio.sleep(0.01)
    box.put(URL, ACTION, b"c|1", "c")
    deliverer.wake()
    assert await deliverer.drain(timeout=2)
    await deliverer.stop()
    assert sender.sent == [b"c|1"]


async def test_drain_times_out_while_messages_wait_and_stop_keeps_them_pending(db: Path) -> None:
    box = Outbox(db)
    sender = FakeSender(delay=60.0)  # an MDMS that never answers
    box.put(URL, ACTION, b"c|1", "c")
    deliverer = OutboxDeliverer(box, sender, poll_s=0.01)
    deliverer.start()
    assert await deliverer.drain(timeout=0.1) is False
    assert deliverer.in_flight == 1
    await deliverer.stop()
    assert deliverer.in_flight == 0
    assert box.pending() == 1 and box.due()[0].attempts == 0  # cancelled, not counted as a failure


async def test_a_sender_that_raises_counts_as_a_failed_attempt(db: Path) -> None:
    class Broken:
        async def send(self, destination: str, soap_action: str, body: bytes, ack_required: bool) -> DeliveryResult:
            raise RuntimeError("bug")

    box = Outbox(db, RetryPolicy(max_attempts=1))
    msg = box.put(URL, ACTION, b"c|1", "c")
    deliverer = OutboxDeliverer(box, Broken(), poll_s=0.01)
    deliverer.start()
    assert await deliverer.drain(timeout=2)
    await deliverer.stop()
    assert box.stats()["dead"] == 1
    assert "RuntimeError('bug')" in (box.last_error(msg) or "")

"""`hes-sim run SCENARIO --fast --until T`: a whole scenario as fast as the CPU allows.

Sim time advances in chunks; between chunks the outbox delivers to the destinations over real
HTTP, so a pipeline can run a day of traffic against its MDMS in minutes and read the summary.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field

from .app import Simulator, open_delivery
from .drivers import run_fast

log = logging.getLogger(__name__)


@dataclass
class FastRunSummary:
    sim_seconds: float
    wall_seconds: float
    events: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    failed_events: int = 0
    timeline: list[str] = field(default_factory=list)

    @property
    def all_delivered(self) -> bool:
        return self.outbox.get("pending", 0) == 0 and self.outbox.get("dead", 0) == 0

    @property
    def clean(self) -> bool:
        """Everything delivered and no simulation event failed: what a pipeline checks."""
        return self.all_delivered and not self.failed_events

    def lines(self) -> list[str]:
        out = [f"ran {self.sim_seconds:g} sim seconds in {self.wall_seconds:.1f} s"]
        out += [f"  timeline: {t}" for t in self.timeline]
        if self.events:
            out.append("  events: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.events.items())))
        o = self.outbox
        out.append(f"  messages: {o.get('total', 0)} sent, {o.get('delivered', 0)} delivered, "
                   f"{o.get('retried', 0)} retries, {o.get('dead', 0)} failed, {o.get('pending', 0)} undelivered")
        if self.failed_events:
            out.append(f"  {self.failed_events} simulation event(s) failed (see the log)")
        return out


async def run_scenario_fast(sim: Simulator, until_s: float, chunk_s: float = 60.0,
                            drain_timeout_s: float = 120.0) -> FastRunSummary:
    started = time.monotonic()
    delivery = await open_delivery(sim)
    failed = 0
    try:
        target = sim.env.now
        while target < until_s:
            target = min(until_s, target + chunk_s)
            try:
                run_fast(sim.env, target)
            except Exception:
                failed += 1
                log.exception("a simulation event failed; the run goes on without it")
            await asyncio.sleep(0)  # let the deliverer send what the chunk produced
        delivery.outbound.flush()
        await delivery.deliverer.drain(drain_timeout_s)
        stats = delivery.outbox.stats()
    finally:
        await delivery.close()
    total = stats.get("delivered", 0) + stats.get("queued", 0) + stats.get("dead", 0)
    events = Counter(e.event_type for e in sim.events.query(None, None, None, None))
    return FastRunSummary(
        sim_seconds=until_s, wall_seconds=time.monotonic() - started, events=dict(events),
        outbox={"total": total, "delivered": stats.get("delivered", 0), "retried": stats.get("retried", 0),
                "dead": stats.get("dead", 0), "pending": stats.get("queued", 0)},
        failed_events=failed, timeline=[f"{t:g} s: {what}" for t, what in sim.timeline.done],
    )


def parse_duration(text: str) -> float:
    """`3600`, `90s`, `30m`, `2h`, `1d` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    scale = units.get(t[-1:])
    number = t[:-1] if scale else t
    value = float(number) * (scale or 1)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive, finite duration")
    return value

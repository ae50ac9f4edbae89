"""What relay state costs: reads with supply interruptions, max demand, relay operations, events.

Each figure is the best of several runs. "switched together" means one disconnect and one
reconnect of all the meters at the same two instants (a group control); "own times" gives each
meter its own instants (the worst case for batching register look-ups).

    python bench/bench_relay.py [--meters 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

from simulator.model.demand import DemandResets
from simulator.model.events import EventLog
from simulator.model.fleet import Fleet, FleetConfig
from simulator.model.readings import Readings
from simulator.model.relay import RelayConfig, RelayModel
from simulator.model.supply import SupplyHistory
from simulator.timeutil import parse_datetime

D15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
DREG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
MD = "8.8.2.6.1.1.8.0.0.0.0.0.0.0.0.3.38.0"
VOLT = "0.0.0.6.0.1.54.0.0.0.0.0.0.0.128.0.29.0"


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def line(name: str, seconds: float, note: str = "") -> None:
    print(f"{name:<58} {seconds * 1e3:10.2f} ms  {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--meters", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("# command: python " + " ".join(sys.argv))
    k = args.repeat
    fleet = Fleet(FleetConfig(seed=1, size=args.meters))
    day = parse_datetime("2026-03-10T00:00:00Z")
    plain = Readings(fleet)

    # -- reads ----------------------------------------------------------------------------------
    for n in (100, 100_000):
        idx = np.arange(n, dtype=np.int64)
        cases: list[tuple[str, Readings]] = [("no history", plain)]
        other = SupplyHistory()  # 10,000 other meters were switched: these are untouched
        other.off(np.arange(args.meters - 10_000, args.meters), day + 3600)
        cases.append(("history, none of these meters", Readings(fleet, other)))
        together = SupplyHistory()
        together.off(idx, day + 3 * 3600 + 123)
        together.on(idx, day + 9 * 3600 + 456)
        cases.append(("switched together (1 period, mid-interval)", Readings(fleet, together)))
        if n <= 100:
            own = SupplyHistory()
            for i in range(n):
                own.off([i], day + 3600 + 37 * i)
                own.on([i], day + 7200 + 53 * i)
            cases.append(("own times (1 period each)", Readings(fleet, own)))
            flap = SupplyHistory()
            for j in range(10):
                for i in range(n):
                    flap.off([i], day + j * 7200 + 11 * i + 100)
                    flap.on([i], day + j * 7200 + 11 * i + 3700)
            cases.append(("own times, 10 periods each", Readings(fleet, flap)))
        for label, r in cases:
            line(f"day of 15-min, {n:_} meters, {label}",
                 best_of(k, lambda r=r, idx=idx: r.intervals(idx, D15, day, 96)))
        for label, r in cases:
            line(f"register, {n:_} meters, {label}",
                 best_of(k, lambda r=r, idx=idx: r.register(idx, DREG, day + 86_400 + 17)))
        for label, r in cases[:3]:
            line(f"voltage, {n:_} meters, {label}",
                 best_of(k, lambda r=r, idx=idx: r.instant(idx, VOLT, day + 4 * 3600)))

    # -- max demand -----------------------------------------------------------------------------
    resets = DemandResets()
    md = Readings(fleet, demand=resets)
    for n in (100, 10_000):
        idx = np.arange(n, dtype=np.int64)
        line(f"max demand, {n:_} meters, day 20 of the month",
             best_of(k, lambda idx=idx: md.register(idx, MD, day + 10 * 86_400)))
    resets.reset(np.arange(0, 10_000, 2), day + 2 * 86_400 + 100)
    idx = np.arange(10_000, dtype=np.int64)
    line("max demand, 10_000 meters, half reset on day 12", best_of(k, lambda: md.register(idx, MD, day + 10 * 86_400)))

    # -- relay ----------------------------------------------------------------------------------
    n = min(100_000, args.meters)
    idx = np.arange(n, dtype=np.int64)
    relay = RelayModel(fleet, RelayConfig(), SupplyHistory())
    t0 = time.perf_counter()
    relay.operate(idx, "disconnect", day, key=1)
    line(f"relay disconnect, {n:_} meters", time.perf_counter() - t0)
    t0 = time.perf_counter()
    relay.operate(idx, "connect", day + 600, key=2)
    line(f"relay connect, {n:_} meters", time.perf_counter() - t0)
    print(f"relay state bytes per meter: {relay.state.nbytes / fleet.size:.0f}")

    # -- events ---------------------------------------------------------------------------------
    log = EventLog()
    rng = np.random.default_rng(9)
    batches = [rng.integers(0, 100_000, 10_000) for _ in range(100)]
    t0 = time.perf_counter()
    for j, b in enumerate(batches):
        log.append(b, 1_700_000_000 + 60 * j, ("3.31.0.68", "3.31.0.42")[j % 2], f"T-{j}", "C-1")
    line("events: append 1,000,000 (100 x 10,000, Event lists returned)", time.perf_counter() - t0)
    want = rng.choice(100_000, 100, replace=False)
    t0 = time.perf_counter()
    log.query(want, None, None, None)
    line("events: first query of 100 meters (builds the index)", time.perf_counter() - t0)
    got = log.query(want, None, None, None)
    line("events: query 100 meters", best_of(k, lambda: log.query(want, None, None, None)), f"{len(got)} events")
    line("events: query 100 meters, one type, 30 min",
         best_of(k, lambda: log.query(want, ["3.31.0.68"], 1_700_000_000, 1_700_001_800)))
    log.append(want[:10], 1_700_000_000, "3.8.0.214")
    line("events: query 100 meters after an append (tail scan)", best_of(k, lambda: log.query(want, None, None, None)))
    line("events: query all meters, one type, 30 min",
         best_of(k, lambda: log.query(None, ["3.31.0.68"], 1_700_000_000, 1_700_001_800)))


if __name__ == "__main__":
    main()

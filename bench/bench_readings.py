"""How fast the model answers the request shapes a head-end sees, beyond one day of intervals.

Rates are the best of several runs on one warm Readings object (the per-year tables of
fleet-wide weather are built on first use and cached).

    python bench/bench_readings.py [--meters 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

from simulator.model.fleet import Fleet, FleetConfig
from simulator.model.readings import Readings
from simulator.timeutil import parse_datetime

D15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
DREG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
DDAY = "11.0.0.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
R15 = "0.0.2.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0"
VOLT = "0.0.0.6.0.1.54.0.0.0.0.0.0.0.128.0.29.0"


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def line(name: str, seconds: float, items: int, unit: str) -> None:
    print(f"{name:<44} {seconds:9.4f} s   {int(items / seconds):>13_} {unit}/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--meters", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("# command: python " + " ".join(sys.argv))
    fleet = Fleet(FleetConfig(seed=1, size=args.meters))
    r = Readings(fleet)
    t = parse_datetime("2026-03-10T00:00:00Z")
    n = min(100_000, args.meters)
    many = np.arange(n, dtype=np.int64)
    k = args.repeat

    far = parse_datetime("2090-06-01T00:00:00Z")
    for name, when in (("aligned", t), ("mid_interval", t + 421), ("70_years_after_origin", far)):
        line(f"register_{n}_meters_{name}", best_of(k, lambda w=when: r.register(many, DREG, w)), n, "meters")
    line(f"voltage_{n}_meters", best_of(k, lambda: r.instant(many, VOLT, t + 5)), n, "meters")
    year = parse_datetime("2025-01-01T00:00:00Z")
    m1k = np.arange(1_000, dtype=np.int64)
    line("daily_1000_meters_x_365_days", best_of(k, lambda: r.intervals(m1k, DDAY, year, 365)),
         365_000, "meter-days")
    m100 = np.arange(100, dtype=np.int64)
    line("15min_100_meters_x_31_days", best_of(k, lambda: r.intervals(m100, D15, year, 31 * 96)),
         100 * 31 * 96, "meter-intervals")
    line("15min_1_meter_x_366_days", best_of(k, lambda: r.intervals(m100[:1], D15, year, 366 * 96)),
         366 * 96, "meter-intervals")
    line("15min_1000_meters_x_1_interval", best_of(k, lambda: r.intervals(m1k, D15, t, 1)),
         1_000, "meter-intervals")
    pro = np.flatnonzero(fleet.class_index == 2)[:10_000].astype(np.int64)
    line(f"15min_export_{len(pro)}_prosumers_x_96", best_of(k, lambda: r.intervals(pro, R15, t, 96)),
         len(pro) * 96, "meter-intervals")


if __name__ == "__main__":
    main()

"""Fleet start-up cost and interval synthesis rate.

Start time and RSS growth are measured in a fresh subprocess (after numpy and the package are
imported), so nothing allocated by an earlier step is counted or hidden. RSS comes from
/proc/self/statm. Synthesis rates are the best of several runs, in meter-intervals per second.

    python bench/bench_fleet.py [--meters 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


def child_start(meters: int) -> None:
    """Runs in the subprocess: print start seconds and RSS bytes added by Fleet + Readings."""
    t_import = time.perf_counter()
    import numpy as np  # noqa: F401

    from simulator.model.fleet import Fleet, FleetConfig
    from simulator.model.readings import Readings

    imported = time.perf_counter() - t_import
    before = _rss()
    t0 = time.perf_counter()
    fleet = Fleet(FleetConfig(seed=1, size=meters))
    t_fleet = time.perf_counter() - t0
    readings = Readings(fleet)
    t_total = time.perf_counter() - t0
    after = _rss()
    assert readings.fleet is fleet
    print(imported, t_fleet, t_total, after - before)


def line(name: str, value: object, note: str = "") -> None:
    text = f"{value:_}" if isinstance(value, int) else str(value)
    print(f"{name:<42} {text}" + (f"   ({note})" if note else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--meters", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--child-start", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_start:
        child_start(args.child_start)
        return

    print("# command: python " + " ".join(sys.argv))
    starts = []
    for _ in range(3):
        out = subprocess.run([sys.executable, __file__, "--child-start", str(args.meters)],
                             capture_output=True, text=True, check=True)
        starts.append([float(x) for x in out.stdout.split()])
    imported, t_fleet, t_total, rss = min(starts, key=lambda s: s[2])
    line("fleet_meters", args.meters)
    line("import_model_s", f"{imported:.3f}")
    line("fleet_start_s", f"{t_fleet:.3f}", "Fleet(config), best of 3 fresh processes")
    line("fleet_and_readings_start_s", f"{t_total:.3f}", "target < 2 s")
    line("rss_delta_bytes", int(rss))
    line("rss_delta_bytes_per_meter", f"{rss / args.meters:.2f}", "target < 100")

    import numpy as np

    from simulator.model.fleet import Fleet, FleetConfig
    from simulator.model.readings import Readings
    from simulator.timeutil import parse_datetime

    fleet = Fleet(FleetConfig(seed=1, size=args.meters))
    readings = Readings(fleet)
    code = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
    t0 = parse_datetime("2026-03-10T00:00:00Z")
    for n in (1_000, 100_000):
        idx = np.arange(n, dtype=np.int64)
        best = float("inf")
        for k in range(args.repeat):
            start = time.perf_counter()
            readings.intervals(idx, code, t0 + k * 86400, 96)
            best = min(best, time.perf_counter() - start)
        line(f"intervals_{n}x96_s", f"{best:.4f}", f"best of {args.repeat}, mixed classes")
        line(f"intervals_{n}x96_meter_intervals_per_s", int(n * 96 / best))

    sample = np.random.default_rng(1).integers(0, args.meters, 100_000)
    start = time.perf_counter()
    texts = fleet.mrids(sample)
    line("mrids_batch_per_s", int(len(texts) / (time.perf_counter() - start)))
    start = time.perf_counter()
    for text in texts[:20_000]:
        fleet.index_of_mrid(text)
    line("index_of_mrid_per_s", int(20_000 / (time.perf_counter() - start)))
    start = time.perf_counter()
    for i in sample[:20_000].tolist():
        fleet.index_of_serial(fleet.serial(i))
    line("serial_round_trip_per_s", int(20_000 / (time.perf_counter() - start)))
    fleet.customer(0)  # the first call imports faker
    start = time.perf_counter()
    for i in sample[:2_000].tolist():
        fleet.customer(i)
    line("customers_per_s", int(2_000 / (time.perf_counter() - start)))

if __name__ == "__main__":
    main()

"""Simulation model: sim events per second, comm planning rate, one 100,000-meter job end to end.

Everything runs in fast mode (no wall clock): the environment is stepped as fast as it goes.
- events/s: many concurrent jobs (1,000 jobs of 100 meters, batches of 10; and 100 jobs of
  10,000 meters, batches of 100); the loop steps the environment itself so it counts every simpy
  event processed. Wall time includes each job's planning (`CommModel.plan` runs in the job's
  first step) and the batch callbacks; "excl. planning" subtracts the same plans timed alone.
- planning: meters per second of `CommModel.plan` for one request (best of --repeat).
- end to end: submit a 100,000-meter job with batches of 1,000 and run until its last batch.
The comm classes mimic a field mix: RF mesh (lognormal latency, retries) and cellular
(empirical percentiles), 1 % of the fleet unreachable, 10 % slow.

    python bench/bench_sim.py [--fleet 1000000] [--jobs 1000] [--job-meters 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import simpy

from simulator.model.comms import CohortSpec, CommClassSpec, CommConfig, CommModel, LatencySpec
from simulator.model.fleet import Fleet, FleetConfig
from simulator.model.jobs import JobBatch, JobScheduler

CONFIG = CommConfig(
    classes=(
        CommClassSpec("rf_mesh", LatencySpec("lognormal", median_s=4.0, sigma=0.8), success=0.97, retries=2,
                      retry_delay_s=30.0),
        CommClassSpec("cellular", LatencySpec("empirical", percentiles=((0.5, 2.0), (0.9, 6.0), (0.99, 20.0),
                                                                        (1.0, 60.0))), success=0.99, retries=1,
                      retry_delay_s=10.0),
    ),
    class_mix=(("rf_mesh", 0.7), ("cellular", 0.3)),
    attempt_timeout_s=120.0,
    data_unavailable=0.005,
    cohorts=(CohortSpec("unreachable", fraction=0.01, name="lost"),
             CohortSpec("slow", fraction=0.10, factor=3.0, name="congested")),
)


def line(name: str, value: object, note: str = "") -> None:
    text = f"{value:_}" if isinstance(value, int) else str(value)
    print(f"{name:<44} {text}" + (f"   ({note})" if note else ""))


def count_steps(env: simpy.Environment) -> int:
    steps = 0
    step = env.step
    try:
        while True:
            step()
            steps += 1
    except simpy.core.EmptySchedule:
        return steps


def workload(model: CommModel, jobs: int, job_meters: int) -> list[np.ndarray]:
    size = model.fleet.size
    starts = [(k * job_meters * 7) % (size - job_meters) for k in range(jobs)]
    return [np.arange(lo, lo + job_meters) for lo in starts]


def bench_events(model: CommModel, requests: list[np.ndarray], batch: int) -> tuple[int, float, int]:
    """Submit every job at t=0 (all in flight), then step until nothing is left."""
    env = simpy.Environment()
    sched = JobScheduler(env, model, max_in_flight=len(requests), max_queued=0)
    batches = 0

    def on_batch(b: JobBatch) -> None:
        nonlocal batches
        batches += 1

    t0 = time.perf_counter()
    for k, idx in enumerate(requests):
        sched.submit(idx, key=k, on_batch=on_batch, batch_size=batch)
    steps = count_steps(env)
    return steps, time.perf_counter() - t0, batches


def bench_planning_only(model: CommModel, requests: list[np.ndarray]) -> float:
    t0 = time.perf_counter()
    for k, idx in enumerate(requests):
        model.plan(idx, 0.0, key=k)
    return time.perf_counter() - t0


def report_workload(model: CommModel, jobs: int, job_meters: int, batch: int, repeat: int) -> None:
    requests = workload(model, jobs, job_meters)
    best = min((bench_events(model, requests, batch) for _ in range(repeat)), key=lambda r: r[1])
    steps, wall, batches = best
    planning = min(bench_planning_only(model, requests) for _ in range(repeat))
    label = f"{jobs:_} jobs x {job_meters:_} meters, batch {batch:_}"
    line(f"[{label}] sim events", steps, f"{batches:_} batches")
    line(f"[{label}] wall (s)", round(wall, 4), f"of which planning ~{planning:.4f} s")
    line(f"[{label}] sim events/s", int(steps / wall), "end to end: submit, plan, deliver")
    line(f"[{label}] sim events/s excl. planning", int(steps / max(wall - planning, 1e-9)))
    line(f"[{label}] meters/s", int(jobs * job_meters / wall))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fleet", type=int, default=1_000_000)
    ap.add_argument("--jobs", type=int, default=1_000)
    ap.add_argument("--job-meters", type=int, default=100)
    ap.add_argument("--job-batch", type=int, default=10)
    ap.add_argument("--plan-meters", type=int, default=100_000)
    ap.add_argument("--big-job", type=int, default=100_000)
    ap.add_argument("--big-batch", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print("command: python " + " ".join(sys.argv))

    t0 = time.perf_counter()
    fleet = Fleet(FleetConfig(seed=1, size=args.fleet))
    t_fleet = time.perf_counter() - t0
    CommModel(fleet, CONFIG)  # warm the lognormal table cache, so the next figure is the per-model cost
    t0 = time.perf_counter()
    model = CommModel(fleet, CONFIG)
    t_comm = time.perf_counter() - t0
    line("fleet size", args.fleet)
    line("Fleet start (s)", round(t_fleet, 4))
    line("CommModel start (s)", round(t_comm, 4), "comm class array, 1 byte/meter; cohorts compiled")

    report_workload(model, args.jobs, args.job_meters, args.job_batch, args.repeat)
    report_workload(model, args.jobs // 10, args.job_meters * 100, args.job_batch * 10, args.repeat)

    small = np.arange(1)
    t0 = time.perf_counter()
    for k in range(2_000):
        model.plan(small, 0.0, key=k)
    line("plan 1 meter (us)", round((time.perf_counter() - t0) / 2_000 * 1e6, 1), "fixed cost of a request")

    idx = np.arange(args.plan_meters, dtype=np.int64) * (args.fleet // args.plan_meters)
    best = float("inf")
    for k in range(args.repeat):
        t0 = time.perf_counter()
        model.plan(idx, 0.0, key=1_000 + k)
        best = min(best, time.perf_counter() - t0)
    line(f"plan {args.plan_meters:_} meters (s)", round(best, 4))
    line("planning rate (meters/s)", int(args.plan_meters / best))

    best = float("inf")
    for k in range(args.repeat):
        env = simpy.Environment()
        sched = JobScheduler(env, model)
        got: list[int] = []

        def collect(b: JobBatch, got: list[int] = got) -> None:
            got.append(len(b.plan))

        t0 = time.perf_counter()
        job = sched.submit(np.arange(args.big_job), key=2_000 + k, on_batch=collect, batch_size=args.big_batch)
        env.run()
        best = min(best, time.perf_counter() - t0)
        assert job.done.triggered and sum(got) == args.big_job
    line(f"{args.big_job:_}-meter job, batch {args.big_batch:_} (s)", round(best, 4),
         f"submit to last batch, {len(got)} batches, sim time {env.now:.1f} s")


if __name__ == "__main__":
    main()

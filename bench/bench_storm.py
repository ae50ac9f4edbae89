"""The 50,000-meter outage storm end to end over loopback SOAP, beside the raw HTTP ceiling.

    /work/venv/bin/python bench/bench_storm.py [--until 1h] [--raw-seconds 5] [--skip-no-validate] [--timeout 600]

An MDMS cares about one figure during a storm: how many events per second reach it. This script
measures it the way a user would see it, with the real programs as subprocesses: the built-in
receiver (`hes-sim mdms`, once validating every message, once with --no-validate), and
`hes-sim run scenarios/outage-storm.yaml --fast --until 1h` pointed at it, timed from start to
exit (imports, fleet, simulation, outbox, delivery: everything). Events are counted from the
receiver's journal when it records them per message (`events`), else taken from the run's summary.

The ceiling is what the same stack (aiohttp server, aiohttp client, loopback, two processes, the
outbox's concurrency) does with messages of the same size when nothing is built, stored, parsed
or validated: the server reads the body and answers a small fixed reply. The ratio says how much
of that ceiling the storm reaches. Every subprocess runs under a time limit and is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    Children,
    children_cpu,
    cpu_seconds,
    describe_code,
    hes_sim,
    parse_run_summary,
    shown,
    sigterm_exits,
    wait_for_line,
)

SCENARIO = "scenarios/outage-storm.yaml"
EVENTS_PATH = "/SendEndDeviceEvents"
SOAP_ACTION = '"http://iec.ch/TC57/2011/EndDeviceEvents/CreatedEndDeviceEvents"'
# About the size of the receiver's acknowledgement, so both servers answer alike.
RAW_REPLY = b"<ok/>" + b" " * 600


# ------------------------------------------------------------------------------- the storm


@dataclass
class StormRun:
    validate: bool
    command: str
    wall_s: float = 0.0
    exit_code: int | None = None
    fast_run_s: float | None = None  # the summary's "ran ... in X s": after startup, to the end of delivery
    summary_events: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    delivered: int = 0
    retries: int = 0
    failed: int = 0
    undelivered: int = 0
    journal_messages: int = 0
    journal_ok: int = 0
    journal_valid: int = 0
    journal_events: int | None = None  # None: the journal has no per-message event count
    sizes: list[int] = field(default_factory=list)
    delivery_window_s: float | None = None  # first to last arrival at the receiver
    started_at: float = 0.0  # wall clock (time.time) when the run was started, to place the arrivals
    first_arrival_s: float | None = None  # after started_at
    last_arrival_s: float | None = None
    arrivals: list[float] = field(default_factory=list)  # seconds after started_at, sorted
    sim_cpu_s: float = 0.0
    receiver_cpu_s: float = 0.0
    output: str = ""

    @property
    def events(self) -> int:
        """Events received: counted by the receiver, else the summary's (all of them when all arrived)."""
        if self.journal_events is not None:
            return self.journal_events
        return sum(self.summary_events.values()) if self.undelivered == self.failed == 0 else 0

    @property
    def events_source(self) -> str:
        return "journal (EndDeviceEvent per message)" if self.journal_events is not None else "run summary"


def parse_summary(run: StormRun, text: str) -> None:
    summary = parse_run_summary(text)
    run.fast_run_s, run.summary_events = summary.fast_run_s, summary.events
    run.sent, run.delivered, run.retries = summary.sent, summary.delivered, summary.retries
    run.failed, run.undelivered = summary.failed, summary.undelivered


def read_journal(run: StormRun, path: Path) -> None:
    arrivals: list[float] = []
    events: int | None = 0
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            entry = json.loads(line)
            run.journal_messages += 1
            run.journal_ok += entry.get("answered") == "ok"
            run.journal_valid += entry.get("valid") is True
            run.sizes.append(int(entry["bytes"]))
            if events is not None:
                events = events + int(entry["events"]) if "events" in entry else None
            arrivals.append(datetime.fromisoformat(entry["received_at"].replace("Z", "+00:00")).timestamp())
    run.journal_events = events if run.journal_messages else None
    run.arrivals = sorted(a - run.started_at for a in arrivals)
    if arrivals:
        run.first_arrival_s = min(arrivals) - run.started_at
        run.last_arrival_s = max(arrivals) - run.started_at
    if len(arrivals) > 1:
        run.delivery_window_s = max(arrivals) - min(arrivals)


def run_storm(children: Children, tmp: Path, validate: bool, until: str, timeout_s: float) -> StormRun:
    name = "validate" if validate else "no-validate"
    journal = tmp / f"journal-{name}.jsonl"
    receiver_args = [*hes_sim(), "mdms", "--host", "127.0.0.1", "--port", "0", "--journal", str(journal)]
    if not validate:
        receiver_args.append("--no-validate")
    receiver = children.start(receiver_args, stdout=subprocess.PIPE, cwd=tmp,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        base = wait_for_line(receiver, "listening on ", 30.0).split()[2]
        sim_args = [*hes_sim(), "run", SCENARIO, "--fast", "--until", until,
                    "--set", f"destinations.events=[{base}{EVENTS_PATH}]",
                    "--set", f"outbox.path={tmp / f'outbox-{name}.sqlite3'}"]
        run = StormRun(validate, command=f"(cd {REPO} && {shown(sim_args)})")
        print(f"receiver: {shown(receiver_args)}", flush=True)
        print(f"storm:    {run.command}", flush=True)
        receiver_cpu = cpu_seconds(receiver.pid)
        cpu_before = children_cpu()
        run.started_at = time.time()
        started = time.perf_counter()
        sim = children.start(sim_args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = sim.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            children.stop(sim)
            out = (sim.stdout.read() if sim.stdout else b"") or b""
            run.output = out.decode("utf-8", "replace")
            raise RuntimeError(f"the storm did not finish within {timeout_s:g} s:\n{run.output}") from None
        run.wall_s = time.perf_counter() - started
        children.procs.remove(sim)
        run.exit_code = sim.returncode
        run.sim_cpu_s = children_cpu() - cpu_before
        run.receiver_cpu_s = cpu_seconds(receiver.pid) - receiver_cpu
        run.output = out.decode("utf-8", "replace")
    finally:
        children.stop(receiver)
    parse_summary(run, run.output)
    read_journal(run, journal)
    return run


# ------------------------------------------------------------------------------- the raw ceiling


async def _raw_server() -> None:
    """A bare aiohttp app: read the whole POST body, answer a fixed small reply."""
    from aiohttp import web

    async def post(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=RAW_REPLY, headers={"Content-Type": "text/xml; charset=utf-8"})

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/{path:.*}", post)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


async def _raw_client(url: str, size: int, concurrency: int, seconds: float, warmup_s: float) -> dict[str, Any]:
    """`concurrency` workers POSTing `size`-byte bodies back to back, with the outbox sender's session settings."""
    import aiohttp

    body = b"<x>" + b"e" * max(size - 7, 0) + b"</x>"
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": SOAP_ACTION}
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup_s
    end = start + seconds
    latencies: list[float] = []
    errors = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while (t0 := loop.time()) < end:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                ok = response.status == 200
            t1 = loop.time()
            if t0 >= start:
                latencies.append(t1 - t0)
                errors += not ok

    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=30.0),
        connector=aiohttp.TCPConnector(limit=100, enable_cleanup_closed=True),
    ) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    latencies.sort()
    return {"requests": len(latencies), "seconds": seconds, "errors": errors, "body_bytes": len(body),
            "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None}


@dataclass
class RawRun:
    server_command: str
    client_command: str
    requests: int
    seconds: float
    errors: int
    body_bytes: int
    p50_ms: float | None
    p99_ms: float | None
    server_cpu_s: float
    client_cpu_s: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def run_raw(children: Children, size: int, concurrency: int, seconds: float, warmup_s: float) -> RawRun:
    me = [sys.executable, str(Path(__file__).resolve())]
    server_args = [*me, "_raw-server"]
    server = children.start(server_args, stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = wait_for_line(server, "listening on ", 30.0).split()[2] + EVENTS_PATH
        client_args = [*me, "_raw-client", url, str(size), str(concurrency), f"{seconds:g}", f"{warmup_s:g}"]
        print(f"ceiling server: {shown(server_args)}", flush=True)
        print(f"ceiling client: {shown(client_args)}", flush=True)
        server_cpu = cpu_seconds(server.pid)
        cpu_before = children_cpu()
        client = children.start(client_args, stdout=subprocess.PIPE)
        try:
            out, _ = client.communicate(timeout=seconds + warmup_s + 60.0)
        except subprocess.TimeoutExpired:
            children.stop(client)
            raise RuntimeError("the ceiling client did not finish in time") from None
        children.procs.remove(client)
        if client.returncode != 0:
            raise RuntimeError(f"the ceiling client failed with exit status {client.returncode}")
        client_cpu = children_cpu() - cpu_before
        server_cpu = cpu_seconds(server.pid) - server_cpu
    finally:
        children.stop(server)
    result = json.loads(out.decode().strip().splitlines()[-1])
    return RawRun(shown(server_args), shown(client_args), server_cpu_s=server_cpu, client_cpu_s=client_cpu, **result)


# ------------------------------------------------------------------------------- report


def outbox_concurrency(overrides: Sequence[str] = ()) -> int:
    """The storm scenario's outbox.concurrency, so the ceiling is driven the same way."""
    sys.path.insert(0, str(REPO))
    from simulator.scenario import load_scenario

    return int(load_scenario(REPO / SCENARIO, list(overrides)).outbox.concurrency)


def report(run: StormRun, raw: RawRun | None) -> None:
    label = "validation on" if run.validate else "validation off (--no-validate)"
    size = statistics.median(run.sizes) if run.sizes else 0
    e2e_messages = run.journal_messages / run.wall_s
    print(f"\n== storm, receiver {label} ==")
    print(f"command: {run.command}")
    print(f"exit status {run.exit_code}; wall {run.wall_s:.2f} s from start to exit "
          f"(the summary's fast run: {run.fast_run_s} s; the rest is startup)")
    print(f"summary: events {', '.join(f'{k} x{v}' for k, v in sorted(run.summary_events.items()))}; "
          f"messages {run.sent} sent, {run.delivered} delivered, {run.retries} retries, {run.failed} failed, "
          f"{run.undelivered} undelivered")
    print(f"journal: {run.journal_messages} messages, {run.journal_ok} answered ok, {run.journal_valid} valid; "
          f"events counted from the {run.events_source}")
    print(f"CPU: simulator {run.sim_cpu_s:.2f} s, receiver {run.receiver_cpu_s:.2f} s "
          f"(of {run.wall_s:.2f} s wall on {os.cpu_count()} cores)")
    print(f"storm events delivered per second end to end: {run.events / run.wall_s:,.0f}"
          f"  ({run.events:,} events / {run.wall_s:.2f} s)")
    print(f"messages per second end to end: {e2e_messages:,.1f}  ({run.journal_messages} / {run.wall_s:.2f} s)")
    if run.first_arrival_s is not None and run.last_arrival_s is not None:
        print(f"  arrivals at the receiver: first {run.first_arrival_s:.2f} s, last {run.last_arrival_s:.2f} s "
              f"after the start (exit at {run.wall_s:.2f} s)")
    if run.delivery_window_s:
        print(f"  during delivery only (first to last arrival, {run.delivery_window_s:.2f} s): "
              f"{(run.journal_messages - 1) / run.delivery_window_s:,.1f} messages/s, "
              f"{run.events / run.delivery_window_s:,.0f} events/s")
    if len(run.arrivals) > 2:
        gaps = [b - a for a, b in zip(run.arrivals, run.arrivals[1:], strict=False)]
        at = max(range(len(gaps)), key=gaps.__getitem__)
        burst = run.arrivals[at + 1:]
        print(f"  longest pause between arrivals: {gaps[at]:.2f} s, after message {at + 1} "
              f"({run.arrivals[at]:.2f} -> {run.arrivals[at + 1]:.2f} s)")
        if len(burst) > 2 and burst[-1] > burst[0]:
            print(f"  after that pause: {len(burst)} messages in {burst[-1] - burst[0]:.2f} s = "
                  f"{(len(burst) - 1) / (burst[-1] - burst[0]):,.1f} messages/s")
    if run.sizes:
        print(f"bytes per message: {size:,.0f}  (median; min {min(run.sizes):,}, max {max(run.sizes):,}, "
              f"{run.events / run.journal_messages:,.0f} events per message)")
    if raw is not None:
        print(f"raw HTTP messages per second for the same size: {raw.per_second:,.1f}")
        print(f"ratio (end to end / raw): {e2e_messages / raw.per_second:.1%}")


def report_raw(raw: RawRun, concurrency: int) -> None:
    print("\n== raw HTTP ceiling ==")
    print(f"aiohttp server reading each body and answering {len(RAW_REPLY)} bytes; aiohttp client in its own "
          f"process, {concurrency} in flight, {raw.body_bytes:,}-byte bodies, {raw.seconds:g} s measured")
    print(f"raw HTTP messages per second: {raw.per_second:,.1f}  ({raw.requests} requests, {raw.errors} errors, "
          f"p50 {raw.p50_ms:.2f} ms, p99 {raw.p99_ms:.2f} ms)" if raw.p50_ms is not None else
          f"raw HTTP messages per second: {raw.per_second:,.1f}  ({raw.requests} requests, {raw.errors} errors)")
    print(f"  {raw.per_second * raw.body_bytes / 1e6:,.0f} MB/s; CPU: server {raw.server_cpu_s:.2f} s, "
          f"client {raw.client_cpu_s:.2f} s over ~{raw.seconds:g} s + warm-up")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_raw-server"]:
        asyncio.run(_raw_server())
        return 0
    if argv[:1] == ["_raw-client"]:
        url, size_arg, concurrency_arg, seconds_arg, warmup_arg = argv[1:6]
        result = _raw_client(url, int(size_arg), int(concurrency_arg), float(seconds_arg), float(warmup_arg))
        print(json.dumps(asyncio.run(result)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--until", default="1h", help="sim time of the storm run (default 1h)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per storm run")
    parser.add_argument("--raw-seconds", type=float, default=5.0, help="measured seconds of the ceiling")
    parser.add_argument("--raw-warmup", type=float, default=1.0, help="unmeasured seconds before them")
    parser.add_argument("--skip-no-validate", action="store_true", help="only the run with validation")
    args = parser.parse_args(argv)

    concurrency = outbox_concurrency()
    load = os.getloadavg()
    print(f"$ {shown([sys.executable, *sys.argv])}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC; code: {describe_code()}")
    print(f"machine: {os.cpu_count()} CPUs, load average at start {load[0]:.2f} (shared: other work competes)")
    children = Children()
    tmp = Path(tempfile.mkdtemp(prefix="bench_storm_"))
    runs: list[StormRun] = []
    try:
        with sigterm_exits():
            for validate in (True, False)[: 1 if args.skip_no_validate else 2]:
                run = run_storm(children, tmp, validate, args.until, args.timeout)
                runs.append(run)
                if run.exit_code != 0:
                    print(f"the storm exited {run.exit_code}:\n{run.output}", file=sys.stderr)
            sizes = [s for r in runs for s in r.sizes]
            if not sizes:
                print("no message reached the receiver: nothing to compare with the ceiling", file=sys.stderr)
                return 1
            size = int(statistics.median(sizes))
            raw = run_raw(children, size, concurrency, args.raw_seconds, args.raw_warmup)
    finally:
        children.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    report_raw(raw, concurrency)
    for run in runs:
        report(run, raw)
    return 0 if all(r.exit_code == 0 and r.undelivered == r.failed == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

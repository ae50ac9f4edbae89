"""The 50,000-meter outage storm end to end through a real ActiveMQ broker, beside the broker's raw throughput.

    /work/venv/bin/python bench/bench_jms.py [--runs 3] [--meters 50000] [--until 1h] [--raw-messages 300]
                                             [--durable] [--heap 256m] [--timeout 600]

The JMS twin of bench_storm.py. An MDMS behind a broker sees the storm as messages on the topic
`hes.events.EndDeviceEvents`; the figure it cares about is how many events per second reach it.
So this script starts a throwaway broker (`hes-sim broker`, free ports, a temp --dir), subscribes
to the topic first (a topic keeps nothing for a subscriber that is not there yet), then runs
`hes-sim run scenarios/outage-storm.yaml --fast --until 1h --set jms.enabled=true ...` as a
subprocess and counts the events arriving at the subscriber, from the simulator's start to the
last event received.

The ceiling, measured in the same run against the same broker and the same kind of subscriber:
a bare stomp.py publisher in its own process sends a real storm message (captured from the run,
median size, same headers) over and over, (1) waiting for each receipt before the next, as the
head-end's JmsSender does, (2) with 8 receipts in flight on one connection (the outbox's
concurrency), and (3) without receipts. Its messages per second, times the events per message,
is what the broker, the subscriber and loopback allow; the ratio says how much of it the storm
reaches. With --durable the subscriber is a durable topic subscription acking each message (what
the JMS MDMS receiver does), so the broker also writes every persistent message to its store.

Clocks: time.monotonic() everywhere (system-wide on Linux, so a child's start mark and our
arrivals compare). Every subprocess, the broker included, is stopped on any way out short of
SIGKILL.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
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
STORM_METERS = 50_000
HOST = "127.0.0.1"
TOPIC = "topic://hes.events.EndDeviceEvents"  # the scenario's default jms.event_topic for this noun
EVENTS_NS = "http://iec.ch/TC57/2011/EndDeviceEvents#"
# Each event is an unprefixed <EndDeviceEvent> in the payload's default namespace; the count is
# checked once per run against an lxml parse of a message.
EVENT_TAG = b"<EndDeviceEvent>"
RAW_WARMUP = 20
# (label, receipts, in flight): the ceiling's three ways of publishing.
RAW_MODES = (("receipt each", True, 1), ("8 receipts in flight", True, 8), ("no receipts", False, 0))


# ------------------------------------------------------------------------------- the broker


class BrokerProcess:
    """`hes-sim broker` as a child: its JVM's pid comes from the launcher's pid file, its group from that."""

    def __init__(self, children: Children, directory: Path, heap: str) -> None:
        self.directory = directory
        self.args = [*hes_sim(), "broker", "--dir", str(directory), "--host", HOST, "--stomp-port", "0",
                     "--openwire-port", "0", "--heap", heap]
        self.began = time.monotonic()
        self.proc = children.start(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.start_s = float("nan")
        self.stomp_port = 0

    def wait_ready(self) -> None:
        """Until the command says STOMP answers; `start_s` is the time from spawning it."""
        line = wait_for_line(self.proc, "ActiveMQ ready:", 180.0)
        self.start_s = time.monotonic() - self.began
        match = re.search(r"STOMP \S+:(\d+),", line)
        if match is None:
            raise RuntimeError(f"cannot read the STOMP port from {line!r}")
        self.stomp_port = int(match.group(1))

    def members(self) -> list[int]:
        """Live processes of the broker's group (the launcher's shell and the JVM)."""
        try:
            pgid = int((self.directory / "activemq.pid").read_text().strip())
        except (OSError, ValueError):
            return []
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[2]) == pgid:
                    found.append(int(stat.parent.name))
        return found

    def rss_kib(self) -> int:
        best = 0
        for pid in self.members():
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        best = max(best, int(line.split()[1]))
        return best

    def cpu_s(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.members())

    def stop(self, children: Children) -> None:
        """SIGINT to `hes-sim broker`, which stops its JVM and waits for it (KahaDB closes cleanly).

        The JVM runs in a session of its own, so should the command not manage within the grace
        (or have died), the JVM's group is killed here: it must not outlive the benchmark.
        """
        pgid = None
        with contextlib.suppress(OSError, ValueError):
            pgid = int((self.directory / "activemq.pid").read_text().strip())
        children.stop(self.proc, grace_s=45.0)
        if pgid is not None and self.members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)


# ------------------------------------------------------------------------------- the subscriber


class TopicCounter:
    """Counts messages, bytes and events arriving on the topic; the handler runs on stomp.py's thread."""

    def __init__(self, port: int, durable: bool) -> None:
        from simulator.transports.jms import JmsConnection

        self.durable = durable
        self.connection = JmsConnection(HOST, port, client_id=f"bench-jms-{os.getpid()}" if durable else None)
        self._cond = threading.Condition()
        self.reset()
        headers = {"activemq.subscriptionName": "bench-jms"} if durable else None
        self.connection.connect()
        self.connection.subscribe(TOPIC, self._on_message, ack="client-individual" if durable else "auto",
                                  headers=headers)

    def reset(self, only_phase: str | None = None) -> None:
        """Forget what arrived; count only messages whose `bench` property is `only_phase` (None: all)."""
        with self._cond:
            self.only_phase = only_phase
            self.arrivals: list[float] = []
            self.events = 0
            self.bytes = 0
            self.sizes: list[int] = []
            self.samples: dict[int, bytes] = {}  # one body per size, for the ceiling and the check

    def _on_message(self, msg: Any) -> None:
        now = time.monotonic()
        if self.durable:
            self.connection.ack(msg)
        body = msg.body
        with self._cond:
            if self.only_phase is not None and msg.properties.get("bench") != self.only_phase:
                return
            self.arrivals.append(now)
            self.events += body.count(EVENT_TAG)
            self.bytes += len(body)
            self.sizes.append(len(body))
            self.samples.setdefault(len(body), body)
            self._cond.notify_all()

    def wait_for(self, messages: int, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.arrivals) >= messages, timeout_s)

    def median_body(self) -> bytes:
        with self._cond:
            size = sorted(self.sizes)[len(self.sizes) // 2]
            return self.samples[size]

    def close(self) -> None:
        self.connection.close()


def lxml_event_count(body: bytes) -> int:
    from lxml import etree

    return sum(1 for _ in etree.fromstring(body).iter(f"{{{EVENTS_NS}}}EndDeviceEvent"))


# ------------------------------------------------------------------------------- the storm


@dataclass
class StormRun:
    command: str
    wall_s: float = 0.0  # start to exit
    exit_code: int | None = None
    fast_run_s: float | None = None
    summary_events: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    delivered: int = 0
    retries: int = 0
    failed: int = 0
    undelivered: int = 0
    messages: int = 0  # received by the subscriber
    events: int = 0
    bytes: int = 0
    sizes: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # seconds after the start, sorted
    events_checked: tuple[int, int] | None = None  # (substring count, lxml count) of one message
    sim_cpu_s: float = 0.0
    broker_cpu_s: float = 0.0
    subscriber_cpu_s: float = 0.0
    broker_rss_kib: int = 0
    output: str = ""

    @property
    def last_arrival_s(self) -> float:
        return self.arrivals[-1] if self.arrivals else float("nan")

    @property
    def events_per_s(self) -> float:
        """Simulator start to the last event received."""
        return self.events / self.last_arrival_s if self.arrivals else 0.0

    @property
    def delivery_window_s(self) -> float:
        return self.arrivals[-1] - self.arrivals[0] if len(self.arrivals) > 1 else float("nan")

    @property
    def delivery_events_per_s(self) -> float:
        return self.events / self.delivery_window_s if len(self.arrivals) > 1 else 0.0

    def longest_pause(self) -> tuple[int, float] | None:
        """(messages before it, its length): the simulator building while nothing is sent."""
        if len(self.arrivals) < 3:
            return None
        gaps = [b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)]
        at = max(range(len(gaps)), key=gaps.__getitem__)
        return at + 1, gaps[at]

    def burst_per_s(self) -> float | None:
        """Messages per second after the longest pause, when the rest is built and only delivery is left."""
        pause = self.longest_pause()
        if pause is None:
            return None
        burst = self.arrivals[pause[0]:]
        return (len(burst) - 1) / (burst[-1] - burst[0]) if len(burst) > 2 and burst[-1] > burst[0] else None


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_storm(children: Children, broker: BrokerProcess, counter: TopicCounter, tmp: Path, n: int,
              args: argparse.Namespace) -> StormRun:
    sim_args = [*hes_sim(), "run", SCENARIO, "--fast", "--until", args.until,
                "--set", "jms.enabled=true", "--set", f"jms.host={HOST}", "--set", f"jms.port={broker.stomp_port}",
                "--set", "destinations.events=[]", "--set", f"outbox.path={tmp / f'outbox-{n}.sqlite3'}"]
    if args.meters != STORM_METERS:
        sim_args += ["--set", f"fleet.meters={args.meters}"]
    run = StormRun(command=f"(cd {REPO} && {shown(sim_args)})")
    print(f"storm {n}: {run.command}", flush=True)
    counter.reset()
    cpu_before, broker_before, self_before = children_cpu(), broker.cpu_s(), own_cpu()
    started = time.monotonic()
    sim = children.start(sim_args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = sim.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        children.stop(sim)
        raise RuntimeError(f"the storm did not finish within {args.timeout:g} s") from None
    run.wall_s = time.monotonic() - started
    children.procs.remove(sim)
    run.exit_code = sim.returncode
    run.sim_cpu_s = children_cpu() - cpu_before
    run.output = out.decode("utf-8", "replace")
    summary = parse_run_summary(run.output)
    run.fast_run_s, run.summary_events = summary.fast_run_s, summary.events
    run.sent, run.delivered, run.retries = summary.sent, summary.delivered, summary.retries
    run.failed, run.undelivered = summary.failed, summary.undelivered
    # Delivered means the broker confirmed it; the subscriber may still be reading the last ones.
    if not counter.wait_for(run.delivered, 60.0):
        print(f"  the subscriber got {len(counter.arrivals)} of {run.delivered} delivered messages in 60 s",
              file=sys.stderr)
    run.broker_cpu_s = broker.cpu_s() - broker_before
    run.subscriber_cpu_s = own_cpu() - self_before
    run.broker_rss_kib = broker.rss_kib()
    with counter._cond:
        run.arrivals = sorted(a - started for a in counter.arrivals)
        run.messages, run.events, run.bytes = len(counter.arrivals), counter.events, counter.bytes
        run.sizes = list(counter.sizes)
    if run.messages:
        body = counter.median_body()
        run.events_checked = (body.count(EVENT_TAG), lxml_event_count(body))
    return run


# ------------------------------------------------------------------------------- the raw ceiling


def _raw_publish(port: int, body_path: str, count: int, receipts: bool, in_flight: int) -> dict[str, Any]:
    """Publish `count` copies of a body as bare stomp.py would, after RAW_WARMUP unmeasured ones."""
    import stomp

    body = Path(body_path).read_bytes()
    done: set[str] = set()
    cond = threading.Condition()
    connected = threading.Event()

    class Listener(stomp.ConnectionListener):
        def on_connected(self, frame: Any) -> None:
            connected.set()

        def on_receipt(self, frame: Any) -> None:
            with cond:
                done.add(frame.headers["receipt-id"])
                cond.notify_all()

        def on_error(self, frame: Any) -> None:
            print(f"broker ERROR: {frame.headers.get('message')}", file=sys.stderr, flush=True)

    # The connection JmsConnection makes: STOMP 1.2, TextMessage (no content-length), bytes as they are.
    conn = stomp.Connection12([(HOST, port)], heartbeats=(10_000, 10_000), auto_content_length=False,
                              auto_decode=False, try_loopback_connect=False)
    conn.set_listener("bench", Listener())
    conn.connect(wait=False)
    if not connected.wait(10.0):
        raise RuntimeError("no CONNECTED from the broker")
    # The headers the head-end's messages carry: persistent, a correlation id, Verb and Noun.
    base = {"persistent": "true", "Verb": "created", "Noun": "EndDeviceEvents"}
    destination = "/" + TOPIC.replace("://", "/")
    outstanding: list[str] = []

    def send(phase: str, n: int, receipt: bool, window: int) -> None:
        headers = {**base, "correlation-id": str(uuid.uuid4()), "bench": phase}
        if receipt:
            headers["receipt"] = f"{phase}-{n}"
            outstanding.append(headers["receipt"])
        conn.send(destination, body, headers=headers)
        with cond:
            while len(outstanding) >= max(window, 1) or (outstanding and window == 0):
                if not cond.wait_for(lambda: outstanding[0] in done, 30.0):
                    raise RuntimeError("no receipt within 30 s")
                outstanding.pop(0)

    for n in range(RAW_WARMUP):
        send("warmup", n, True, 1)
    print("measuring", flush=True)  # the parent reads the broker's CPU from here
    cpu0 = own_cpu()
    start = time.monotonic()
    for n in range(count):
        send("measure", n, receipts, in_flight)
    with cond:
        while outstanding:
            if not cond.wait_for(lambda: outstanding[0] in done, 30.0):
                raise RuntimeError("no receipt within 30 s")
            outstanding.pop(0)
    sent = time.monotonic()
    conn.disconnect()  # DISCONNECT waits for its receipt: the broker has read every frame before it
    return {"start": start, "sent": sent, "disconnected": time.monotonic(), "cpu_s": own_cpu() - cpu0}


@dataclass
class RawRun:
    label: str
    messages: int
    body_bytes: int
    events_per_message: int
    seconds: float  # the publisher's first measured send to the subscriber's last arrival
    publisher_s: float  # first send to the last receipt (or the last frame written)
    publisher_cpu_s: float
    broker_cpu_s: float
    subscriber_cpu_s: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.per_second * self.events_per_message


def run_raw(children: Children, broker: BrokerProcess, counter: TopicCounter, body_path: Path, events: int,
            count: int, mode: tuple[str, bool, int]) -> RawRun:
    label, receipts, in_flight = mode
    publisher_args = [sys.executable, str(Path(__file__).resolve()), "_raw-publish", str(broker.stomp_port),
                      str(body_path), str(count), "1" if receipts else "0", str(in_flight)]
    counter.reset(only_phase="measure")
    publisher = children.start(publisher_args, stdout=subprocess.PIPE)
    wait_for_line(publisher, "measuring", 120.0)
    broker_before, self_before = broker.cpu_s(), own_cpu()
    try:
        out, _ = publisher.communicate(timeout=300.0)
    except subprocess.TimeoutExpired:
        children.stop(publisher)
        raise RuntimeError(f"the publisher ({label}) did not finish in time") from None
    children.procs.remove(publisher)
    if publisher.returncode != 0:
        raise RuntimeError(f"the publisher ({label}) failed with exit status {publisher.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    if not counter.wait_for(count, 60.0):
        raise RuntimeError(f"the subscriber got {len(counter.arrivals)} of {count} messages ({label})")
    broker_cpu, subscriber_cpu = broker.cpu_s() - broker_before, own_cpu() - self_before
    with counter._cond:
        last = max(counter.arrivals)
    return RawRun(label, count, body_path.stat().st_size, events, seconds=last - result["start"],
                  publisher_s=result["sent"] - result["start"], publisher_cpu_s=result["cpu_s"],
                  broker_cpu_s=broker_cpu, subscriber_cpu_s=subscriber_cpu)


# ------------------------------------------------------------------------------- report


def report_storm(run: StormRun) -> None:
    print(f"exit status {run.exit_code}; wall {run.wall_s:.2f} s from start to exit "
          f"(the summary's fast run: {run.fast_run_s} s; the rest is startup)")
    print(f"summary: events {', '.join(f'{k} x{v}' for k, v in sorted(run.summary_events.items()))}; "
          f"messages {run.sent} sent, {run.delivered} delivered, {run.retries} retries, {run.failed} failed, "
          f"{run.undelivered} undelivered")
    expected = sum(run.summary_events.values())
    print(f"subscriber: {run.messages} messages, {run.events:,} events (summary: {expected:,}), "
          f"{run.bytes / 1e6:,.1f} MB" + (f"; events in the median message: {run.events_checked[0]} counted, "
                                         f"{run.events_checked[1]} by lxml" if run.events_checked else ""))
    print(f"CPU: simulator {run.sim_cpu_s:.2f} s, broker {run.broker_cpu_s:.2f} s, "
          f"subscriber {run.subscriber_cpu_s:.2f} s (start to last arrival; {os.cpu_count()} cores); "
          f"broker RSS {run.broker_rss_kib / 1024:,.0f} MB")
    if not run.arrivals:
        return
    print(f"storm events per second end to end: {run.events_per_s:,.0f}  "
          f"({run.events:,} events / {run.last_arrival_s:.2f} s, simulator start to the last event received)")
    print(f"  arrivals: first {run.arrivals[0]:.2f} s, last {run.last_arrival_s:.2f} s after the start "
          f"(exit at {run.wall_s:.2f} s)")
    if len(run.arrivals) > 1:
        print(f"  during delivery only (first to last arrival, {run.delivery_window_s:.2f} s): "
              f"{(run.messages - 1) / run.delivery_window_s:,.1f} messages/s, "
              f"{run.delivery_events_per_s:,.0f} events/s")
    if (pause := run.longest_pause()) is not None:
        at, gap = pause
        print(f"  longest pause between arrivals: {gap:.2f} s, after message {at} "
              f"({run.arrivals[at - 1]:.2f} -> {run.arrivals[at]:.2f} s)")
        if (burst := run.burst_per_s()) is not None:
            rest = run.arrivals[at:]
            print(f"  after that pause: {len(rest)} messages in {rest[-1] - rest[0]:.2f} s = {burst:,.1f} messages/s")
    print(f"bytes per message: {statistics.median(run.sizes):,.0f}  (median; min {min(run.sizes):,}, "
          f"max {max(run.sizes):,}, {run.events / run.messages:,.0f} events per message)")


def report_raw(raw: RawRun) -> None:
    print(f"raw, {raw.label + ':':22} {raw.per_second:7,.1f} messages/s  "
          f"{raw.per_second * raw.body_bytes / 1e6:5,.0f} MB/s  = {raw.events_per_s:9,.0f} events/s  "
          f"({raw.messages} x {raw.body_bytes:,} B in {raw.seconds:.2f} s to the last arrival; "
          f"publisher done at {raw.publisher_s:.2f} s; CPU publisher {raw.publisher_cpu_s:.2f} s, "
          f"broker {raw.broker_cpu_s:.2f} s, subscriber {raw.subscriber_cpu_s:.2f} s)")


def span(values: Sequence[float], fmt: str) -> str:
    low, high = format(min(values), fmt), format(max(values), fmt)
    return low if low == high else f"{low}–{high}"


def report_ranges(broker: BrokerProcess, storms: list[StormRun], raws: list[list[RawRun]]) -> None:
    print(f"\n== {len(storms)} run(s) ==")
    print(f"broker start: {broker.start_s:.2f} s; broker RSS after each storm: "
          f"{span([s.broker_rss_kib / 1024 for s in storms], ',.0f')} MB")
    print(f"storm wall (start to exit): {span([s.wall_s for s in storms], '.2f')} s; "
          f"to the last event: {span([s.last_arrival_s for s in storms], '.2f')} s")
    print(f"messages: {span([s.messages for s in storms], ',')}; events: {span([s.events for s in storms], ',')}")
    print(f"events/s end to end: {span([s.events_per_s for s in storms], ',.0f')}; "
          f"during delivery: {span([s.delivery_events_per_s for s in storms], ',.0f')}")
    bursts = [b for s in storms if (b := s.burst_per_s()) is not None]
    if bursts:
        print(f"messages/s after the longest pause (building done, delivery left): {span(bursts, ',.1f')}")
    print(f"CPU: simulator {span([s.sim_cpu_s for s in storms], '.2f')} s, "
          f"broker {span([s.broker_cpu_s for s in storms], '.2f')} s "
          f"({span([1000 * s.broker_cpu_s / s.messages for s in storms if s.messages], '.1f')} ms per message), "
          f"subscriber {span([s.subscriber_cpu_s for s in storms], '.2f')} s")
    for i, (label, _, _) in enumerate(RAW_MODES):
        runs = [r[i] for r in raws if len(r) > i]
        if not runs:
            continue
        print(f"raw, {label}: {span([r.per_second for r in runs], ',.1f')} messages/s, "
              f"{span([r.per_second * r.body_bytes / 1e6 for r in runs], ',.0f')} MB/s, "
              f"{span([r.events_per_s for r in runs], ',.0f')} events/s; broker CPU "
              f"{span([r.broker_cpu_s / r.seconds for r in runs], '.0%')} of a core, "
              f"{span([1000 * r.broker_cpu_s / r.messages for r in runs], '.1f')} ms per message")
        ratios = [s.events_per_s / r.events_per_s for s, r in zip(storms, [x[i] for x in raws], strict=False)]
        during = [s.delivery_events_per_s / r.events_per_s for s, r in zip(storms, [x[i] for x in raws], strict=False)]
        print(f"  storm / raw ({label}): end to end {span(ratios, '.1%')}, during delivery {span(during, '.1%')}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_raw-publish"]:
        port, body_file, count, receipts, in_flight = argv[1:6]
        result = _raw_publish(int(port), body_file, int(count), receipts == "1", int(in_flight))
        print(json.dumps(result), flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="storm + ceiling rounds against the same broker")
    parser.add_argument("--meters", type=int, default=STORM_METERS, help="fleet.meters of the storm")
    parser.add_argument("--until", default="1h", help="sim time of the storm run (default 1h)")
    parser.add_argument("--raw-messages", type=int, default=300, help="measured messages per ceiling mode")
    parser.add_argument("--durable", action="store_true",
                        help="subscribe durably, acking each message (the broker stores every message)")
    parser.add_argument("--heap", default="256m", help="broker JVM heap (hes-sim broker --heap)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per storm run")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    load = os.getloadavg()
    print(f"$ {shown([sys.executable, *sys.argv])}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC; code: {describe_code()}")
    print(f"machine: {os.cpu_count()} CPUs, load average at start {load[0]:.2f} (shared: other work competes)")
    children = Children()
    tmp = Path(tempfile.mkdtemp(prefix="bench_jms_"))
    storms: list[StormRun] = []
    raws: list[list[RawRun]] = []
    counter: TopicCounter | None = None
    broker: BrokerProcess | None = None
    ok = True
    try:
        with sigterm_exits():
            broker = BrokerProcess(children, tmp / "broker", args.heap)
            broker.wait_ready()
            print(f"broker: {shown(broker.args)}")
            print(f"broker ready in {broker.start_s:.2f} s (STOMP {HOST}:{broker.stomp_port}); "
                  f"RSS {broker.rss_kib() / 1024:,.0f} MB")
            counter = TopicCounter(broker.stomp_port, args.durable)
            print(f"subscriber: {TOPIC}, {'durable, client-individual acks' if args.durable else 'auto ack'}, "
                  "in this process (JmsConnection)")
            for n in range(1, args.runs + 1):
                print(f"\n== run {n} ==", flush=True)
                storm = run_storm(children, broker, counter, tmp, n, args)
                storms.append(storm)
                report_storm(storm)
                if storm.exit_code != 0 or storm.undelivered or storm.failed:
                    print(f"the storm did not deliver everything:\n{storm.output}", file=sys.stderr)
                    ok = False
                if storm.events != sum(storm.summary_events.values()):
                    print("the subscriber did not receive every event", file=sys.stderr)
                    ok = False
                if not storm.messages:
                    return 1
                body_path = tmp / f"message-{n}.xml"
                body_path.write_bytes(counter.median_body())
                events = body_path.read_bytes().count(EVENT_TAG)
                raws.append([])
                for mode in RAW_MODES:
                    raw = run_raw(children, broker, counter, body_path, events, args.raw_messages, mode)
                    raws[-1].append(raw)
                    report_raw(raw)
                print(f"ratio storm / raw (receipt each), events/s: end to end "
                      f"{storm.events_per_s / raws[-1][0].events_per_s:.1%}, during delivery "
                      f"{storm.delivery_events_per_s / raws[-1][0].events_per_s:.1%}; "
                      f"broker RSS {broker.rss_kib() / 1024:,.0f} MB")
            report_ranges(broker, storms, raws)
    finally:
        if counter is not None:
            counter.close()
        for proc in list(children.procs):  # a storm or a publisher first: they would only retry a broker going away
            if broker is None or proc is not broker.proc:
                children.stop(proc, grace_s=5.0)
        if broker is not None:
            broker.stop(children)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

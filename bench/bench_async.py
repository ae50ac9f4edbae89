"""A 100,000-meter async GetMeterReadings end to end in fast mode, through the real head-end.

The request goes through the SOAP adapter in process (`Simulator.soap.handle`, no sockets):
a typed GetMeterReadings for group FEEDER-01 of a one-feeder fleet, with AsyncReplyFlag and a
ReplyAddress, answered at once with an acceptance; then the simpy environment runs to completion
(`env.run()`, fast mode) while the meters answer through the comm model and the head-end sends
the results in parts of `--part-size` meters. Two variants, each in a fresh subprocess so its
peak RSS is its own, after one warm-up request on a 1,000-meter simulator (XSD validators compiled,
per-process caches filled, as in a server that has answered before):

- register: the bulk kWh register at the end of the range, one reading per meter;
- day: one day of 15-minute kWh intervals, 96 readings per meter (9.6 M for 100,000 meters).

The outbound counts parts, bytes, meters, readings and per-meter errors as parts arrive, keeps
only the first and the last body and drops the rest, so memory stays bounded (a day of parts is
~1 GB of XML). Byte counting relies on the builder's unprefixed payload elements; the first and
last parts are parsed afterwards to confirm the counts and validated against the
MeterReadingsMessage profile; every part's MessageIndex must read k/n in order (1/100 first,
100/100 last), and meters with data plus per-meter errors must cover the fleet exactly.

Sim events: the bench replaces `env.step` on the environment instance with a counting wrapper
(`Environment.run` and the head-end call `self.step()`, so every processed event passes through
it) and cross-checks with simpy's event-id counter (`env._eid`, an itertools.count consumed once
per scheduled event): run to completion, scheduled equals processed.

The default comms are the scenario's realistic mix (RF mesh lognormal, cellular uniform, retries,
120 s attempt timeout), so a few meters may fail or time out and the last part is then PARTIAL
with per-meter errors; `--comms instant` makes every meter answer at once.

    python bench/bench_async.py [--variant both|register|day] [--meters 100000] [--part-size 1000]
        [--comms default|instant] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from simulator.app import Simulator
from simulator.cim import schemas
from simulator.headend.readjob import OutboundPart
from simulator.scenario import scenario_from_mapping

RT_REGISTER = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"  # bulk kWh register
RT_KWH_15MIN = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
READING_TYPES = {"register": (RT_REGISTER, 1), "day": (RT_KWH_15MIN, 96)}
REPLY_ADDRESS = "http://127.0.0.1:9/mdms/ReplyMeterReadings"
INSTANT_COMMS = {"classes": {"wired": {"latency": {"kind": "fixed", "value_s": 0.0}, "success": 1.0,
                                       "retries": 0}}}
MSG = "{http://iec.ch/TC57/2011/schema/message}"
MR = "{http://iec.ch/TC57/2011/MeterReadings#}"
MESSAGE_INDEX = re.compile(rb"<(?:\w+:)?Name>MessageIndex</(?:\w+:)?Name><(?:\w+:)?Value>(\d+)/(\d+)<")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def request_body(group: str, reading_type: str, start: str, end: str, correlation_id: str) -> bytes:
    """A typed GetMeterReadings as an MDMS sends it: SOAP 1.1, async header fields, a group, a range."""
    return (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        '<m:GetMeterReadings xmlns:m="http://iec.ch/TC57/2011/GetMeterReadingsMessage" '
        'xmlns:h="http://iec.ch/TC57/2011/schema/message">'
        "<m:Header><h:Verb>get</h:Verb><h:Noun>MeterReadings</h:Noun>"
        f"<h:AsyncReplyFlag>true</h:AsyncReplyFlag><h:ReplyAddress>{REPLY_ADDRESS}</h:ReplyAddress>"
        f"<h:MessageID>bench-msg-1</h:MessageID><h:CorrelationID>{correlation_id}</h:CorrelationID></m:Header>"
        '<m:Request><gmr:GetMeterReadings xmlns:gmr="http://iec.ch/TC57/2011/GetMeterReadings#">'
        f"<gmr:EndDeviceGroup><gmr:Names><gmr:name>{group}</gmr:name></gmr:Names></gmr:EndDeviceGroup>"
        f"<gmr:Reading><gmr:timePeriod><gmr:end>{end}</gmr:end><gmr:start>{start}</gmr:start>"
        "</gmr:timePeriod></gmr:Reading>"
        f"<gmr:ReadingType><gmr:mRID>{reading_type}</gmr:mRID></gmr:ReadingType>"
        "</gmr:GetMeterReadings></m:Request></m:GetMeterReadings></soapenv:Body></soapenv:Envelope>"
    ).encode()


@dataclass
class PartCounts:
    meters: int
    readings: int
    errors: int  # per-meter errors (Error naming an EndDevice)


def count_part(body: bytes) -> PartCounts:
    """Counts by substring, two scans of the body: the payload's elements are unprefixed (default
    namespace), every IntervalReadings and Readings has one `value`, and per-meter errors sit in
    the Reply, before the Payload."""
    payload_at = body.find(b"Payload>")
    head = body if payload_at < 0 else body[:payload_at]
    return PartCounts(
        meters=body.count(b"<MeterReading>"),
        readings=body.count(b"</value>"),
        errors=head.count(b'objectType="EndDevice"'),
    )


def parsed_counts(body: bytes) -> PartCounts:
    root = etree.fromstring(body, parser=etree.XMLParser(huge_tree=True, resolve_entities=False))
    return PartCounts(
        meters=sum(1 for _ in root.iter(f"{MR}MeterReading")),
        readings=sum(1 for _ in root.iter(f"{MR}IntervalReadings", f"{MR}Readings")),
        errors=sum(1 for e in root.iterfind(f"{{*}}Reply/{MSG}Error/{MSG}ID") if e.get("objectType") == "EndDevice"),
    )


@dataclass
class CountingOutbound:
    """Counts what the head-end sends and forgets the bodies (but the first and the last)."""

    parts: int = 0
    bytes: int = 0
    meters: int = 0
    readings: int = 0
    errors: int = 0
    indices: list[tuple[int, int]] = field(default_factory=list)
    first: OutboundPart | None = None
    last: OutboundPart | None = None
    last_counts: PartCounts | None = None
    first_counts: PartCounts | None = None
    wall_last: float = 0.0   # perf_counter when the last part arrived
    sim_last: float = 0.0    # env.now when the last part arrived
    own_s: float = 0.0       # time spent in this object (counting), included in the wall times
    env_now: Any = None

    def put_parts(self, parts: Sequence[OutboundPart]) -> None:
        t0 = time.perf_counter()
        for part in parts:
            c = count_part(part.body)
            self.parts += 1
            self.bytes += len(part.body)
            self.meters += c.meters
            self.readings += c.readings
            self.errors += c.errors
            found = MESSAGE_INDEX.search(part.body, 0, 4096)
            self.indices.append((int(found.group(1)), int(found.group(2))) if found else (0, 0))
            if self.first is None:
                self.first, self.first_counts = part, c
            self.last, self.last_counts = part, c
        t1 = time.perf_counter()
        self.own_s += t1 - t0
        self.wall_last = t1
        self.sim_last = float(self.env_now()) if self.env_now else 0.0

    def backlog(self) -> int:
        return 0


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def line(name: str, value: object, note: str = "") -> None:
    if isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:,.3f}"
    else:
        text = str(value)
    print(f"  {name:<38} {text}" + (f"   ({note})" if note else ""), flush=True)


def run_variant(args: argparse.Namespace, variant: str) -> int:
    reading_type, per_meter = READING_TYPES[variant]
    raw: dict[str, Any] = {
        "name": "bench-async", "seed": args.seed,
        "fleet": {"meters": args.meters, "feeders": 1},
        "clock": {"start": args.clock_start},
        "headend": {"max_meters_per_request": args.meters},
        "replies": {"part_size": args.part_size},
    }
    if args.comms == "instant":
        raw["comms"] = INSTANT_COMMS
    start, end = f"{args.day}T00:00:00Z", _next_day(args.day)
    body = request_body("FEEDER-01", reading_type, start, end, f"bench-{variant}")
    loop = asyncio.new_event_loop()
    if not args.no_warmup:
        # Compiles the XSD validators and warms per-process caches, so the figures are a warm server's.
        small = Simulator(scenario_from_mapping({**raw, "fleet": {"meters": 1_000, "feeders": 1}}, "<warm-up>",
                                                list(args.set)))
        small.headend.outbound = CountingOutbound()
        loop.run_until_complete(small.soap.handle("GetMeterReadings", None, "text/xml; charset=utf-8", body))
        small.env.run()
    t0 = time.perf_counter()
    sim = Simulator(scenario_from_mapping(raw, "<bench>", list(args.set)))
    t_build = time.perf_counter() - t0
    out = CountingOutbound(env_now=lambda: sim.env.now)
    sim.headend.outbound = out
    rss_before = rss()

    env = sim.env
    steps = 0
    original_step = env.step

    def counting_step() -> None:
        nonlocal steps
        original_step()
        steps += 1

    env.step = counting_step  # type: ignore[method-assign]
    eid0 = next(env._eid)  # simpy internals: ids of scheduled events

    sim0 = float(env.now)
    t0 = time.perf_counter()
    answer = loop.run_until_complete(sim.soap.handle("GetMeterReadings", None, "text/xml; charset=utf-8", body))
    t_accept = time.perf_counter() - t0
    steps_accept = steps
    accepted = _acceptance(answer.status, answer.body)
    t1 = time.perf_counter()
    env.run()
    t_run = time.perf_counter() - t1
    loop.close()
    t_total = (out.wall_last - t0) if out.parts else float("nan")
    t_head = t_total - out.own_s
    eid1 = next(env._eid)
    scheduled = eid1 - eid0 - 1

    meters = sim.fleet.size
    n_expected = -(-meters // args.part_size)
    print(f"[{variant}] {meters:,} meters, FEEDER-01, {reading_type} ({per_meter} per meter), "
          f"{start} .. {end}, parts of {args.part_size:,}, comms {args.comms}"
          + (f" {' '.join(args.set)}" if args.set else ""), flush=True)
    line("simulator build (s)", round(t_build, 3), "fleet, comm model, head-end; not in the figures below"
         + ("" if args.no_warmup else "; after a warm-up request on a 1,000-meter simulator"))
    line("acceptance (s)", round(t_accept, 4), f"SOAP in -> HTTP {answer.status} {accepted}")
    line("until the last part (s)", round(t_total, 3), "from the request, acceptance included")
    line("  of which the bench's counting (s)", round(out.own_s, 3), "substring counts per part")
    line("  head-end alone (s)", round(t_head, 3), "the above minus the bench's counting")
    line("  env.run() to completion (s)", round(t_run, 3), "counting included")
    line("sim time covered (s)", round(out.sim_last - sim0, 3), f"env.now at the end {env.now:.3f}")
    line("parts", out.parts, f"expected {n_expected}")
    line("bytes", out.bytes, f"{out.bytes / max(out.parts, 1):,.0f} per part")
    line("meters with data / per-meter errors", f"{out.meters:,} / {out.errors:,}")
    line("readings", out.readings, f"expected {out.meters * per_meter:,}")
    line("readings/s", int(out.readings / t_head) if out.parts else 0,
         f"readings / head-end time until the last part; {out.readings / t_total:,.0f} with the counting")
    line("sim events processed", steps, f"{steps_accept} during acceptance; scheduled (env._eid delta) {scheduled:,}")
    line("sim events/s", int(steps / (t_run - out.own_s)) if t_run > out.own_s else 0,
         "events / env.run() wall minus counting; each event here is a whole part's work")
    line("RSS before the request (MB)", round(rss_before / 1e6, 1))
    line("peak RSS (MB)", round(peak_rss() / 1e6, 1), "ru_maxrss of this process")

    problems = check(out, meters, per_meter, n_expected)
    if problems:
        print("  CHECK FAILED: " + "; ".join(problems), flush=True)
        return 1
    print(f"  checked: acceptance OK; MessageIndex 1..{n_expected}/{n_expected} in order; first and last part "
          "valid MeterReadingsMessage, counts confirmed by parsing; every meter once", flush=True)
    return 0


def _next_day(day: str) -> str:
    import datetime

    d = datetime.date.fromisoformat(day) + datetime.timedelta(days=1)
    return f"{d}T00:00:00Z"


def _acceptance(status: int, body: bytes) -> str:
    root = etree.fromstring(body)
    result = root.findtext(f".//{MSG}Result")
    payload = root.find(".//{*}Payload")
    if status != 200 or result != "OK" or payload is not None:
        raise SystemExit(f"the acceptance is wrong: HTTP {status}, Result {result}\n{body[:2000].decode()}")
    return f"Result {result}, no payload"


def check(out: CountingOutbound, meters: int, per_meter: int, n: int) -> list[str]:
    problems = []
    if out.indices != [(k, n) for k in range(1, n + 1)]:
        problems.append(f"MessageIndex sequence wrong: first {out.indices[:3]}, last {out.indices[-3:]}")
    if out.meters + out.errors != meters:
        problems.append(f"{out.meters} meters with data + {out.errors} errors != {meters}")
    if out.readings != out.meters * per_meter:
        problems.append(f"{out.readings} readings for {out.meters} meters x {per_meter}")
    for label, part, counts in (("first", out.first, out.first_counts), ("last", out.last, out.last_counts)):
        if part is None:
            problems.append(f"no {label} part")
            continue
        errors = schemas.validate(part.body, "MeterReadingsMessage")
        if errors:
            problems.append(f"{label} part invalid: {errors[:3]}")
        if parsed_counts(part.body) != counts:
            problems.append(f"{label} part: byte counts {counts} != parsed {parsed_counts(part.body)}")
        if part.destination != REPLY_ADDRESS:
            problems.append(f"{label} part goes to {part.destination}")
    if out.first is not None and out.last is not None:
        first = etree.fromstring(out.first.body, parser=etree.XMLParser(huge_tree=True))
        last = etree.fromstring(out.last.body, parser=etree.XMLParser(huge_tree=True))
        if n > 1 and first.findtext(f"{{*}}Reply/{MSG}Result") != "PARTIAL":
            problems.append("the first part is not PARTIAL (0.1)")
        final = last.findtext(f"{{*}}Reply/{MSG}Result")
        if final not in ("OK", "PARTIAL") or (final == "OK") != (out.errors == 0):
            problems.append(f"the last part says {final} with {out.errors} per-meter errors")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="bench/bench_async.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", choices=("both", "register", "day"), default="both",
                   help="register: 1 reading per meter; day: 96 x 15 min per meter (default both)")
    p.add_argument("--meters", type=int, default=100_000, help="fleet size, all on FEEDER-01 (default 100000)")
    p.add_argument("--part-size", type=int, default=1_000, help="replies.part_size (default 1000)")
    p.add_argument("--day", default="2026-03-09", help="UTC day asked for (default 2026-03-09)")
    p.add_argument("--clock-start", default="2026-03-10T12:00:00Z", help="clock.start (default 2026-03-10T12:00:00Z)")
    p.add_argument("--seed", type=int, default=1, help="scenario seed (default 1)")
    p.add_argument("--comms", choices=("default", "instant"), default="default",
                   help="default: the scenario's realistic RF mesh/cellular mix; instant: every meter answers at once")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra scenario override, as hes-sim --set (repeatable)")
    p.add_argument("--no-warmup", action="store_true",
                   help="skip the warm-up request on a 1,000-meter simulator (schema compilation, caches)")
    p.add_argument("--in-process", action="store_true",
                   help="run the variants in this process (peak RSS is then the largest so far)")
    args = p.parse_args(argv)

    if os.environ.get("_BENCH_ASYNC_CHILD") != "1":
        print("$ " + shlex.join([sys.executable, sys.argv[0], *argv]), flush=True)
        print(f"machine: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f} "
              "(shared: other work may compete); code: " + _code_version(), flush=True)
    variants = ["register", "day"] if args.variant == "both" else [args.variant]
    if len(variants) == 1 or args.in_process:
        return max(run_variant(args, v) for v in variants)
    rc = 0
    for v in variants:
        child = [sys.executable, str(Path(__file__).resolve()), *_without_variant(argv), "--variant", v]
        done = subprocess.run(child, env={**os.environ, "_BENCH_ASYNC_CHILD": "1"})
        rc = rc or done.returncode
    return rc


def _without_variant(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--variant":
            skip = True
            continue
        if a.startswith("--variant="):
            continue
        out.append(a)
    return out


def _code_version() -> str:
    import simulator

    package = Path(simulator.__file__).resolve().parent
    git = subprocess.run(["git", "-C", str(package), "log", "-1", "--format=%h"], capture_output=True, text=True)
    if git.returncode != 0:
        return str(package)
    dirty = subprocess.run(["git", "-C", str(package), "status", "--porcelain", "--", "."],
                           capture_output=True, text=True).stdout.strip()
    return f"{package} at {git.stdout.strip()}" + (" with uncommitted changes" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())

"""How fast hes-sim answers GetMeterReadings over loopback SOAP, beside the raw HTTP ceiling.

Three figures, measured in one run so they share the machine's state:

1. the ceiling: a bare aiohttp app (same stack as the simulator's transport, same request
   bodies) answering every POST with a small fixed body;
2. single-meter on-demand reads per second (no time range: registers now + latest interval),
   rotating over the first `--rotate` meters of the fleet so no one meter is favoured;
   then both servers again on one connection, because latency under load is mostly queueing;
3. a 1,000-meter x 96-interval request (one feeder, 15-min kWh, one day) end to end: the
   median of `--big-repeats` sequential requests over one keep-alive connection, by group
   name and again by 1,000 EndDevice mRIDs (the request itself then weighs ~90 KB). Each
   variant's reply is parsed once and must say Result OK with 1,000 x 96 IntervalReadings.

Servers and load generator are separate processes; the load generator is wrk (Debian package
`wrk`, a Lua script posts the bodies) or, without it, an aiohttp client. The machine these figures are for has two
cores, so by default the server under test is pinned to one core and the load generator to
the other; the server's CPU use during each phase is printed, because a server that was not
near 100 % was starved (shared machine) or not saturated (too few connections).

    python bench/bench_soap.py [--duration 8] [--meters 10000] [--feeders 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import http.client
import json
import os
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[1]
SOAP_ACTION = '"http://iec.ch/TC57/2011/GetMeterReadings/GetMeterReadings"'
CONTENT_TYPE = "text/xml; charset=utf-8"
RT_KWH_15MIN = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
MR_NS = "http://iec.ch/TC57/2011/MeterReadings#"
MSG_NS = "http://iec.ch/TC57/2011/schema/message"
LISTENING = re.compile(r"listening on (http://\S+)")
RAW_REPLY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope xmlns:soapenv='
    b'"http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><ok xmlns="urn:bench"/>'
    b"</soapenv:Body></soapenv:Envelope>"
)

REQUEST_HEAD = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    '<m:GetMeterReadings xmlns:m="http://iec.ch/TC57/2011/GetMeterReadingsMessage" '
    'xmlns:h="http://iec.ch/TC57/2011/schema/message">'
    "<m:Header><h:Verb>get</h:Verb><h:Noun>MeterReadings</h:Noun>"
    "<h:CorrelationID>{cid}</h:CorrelationID></m:Header>"
    '<m:Request><gmr:GetMeterReadings xmlns:gmr="http://iec.ch/TC57/2011/GetMeterReadings#">'
)
REQUEST_TAIL = "</gmr:GetMeterReadings></m:Request></m:GetMeterReadings></soapenv:Body></soapenv:Envelope>"

# wrk calls request() per request, so each connection walks the body list; done() prints one
# machine-readable line (latencies in microseconds).
WRK_LUA = r"""
local bodies, n, i = {}, 0, 0
function init(args)
  for line in io.lines(args[1]) do n = n + 1; bodies[n] = line end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
  wrk.headers["SOAPAction"] = '"http://iec.ch/TC57/2011/GetMeterReadings/GetMeterReadings"'
end
function request()
  i = i % n + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
function done(s, latency, requests)
  local e = s.errors
  io.write(string.format('BENCH {"requests": %d, "duration_s": %.6f, "non2xx": %d, "errors": %d, '
    .. '"p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    s.requests, s.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


def single_meter_body(mrid: str, cid: str) -> str:
    return (REQUEST_HEAD.format(cid=cid) + f"<gmr:EndDevice><gmr:mRID>{mrid}</gmr:mRID></gmr:EndDevice>"
            + REQUEST_TAIL)


def day_body(selection: str, day_start: str, day_end: str, cid: str) -> str:
    return (
        REQUEST_HEAD.format(cid=cid) + selection
        + f"<gmr:Reading><gmr:timePeriod><gmr:end>{day_end}</gmr:end><gmr:start>{day_start}</gmr:start>"
        "</gmr:timePeriod></gmr:Reading>"
        f"<gmr:ReadingType><gmr:mRID>{RT_KWH_15MIN}</gmr:mRID></gmr:ReadingType>" + REQUEST_TAIL
    )


# -- processes -------------------------------------------------------------------------------

def pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(name: str, cmd: list[str], workdir: Path, cpu: int | None, timeout: float = 120) -> Server:
    """Start a server printing `listening on URL`; output goes to a file so no pipe can fill up."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                preexec_fn=lambda: pin(cpu))
    server = Server(name, proc, "", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_text(errors="replace"))
        if found:
            server.url = found.group(1)
            return server
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{name} did not start; its output:\n{log.read_text(errors='replace')[-3000:]}")


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    non2xx: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu: float  # share of one core the server used during the phase
    loadgen_cpu: float
    core_busy: float | None  # how busy the server's core was, whoever used it

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s


def run_load(tool: str, url: str, bodies: Path, seconds: int, connections: int, server: Server,
             server_core: int | None, cpu: int | None, workdir: Path, show: bool) -> LoadResult:
    if tool == "wrk":
        script = workdir / "post.lua"
        script.write_text(WRK_LUA)
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
               "-s", str(script), url, "--", str(bodies)]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "_python-load", url, str(bodies),
               str(seconds), str(connections)]
    if show:
        print(f"  load: {shlex.join(cmd)}")
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    core0 = core_times(server_core)
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=lambda: pin(cpu),
                          timeout=seconds + 60)
    wall = time.monotonic() - t0
    server_cpu = (server.cpu_seconds() - cpu0) / wall
    core1 = core_times(server_core)
    core_busy = None
    if core0 and core1 and core1[1] > core0[1]:
        core_busy = (core1[0] - core0[0]) / (core1[1] - core0[1])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - before_children.ru_utime - before_children.ru_stime
    loadgen_cpu = used / wall
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"load generator failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return LoadResult(**json.loads(line[6:]), server_cpu=server_cpu, loadgen_cpu=loadgen_cpu,
                      core_busy=core_busy)


def core_times(cpu: int | None) -> tuple[int, int] | None:
    """(busy, total) jiffies of one CPU, to tell a saturated server from one that shared its core."""
    if cpu is None:
        return None
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            ticks = [int(x) for x in line.split()[1:]]
            return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle and iowait are not busy
    return None


def python_load(url: str, bodies_file: str, seconds: float, connections: int) -> None:
    """Fallback load generator (aiohttp client): far slower than wrk, so a ceiling it gives is low."""
    import asyncio

    import aiohttp

    bodies = [ln.encode() for ln in Path(bodies_file).read_text().splitlines() if ln]
    headers = {"Content-Type": CONTENT_TYPE, "SOAPAction": SOAP_ACTION}

    async def main() -> None:
        latencies: list[float] = []
        counts = {"non2xx": 0, "errors": 0}
        conn = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=conn) as session:
            t_end = time.perf_counter() + seconds

            async def worker(k: int) -> None:
                i = k
                while time.perf_counter() < t_end:
                    t = time.perf_counter()
                    try:
                        async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                            await r.read()
                            if not 200 <= r.status < 300:
                                counts["non2xx"] += 1
                    except aiohttp.ClientError:
                        counts["errors"] += 1
                    latencies.append(time.perf_counter() - t)
                    i += connections

            t0 = time.perf_counter()
            await asyncio.gather(*(worker(k) for k in range(connections)))
            took = time.perf_counter() - t0
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        print("BENCH " + json.dumps({"requests": len(latencies), "duration_s": took, **counts,
                                     "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3,
                                     "max_ms": max(latencies, default=0.0) * 1e3}), flush=True)

    asyncio.run(main())


def raw_server(port: int) -> None:
    """The ceiling: the simulator's stack (aiohttp AppRunner, no access log) minus the simulator."""
    import asyncio

    from aiohttp import web

    async def post(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=RAW_REPLY, headers={"Content-Type": CONTENT_TYPE})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/{service}", post)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


# -- the measurements ------------------------------------------------------------------------

def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes, float]:
    t0 = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": CONTENT_TYPE, "SOAPAction": SOAP_ACTION})
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, data, time.perf_counter() - t0


def check_reply(status: int, data: bytes, meters: int, intervals_each: int) -> str:
    """Parse a reply; return a one-line verdict, raise if it is not a correct answer."""
    root = etree.fromstring(data, parser=etree.XMLParser(huge_tree=True, resolve_entities=False))
    result = root.findtext(f".//{{{MSG_NS}}}Result")
    got_meters = len(root.findall(f".//{{{MR_NS}}}MeterReading"))
    got_intervals = sum(1 for _ in root.iter(f"{{{MR_NS}}}IntervalReadings"))
    ok = (status == 200 and result == "OK" and got_meters == meters
          and got_intervals == meters * intervals_each)
    verdict = (f"HTTP {status}, Result {result}, {got_meters:,} MeterReading, "
               f"{got_intervals:,} IntervalReadings")
    if not ok:
        raise RuntimeError(f"wrong reply ({verdict}; expected {meters} meters x {intervals_each}):\n"
                           f"{data[:2000].decode(errors='replace')}")
    return verdict


def code_under_test(hes_sim: str) -> str:
    """Which simulator package hes-sim imports, and its git commit, so a figure names its code."""
    python = Path(hes_sim).read_text(errors="replace").splitlines()[0].removeprefix("#!").strip()
    found = subprocess.run([python, "-c", "import simulator; print(simulator.__file__)"],
                           capture_output=True, text=True, cwd=REPO)
    package = Path(found.stdout.strip()).parent if found.returncode == 0 else None
    if package is None:
        return "simulator package not importable"
    git = subprocess.run(["git", "-C", str(package), "log", "-1", "--format=%h %cd", "--date=short"],
                         capture_output=True, text=True)
    if git.returncode != 0:
        return f"{package} (not a git checkout)"
    dirty = subprocess.run(["git", "-C", str(package), "status", "--porcelain", "--", "."],
                           capture_output=True, text=True).stdout.strip()
    return f"{package} at commit {git.stdout.strip()}" + (" with uncommitted changes" if dirty else "")


def fleet_members(
    hes_sim: str, scenario: str, overrides: list[str], group: str
) -> tuple[list[str], list[str]]:
    """All meter mRIDs, and those of `group`, from the CLI the MDMS would use to provision."""
    done = subprocess.run([hes_sim, "fleet", scenario, "--format", "csv", "--no-customers", *overrides],
                          capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"hes-sim fleet failed ({done.returncode}):\n{done.stderr[-3000:]}")
    out = done.stdout
    rows = list(csv.DictReader(out.splitlines()))
    return [r["mrid"] for r in rows], [r["mrid"] for r in rows if group in r["groups"].split(";")]


@contextlib.contextmanager
def servers_stopped_on_exit(servers: list[Server]) -> Iterator[None]:
    def on_term(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        for s in servers:
            s.stop()
        signal.signal(signal.SIGTERM, previous)


def fmt_load(r: LoadResult) -> str:
    return (f"{r.rps:9,.0f} req/s   p50 {r.p50_ms:6.2f} ms   p99 {r.p99_ms:6.2f} ms   "
            f"({r.requests:,} requests in {r.duration_s:.1f} s; server CPU {r.server_cpu:.0%}"
            + (f" of its core, which was {r.core_busy:.0%} busy" if r.core_busy is not None else "")
            + f"; load generator CPU {r.loadgen_cpu:.0%})")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_raw-server"]:
        raw_server(int(argv[1]))
        return 0
    if argv[:1] == ["_python-load"]:
        python_load(argv[1], argv[2], float(argv[3]), int(argv[4]))
        return 0
    p = argparse.ArgumentParser(prog="bench/bench_soap.py", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--duration", type=int, default=8,
                   help="seconds per load phase (ceiling, single-meter)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of discarded load before each phase")
    p.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    p.add_argument("--unloaded", type=int, default=3,
                   help="seconds of one-connection latency per server after the loaded phases (0: skip)")
    p.add_argument("--meters", type=int, default=10_000, help="fleet size (fleet.meters)")
    p.add_argument("--feeders", type=int, default=10,
                   help="feeders (fleet.feeders); FEEDER-01 is the big request")
    p.add_argument("--big-repeats", type=int, default=7, help="sequential big requests per variant (median)")
    p.add_argument("--rotate", type=int, default=1000, help="single-meter reads cycle over this many meters")
    p.add_argument("--scenario", default=str(REPO / "scenarios" / "demo.yaml"), help="scenario file")
    p.add_argument("--clock-start", default="2026-03-10T12:00:00Z", help="clock.start of the scenario")
    p.add_argument("--day", default="2026-03-09", help="UTC day asked for by the big request")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                   help="wrk if installed (Debian package wrk), else an aiohttp client")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin server and load generator to separate CPUs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra scenario override")
    args = p.parse_args(argv)

    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    print("$ " + shlex.join([sys.executable, sys.argv[0], *argv]))
    tool = args.loadgen if args.loadgen != "auto" else ("wrk" if shutil.which("wrk") else "python")
    if tool == "wrk" and not shutil.which("wrk"):
        p.error("wrk is not installed (apt-get install wrk)")
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, load_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 and not args.no_pin else (None, None)
    placement = (f"server pinned to CPU {server_cpu}, load generator to CPU {load_cpu}"
                 if server_cpu is not None else "no CPU pinning")
    print(f"machine: {os.cpu_count()} CPUs, {placement}; load average at start "
          f"{os.getloadavg()[0]:.2f} (a shared machine: other work competes for both cores)")
    print(f"load generator: {tool} (1 thread, {args.connections} keep-alive connections, "
          f"{args.duration:g} s per phase after {args.warmup:g} s warm-up)"
          + ("" if tool == "wrk" else "; a Python client is slower than the servers, so it caps the figures"))

    hes_sim = str(Path(sys.executable).with_name("hes-sim"))
    if not Path(hes_sim).exists():
        hes_sim = shutil.which("hes-sim") or p.error("hes-sim is not installed")
    overrides = [f"--set=fleet.meters={args.meters}", f"--set=fleet.feeders={args.feeders}",
                 f"--set=clock.start={args.clock_start}", *(f"--set={s}" for s in args.set)]
    print(f"code under test: {code_under_test(hes_sim)}")
    mrids, feeder = fleet_members(hes_sim, args.scenario, overrides, "FEEDER-01")
    print(f"fleet: {len(mrids):,} meters, {args.feeders} feeders; FEEDER-01 has {len(feeder):,} meters")

    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="bench_soap_") as tmp, servers_stopped_on_exit(servers):
        work = Path(tmp)
        sim_cmd = [hes_sim, "run", args.scenario, "--port", "0", *overrides]
        raw_cmd = [sys.executable, str(Path(__file__).resolve()), "_raw-server", "0"]
        print(f"simulator: {shlex.join(sim_cmd)}")
        print(f"ceiling server: {shlex.join(raw_cmd)}")
        servers.append(start_server("raw", raw_cmd, work, server_cpu))
        servers.append(start_server("hes-sim", sim_cmd, work, server_cpu))
        raw, sim = servers
        # The ceiling server gets no CPU while the simulator is measured and vice versa: both idle.

        bodies = work / "single.txt"
        bodies.write_text("".join(single_meter_body(m, f"b-{i}") + "\n"
                                  for i, m in enumerate(mrids[: args.rotate])))
        path = "/GetMeterReadings"
        conn = http.client.HTTPConnection(sim.url.removeprefix("http://"), timeout=120)
        status, data, _ = post(conn, path, single_meter_body(mrids[0], "check-1").encode())
        root = etree.fromstring(data)
        result = root.findtext(f".//{{{MSG_NS}}}Result")
        if status != 200 or result != "OK" or len(root.findall(f".//{{{MR_NS}}}MeterReading")) != 1:
            raise RuntimeError(f"single-meter read is not OK: HTTP {status}\n{data[:2000].decode()}")
        print(f"single-meter reply checked: HTTP 200, Result OK, 1 MeterReading, {len(data):,} bytes")

        def phase(server: Server, connections: int, seconds: int) -> LoadResult:
            url = server.url + path
            if args.warmup > 0:
                run_load(tool, url, bodies, args.warmup, connections, server, server_cpu, load_cpu, work, False)
            r = run_load(tool, url, bodies, seconds, connections, server, server_cpu, load_cpu, work, True)
            if r.non2xx or r.errors:
                raise RuntimeError(f"{server.name}: {r.non2xx} non-2xx answers, {r.errors} socket errors")
            return r

        ceiling = phase(raw, args.connections, args.duration)
        print(f"raw HTTP ceiling (aiohttp, {len(RAW_REPLY)}-byte reply): {fmt_load(ceiling)}")
        single = phase(sim, args.connections, args.duration)
        print(f"single-meter on-demand reads:        {fmt_load(single)}")
        print(f"single-meter reads / raw ceiling:    {single.rps / ceiling.rps:.1%}")
        if args.unloaded > 0:
            # Latency under load is mostly queueing (connections x service time); one connection
            # shows what a single MDMS call costs.
            for label, server in (("raw HTTP, 1 connection:        ", raw),
                                  ("single-meter read, 1 connection:", sim)):
                print(f"{label}     {fmt_load(phase(server, 1, args.unloaded))}")

        day = datetime.date.fromisoformat(args.day)
        start, end = f"{day}T00:00:00Z", f"{day + datetime.timedelta(days=1)}T00:00:00Z"
        variants = {
            "group FEEDER-01": "<gmr:EndDeviceGroup><gmr:Names><gmr:name>FEEDER-01</gmr:name></gmr:Names>"
                               "</gmr:EndDeviceGroup>",
            f"{len(feeder):,} EndDevice mRIDs": "".join(
                f"<gmr:EndDevice><gmr:mRID>{m}</gmr:mRID></gmr:EndDevice>" for m in feeder),
        }
        for label, selection in variants.items():
            body = day_body(selection, start, end, "big").encode()
            status, data, _ = post(conn, path, body)  # warm-up and the correctness check
            verdict = check_reply(status, data, len(feeder), 96)
            cpu0 = sim.cpu_seconds()
            times = [post(conn, path, body)[2] for _ in range(args.big_repeats)]
            server_s = (sim.cpu_seconds() - cpu0) / args.big_repeats
            med = statistics.median(times)
            readings = len(feeder) * 96
            print(f"{len(feeder):,} x 96 by {label} ({len(body):,}-byte request): median {med * 1e3:,.0f} ms "
                  f"end-to-end over {args.big_repeats} sequential requests (min {min(times) * 1e3:,.0f}, "
                  f"max {max(times) * 1e3:,.0f}); reply {len(data):,} bytes; "
                  f"{readings / med:,.0f} interval readings/s; server CPU {server_s * 1e3:,.0f} ms/request")
            print(f"  validated once: {verdict}")
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

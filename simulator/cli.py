"""`hes-sim`: a thin shell over the public API. Every user error is one line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import ScenarioError, SimulatorError
from .scenario import Scenario, load_scenario


def _scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario file (YAML), e.g. scenarios/demo.yaml")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("--meters", type=int, metavar="N", help="override fleet.meters")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any scenario key by its dotted path, e.g. --set headend.source=HES1 "
                        "(repeatable)")


def _load(args: argparse.Namespace, extra: list[str] | None = None) -> Scenario:
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.meters is not None:
        overrides.append(f"fleet.meters={args.meters}")
    overrides += extra or []
    return load_scenario(args.scenario, overrides)


def _cmd_run(args: argparse.Namespace) -> int:
    from .app import Simulator, serve_forever

    extra = []
    if args.host is not None:
        extra.append(f"server.host={args.host}")
    if args.port is not None:
        extra.append(f"server.port={args.port}")
    if args.speed is not None:
        extra.append(f"clock.speed={args.speed}")
    if args.jms is not None:
        host, _, port = args.jms.rpartition(":")
        if not host or not port.isdigit():
            raise SimulatorError(f"--jms {args.jms}: give the broker STOMP address as HOST:PORT, e.g. 127.0.0.1:61613")
        extra += ["jms.enabled=true", f"jms.host={host.strip('[]')}", f"jms.port={port}"]
    scenario = _load(args, extra)
    sim = Simulator(scenario, source=args.scenario)
    if args.fast or args.until is not None:
        return _run_fast(args, sim)
    host, port = scenario.server.host, scenario.server.port
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(sim, host, port, announce=lambda line: print(line, flush=True)))
    return 0


def _run_fast(args: argparse.Namespace, sim: object) -> int:
    from .fastrun import parse_duration, run_scenario_fast

    if not (args.fast and args.until is not None):
        raise SimulatorError("--fast and --until go together: --fast --until 1d runs one sim day as fast as possible")
    try:
        until = parse_duration(args.until)
    except ValueError:
        raise SimulatorError(f"--until {args.until!r}: give a duration such as 3600, 90m, 6h or 1d") from None
    summary = asyncio.run(run_scenario_fast(sim, until))  # type: ignore[arg-type]
    for line in summary.lines():
        print(line, flush=True)
    return 0 if summary.clean else 3


def _cmd_control(args: argparse.Namespace) -> int:
    import json
    import urllib.error
    import urllib.request

    body: dict[str, object] = {"action": args.action}
    for key in ("group", "comm_class", "duration_s", "factor", "event_type", "within_s", "push"):
        value = getattr(args, key)
        if value is not None:
            body[key] = value
    if args.meter:
        body["meters"] = args.meter
    req = urllib.request.Request(args.url.rstrip("/") + "/control", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            answer = {"ok": False, "error": f"HTTP {err.code} from {args.url}: {raw[:200]!r}"}
    except (urllib.error.URLError, OSError) as exc:
        raise SimulatorError(f"cannot reach {args.url}: {getattr(exc, 'reason', exc)}") from None
    if not answer.get("ok"):
        raise SimulatorError(str(answer.get("error", "the simulator refused the action")))
    print(f"done at sim time {answer['sim_time_s']:g} s: {answer['done']}")
    return 0


def _cmd_fleet(args: argparse.Namespace) -> int:
    from .app import fleet_config
    from .fleet_export import write_fleet
    from .model.fleet import Fleet

    scenario = _load(args)
    fleet = Fleet(fleet_config(scenario))
    if args.output:
        with Path(args.output).open("w", encoding="utf-8", newline="") as out:
            write_fleet(fleet, args.format, out, customers=not args.no_customers)
    else:
        write_fleet(fleet, args.format, sys.stdout, customers=not args.no_customers)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hes-sim",
        description="A meter head-end system simulator speaking IEC 61968-9 in the IEC 61968-100 envelope.",
    )
    parser.add_argument("--version", action="version", version=f"hes-sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="serve a simulated fleet over SOAP until Ctrl-C")
    _scenario_args(run)
    run.add_argument("--host", help="address to bind (default: the scenario's server.host, 127.0.0.1)")
    run.add_argument("--port", type=int, help="TCP port (default: the scenario's server.port, 8080)")
    run.add_argument("--speed", type=float, help="sim seconds per wall second (default: the scenario's clock.speed)")
    run.add_argument("--jms", metavar="HOST:PORT",
                     help="also serve JMS through this ActiveMQ STOMP address (sets jms.enabled, jms.host, jms.port)")
    run.add_argument("--fast", action="store_true",
                     help="no server: run the scenario as fast as possible to --until, deliver, print a summary")
    run.add_argument("--until", metavar="T", help="with --fast: sim time to run, e.g. 3600, 90m, 6h, 1d")
    run.set_defaults(func=_cmd_run)

    fleet = sub.add_parser("fleet", help="list every meter of a scenario's fleet, to provision the MDMS")
    _scenario_args(fleet)
    fleet.add_argument("--format", choices=("csv", "json"), default="csv")
    fleet.add_argument("-o", "--output", help="write to this file instead of standard output")
    fleet.add_argument("--no-customers", action="store_true",
                       help="leave out the generated customer name and address (faster for huge fleets)")
    fleet.set_defaults(func=_cmd_fleet)

    control = sub.add_parser("control", help="do a timeline action now on a running simulator")
    control.add_argument("url", help="the simulator's base URL, e.g. http://127.0.0.1:8080")
    control.add_argument("action", choices=("outage", "unreachable", "slow", "disconnect", "connect", "storm",
                                            "push"))
    control.add_argument("--group", help="a group: FEEDER-07, COLLECTOR-0003, CLASS-PROSUMER")
    control.add_argument("--meter", action="append", help="a meter by mRID or serial (repeatable)")
    control.add_argument("--comm-class", dest="comm_class", help="every meter of a comm class, e.g. rf_mesh")
    control.add_argument("--duration", dest="duration_s", type=float, help="outage/unreachable/slow: seconds")
    control.add_argument("--factor", type=float, help="slow: latency multiplier")
    control.add_argument("--event-type", dest="event_type", help="storm: the EndDeviceEventType code")
    control.add_argument("--within", dest="within_s", type=float, help="storm: spread over this many seconds")
    control.add_argument("--push", help="push: the name of a push in the scenario")
    control.set_defaults(func=_cmd_control)

    from .mdms import register as register_mdms

    register_mdms(sub)
    from .broker import register as register_broker

    register_broker(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # stomp.py warns on every failed connect attempt, which floods the terminal while a broker is
    # down; the outbox and the JMS connection say themselves what they are waiting for.
    logging.getLogger("stomp.py").setLevel(logging.ERROR)
    try:
        return int(args.func(args))
    except ScenarioError as exc:
        print(f"hes-sim: error: {exc}", file=sys.stderr)
        return 2
    except SimulatorError as exc:
        print(f"hes-sim: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())

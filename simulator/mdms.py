"""A stand-in MDMS: receives what the head-end sends, checks it, acknowledges it and writes it down.

Testing async replies, events and the outbox needs something at the other end that behaves like
an MDMS: it accepts the SOAP operations the head-end calls (any path, SOAP 1.1, 1.2 or a bare
message), validates each message against our profiles, answers `<Noun>ResponseMessage` with the
CorrelationID echoed (adding code 0.3 when the message asked for an acknowledgement), answers a
schema-invalid message with a 1.8 fault, and journals every message as one JSON line, so a test
or a person can check what arrived, in which order and how often.

It can also misbehave on purpose, to exercise retries: `delay_s` answers late, `fail_rate` answers
HTTP 500 (a Server fault, code 5.1), `drop_rate` closes the connection without an answer. Which
messages fail or are dropped is a pure function of the seed and the arrival count, so a run
with the same seed and the same traffic misbehaves the same way.

Response roots (`ResponseMessage`, `<Noun>ResponseMessage`: what the head-end sends as an async
reply of style "response") are not requests, so the head-end's `read_request` refuses them; the
receiver reads the Header and Reply of any root itself, leniently, because it must journal even
the messages it rejects.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from lxml import etree

from simulator.cim import codes, schemas, soap
from simulator.cim.messages import ErrorItem, OutHeader, Reply, build_response, status_item
from simulator.cim.ns import METER_READINGS, MSG
from simulator.errors import CimError, SimulatorError
from simulator.ids import IdStream, derive_bytes
from simulator.ports import HttpAnswer
from simulator.signals import wait_for_stop
from simulator.timeutil import format_datetime_ms

MAX_REQUEST_BYTES = 256 * 1024 * 1024  # a 1,000-meter part of a day of 15-minute data is ~10 MB
_TYPED_NS = re.compile(r"^http://iec\.ch/TC57/\d{4}/([A-Za-z][A-Za-z0-9_]*)Message$")
_PROFILE_NS = re.compile(r"^http://iec\.ch/TC57/\d{4}/([A-Za-z][A-Za-z0-9_]*)#$")
# Meter mRIDs (Names/name for a Meter without one), in document order; XPath is ~10x faster than find per meter.
_METER_IDS = etree.XPath(
    "//mr:Meter/mr:mRID/text() | //mr:Meter[not(mr:mRID)]/mr:Names/mr:name/text()",
    namespaces={"mr": METER_READINGS},
)
_READINGS = (f"{{{METER_READINGS}}}IntervalReadings", f"{{{METER_READINGS}}}Readings")


@dataclass(frozen=True)
class MdmsOptions:
    delay_s: float = 0.0  # wait this long before answering
    fail_rate: float = 0.0  # share of messages answered HTTP 500
    drop_rate: float = 0.0  # share of messages whose connection is closed without an answer
    seed: int = 0  # decides which messages fail or are dropped, and the answers' MessageIDs
    validate: bool = True  # check every message against the profiles (False: journal only)
    journal_path: str | Path | None = None  # JSON lines file, appended to
    memory_journal: bool = True  # keep the entries in `journal` too (tests); off for long runs
    source: str = "MDMS-SIM"  # Header/Source of the answers

    def __post_init__(self) -> None:
        for name in ("fail_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.delay_s < 0:
            raise ValueError(f"delay_s must not be negative, got {self.delay_s}")


# ------------------------------------------------------------------------------- reading


def _child(parent: etree._Element | None, name: str, nss: tuple[str, ...]) -> etree._Element | None:
    if parent is None:
        return None
    for ns in nss:
        el = parent.find(f"{{{ns}}}{name}")
        if el is not None:
            return el
    return None


def _text(parent: etree._Element | None, name: str, nss: tuple[str, ...] = (MSG,)) -> str | None:
    el = _child(parent, name, nss)
    text = None if el is None or el.text is None else el.text.strip()
    return text or None


def _summary(root: etree._Element) -> dict[str, Any]:
    """What the journal says about a message: header fields, reply outcome, meters and readings."""
    ns = etree.QName(root).namespace or ""
    nss = (ns, MSG) if ns != MSG else (MSG,)
    header = _child(root, "Header", nss)
    reply = _child(root, "Reply", nss)
    properties: dict[str, str | None] = {}
    if header is not None:
        for prop in header.iterfind(f"{{{MSG}}}Property"):
            name = _text(prop, "Name")
            if name is not None:
                properties.setdefault(name, _text(prop, "Value"))
    meters = [str(text).strip() for text in _METER_IDS(root)]
    ack = _text(header, "AckRequired")
    return {
        "root": root.tag,
        "verb": _text(header, "Verb"),
        "noun": _text(header, "Noun"),
        "message_id": _text(header, "MessageID"),
        "correlation_id": _text(header, "CorrelationID"),
        "message_index": properties.get("MessageIndex"),
        "ack_required": ack in ("true", "1"),
        "result": _text(reply, "Result"),
        "error_codes": [
            code for e in (reply.iterfind(f"{{{MSG}}}Error") if reply is not None else ())
            if (code := _text(e, "code")) is not None
        ],
        "meters": meters,
        "readings": sum(1 for _ in root.iter(*_READINGS)),
        "events": sum(1 for _ in root.iter("{http://iec.ch/TC57/2011/EndDeviceEvents#}EndDeviceEvent")),
        "event_types": dict(sorted(Counter(
            t.get("ref") or "" for t in root.iter("{http://iec.ch/TC57/2011/EndDeviceEvents#}EndDeviceEventType")
            if t.getparent() is not None and etree.QName(t.getparent()).localname == "EndDeviceEvent"
        ).items())),
    }


def _validation_errors(root: etree._Element) -> list[str] | None:
    """Schema errors (empty: valid), or None when no profile covers the root's namespace.

    A generic message's Payload is `processContents="skip"` in Message.xsd, so profile documents
    inside it (a MeterReadings, say) are checked on their own against their profile.
    """
    known = set(schemas.xsd_names())
    ns = etree.QName(root).namespace or ""
    if ns == MSG:
        errors = schemas.validate(root, "Message")
        payload = root.find(f"{{{MSG}}}Payload")
        for doc in payload if payload is not None else ():
            match = _PROFILE_NS.match(etree.QName(doc).namespace or "") if isinstance(doc.tag, str) else None
            if match and match.group(1) in known:
                errors += schemas.validate(doc, match.group(1))
        return errors
    match = _TYPED_NS.match(ns)
    stem = f"{match.group(1)}Message" if match else None
    if stem is None or stem not in known:
        return None
    if ns != f"http://iec.ch/TC57/2011/{stem}":
        return None  # same profile name, another year: our schema's namespace would not match
    return schemas.validate(root, stem)


def answer_wrapper(root_tag: str | None, noun: str | None, kind: str) -> tuple[str | None, str]:
    """(typed root Clark name or None for generic, noun) of our answer of `kind` (Response/Fault)."""
    ns = etree.QName(root_tag).namespace if root_tag else None
    match = _TYPED_NS.match(ns or "")
    if match is None:
        return None, noun or "Message"
    derived = match.group(1)[3:] if match.group(1).startswith("Get") else match.group(1)
    noun = noun or derived
    return f"{{{ns}}}{noun}{kind}Message", noun


# ------------------------------------------------------------------------------- receiver


class MdmsReceiver:
    """The receiver's logic, without sockets: one call per POST, an answer or None (drop)."""

    def __init__(self, options: MdmsOptions | None = None, wall_clock: Callable[[], float] = time.time) -> None:
        self.options = options or MdmsOptions()
        self.journal: list[dict[str, Any]] = []
        self.received = 0
        self.on_message: Callable[[dict[str, Any]], None] | None = None  # e.g. print a line per message
        self._wall_clock = wall_clock
        self._message_ids = IdStream(self.options.seed, "mdms-answer")
        self._journal_file: IO[str] | None = None
        if self.options.journal_path is not None:
            path = Path(self.options.journal_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._journal_file = path.open("a", encoding="utf-8")

    def _draws(self, n: int) -> tuple[float, float]:
        """(drop, fail) uniforms for the n-th message: counter-based, so no RNG state to share."""
        raw = derive_bytes(self.options.seed, "mdms-misbehave", n, size=16)
        return int.from_bytes(raw[:8], "big") / 2.0**64, int.from_bytes(raw[8:], "big") / 2.0**64

    def begin(self, transport: str, body: bytes) -> dict[str, Any]:
        """Count one arrival and start its journal entry; every transport's entries share these keys."""
        self.received += 1
        return {
            "received_at": format_datetime_ms(self._wall_clock()), "transport": transport,
            "path": None, "soap_action": None,
            "root": None, "verb": None, "noun": None, "message_id": None, "correlation_id": None,
            "message_index": None, "ack_required": False, "result": None, "error_codes": [], "meters": [],
            "readings": 0, "events": 0, "event_types": {}, "valid": False, "validation_errors": [],
            "bytes": len(body), "answered": "",
        }  # fmt: skip

    def examine(self, entry: dict[str, Any], body: bytes, content_type: str | None
                ) -> tuple[soap.SoapVersion, CimError | None]:
        """Read and check one message into `entry`: (SOAP version found, why it must be refused or None).

        The version is None for a bare message; an unreadable body gives the Content-Type's version.
        """
        version: soap.SoapVersion = soap.version_of_content_type(content_type)
        try:
            version, root = soap.unwrap(body, content_type, MAX_REQUEST_BYTES)
        except CimError as exc:
            entry["validation_errors"] = [exc.reason]
            return version, exc
        entry.update(_summary(root))
        errors = _validation_errors(root) if self.options.validate else None
        entry["valid"] = None if errors is None else not errors
        if not errors:
            return version, None
        entry["validation_errors"] = errors[:3]
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return version, CimError(codes.SCHEMA_INVALID, "message fails schema validation: "
                                 + "; ".join(errors[:3]) + more, details="\n".join(errors[:50]))

    def record(self, entry: dict[str, Any]) -> None:
        """Journal one entry: in memory, then one flushed JSON line (callers may ack only after this)."""
        if self.options.memory_journal:
            self.journal.append(entry)
        if self._journal_file is not None:
            self._journal_file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._journal_file.flush()
        if self.on_message is not None:
            self.on_message(entry)

    def acknowledge(self, entry: dict[str, Any], version: soap.SoapVersion) -> HttpAnswer:
        """The `<Noun>ResponseMessage` for an accepted message (0.3 when it asked for an acknowledgement)."""
        wrapper, noun = answer_wrapper(entry["root"], entry["noun"], "Response")
        errors: tuple[ErrorItem, ...] = ()
        if entry["ack_required"]:
            errors = (status_item(codes.ACKNOWLEDGED),)
        header = OutHeader(
            verb="reply",
            noun=noun,
            message_id=self._message_ids.next(),
            correlation_id=entry["correlation_id"] or entry["message_id"],
            timestamp=format_datetime_ms(self._wall_clock()),
            source=self.options.source,
        )
        body = build_response(wrapper, header, Reply(codes.RESULT_OK, errors))
        return HttpAnswer(200, soap.content_type(version), soap.wrap(body, version))

    def fault(self, entry: dict[str, Any], version: soap.SoapVersion, error: CimError) -> HttpAnswer:
        """The `<Noun>FaultMessage` (in a SOAP Fault unless `version` is None) refusing a message."""
        wrapper, _ = answer_wrapper(entry["root"], entry["noun"], "Fault")
        status = 500 if version is None else soap.fault_http_status(error, version)
        return HttpAnswer(status, soap.content_type(version), soap.fault(error, version, wrapper))

    async def handle(self, path: str, soap_action: str | None, content_type: str, body: bytes) -> HttpAnswer | None:
        """Journal one message and answer it; None means: close the connection without answering."""
        n = self.received
        entry = self.begin("soap", body)
        entry["path"] = path
        entry["soap_action"] = (soap_action or "").strip().strip('"') or None
        version, invalid = self.examine(entry, body, content_type)
        drop_u, fail_u = self._draws(n)
        answer: HttpAnswer | None
        if drop_u < self.options.drop_rate:
            entry["answered"], answer = "dropped", None
        elif fail_u < self.options.fail_rate:
            busy = CimError(codes.BUSY, "simulated MDMS failure (fail rate)")  # a Server fault: HTTP 500
            entry["answered"], answer = "failed", self.fault(entry, version, busy)
        elif invalid is not None:
            entry["answered"], answer = "fault", self.fault(entry, version, invalid)
        else:
            entry["answered"], answer = "ok", self.acknowledge(entry, version)
        self.record(entry)
        if self.options.delay_s > 0:
            await asyncio.sleep(self.options.delay_s)
        return answer

    def close(self) -> None:
        if self._journal_file is not None:
            self._journal_file.close()
            self._journal_file = None


def make_app(receiver: MdmsReceiver) -> web.Application:
    """POST anywhere is a message; GET / says what this is, GET /health says it is alive."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)

    async def post(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        answer = await receiver.handle(
            request.path, request.headers.get("SOAPAction"), request.headers.get("Content-Type", ""), body
        )
        if answer is None:
            if request.transport is not None:
                request.transport.close()  # aiohttp discards the response below
            return web.Response(status=204)
        return web.Response(status=answer.status, body=answer.body, headers={"Content-Type": answer.content_type})

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=f"hes-sim MDMS receiver: POST 61968 messages to any path "
                                 f"({receiver.received} received so far)\n")

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "received": receiver.received})

    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_post("/{path:.*}", post)
    return app


class Receiver:
    """A running receiver (from `start_receiver`): its URL, its journal, and how to stop it."""

    def __init__(self, receiver: MdmsReceiver, runner: web.AppRunner, host: str, port: int) -> None:
        self.receiver = receiver
        self.host = host
        self.port = port
        self._runner = runner

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def journal(self) -> list[dict[str, Any]]:
        return self.receiver.journal

    async def close(self) -> None:
        await self._runner.cleanup()
        self.receiver.close()


def open_receiver(**options: Any) -> MdmsReceiver:
    """An MdmsReceiver from MdmsOptions keywords; a journal that cannot be opened is a SimulatorError."""
    try:
        return MdmsReceiver(MdmsOptions(**options))
    except OSError as exc:
        raise SimulatorError(f"--journal {options.get('journal_path')}: {exc.strerror or exc}") from None


async def start_receiver(host: str = "127.0.0.1", port: int = 0, **options: Any) -> Receiver:
    """Serve a receiver on host:port (0: a free port) with MdmsOptions given as keywords."""
    receiver = open_receiver(**options)
    runner = web.AppRunner(make_app(receiver), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        receiver.close()
        raise SimulatorError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except BaseException:
        await runner.cleanup()
        receiver.close()
        raise
    bound = runner.addresses[0]
    return Receiver(receiver, runner, host, int(bound[1]))


# ------------------------------------------------------------------------------- command line


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `mdms` sub-command to a `hes-sim` parser's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "mdms", help="run a stand-in MDMS that receives, validates, acknowledges and journals messages")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8081, help="TCP port (default 8081; 0 picks a free one)")
    p.add_argument("--journal", metavar="FILE", help="append one JSON line per message received to FILE")
    p.add_argument("--delay", type=_seconds, default=0.0, metavar="S",
                   help="wait S seconds before answering (JMS: and acknowledging)")
    p.add_argument("--fail-rate", type=_rate, default=0.0, metavar="P",
                   help="HTTP only: answer HTTP 500 to this share of messages (0..1, seeded)")
    p.add_argument("--drop-rate", type=_rate, default=0.0, metavar="P",
                   help="HTTP only: close the connection without answering for this share of messages (0..1, seeded)")
    p.add_argument("--seed", type=int, default=0, help="seed deciding which messages fail or are dropped")
    p.add_argument("--no-validate", action="store_true", help="accept messages without checking the profiles")
    p.add_argument("-v", "--verbose", action="store_true", help="print one line per message received")
    from simulator.mdms_jms import add_arguments as add_jms_arguments

    add_jms_arguments(p)
    p.set_defaults(func=run_mdms)
    return p


def _describe(entry: dict[str, Any]) -> str:
    part = f" part {entry['message_index']}" if entry["message_index"] else ""
    what = " ".join(x for x in (entry["verb"], entry["noun"]) if x) or entry["root"] or "unreadable"
    valid = {True: "valid", False: "INVALID", None: "not validated"}[entry["valid"]]
    via = f" from {entry['destination']}" if entry.get("destination") else ""
    return (f"{entry['received_at']} {what}{via} correlation={entry['correlation_id']}{part} "
            f"meters={len(entry['meters'])} readings={entry['readings']} {valid} -> {entry['answered']}")


async def _serve(args: argparse.Namespace, announce: Callable[[str], None]) -> MdmsReceiver:
    from simulator import mdms_jms  # only JMS users pay for stomp.py

    options: dict[str, Any] = dict(delay_s=args.delay, seed=args.seed, validate=not args.no_validate,
                                   journal_path=args.journal, memory_journal=False)
    http = None if args.no_http else await start_receiver(
        args.host, args.port, fail_rate=args.fail_rate, drop_rate=args.drop_rate, **options)
    receiver = open_receiver(**options) if http is None else http.receiver
    listener = None
    try:
        if args.verbose:
            receiver.on_message = lambda entry: announce(_describe(entry))
        if args.jms:
            listener = await mdms_jms.listen_from_arguments(receiver, args)
        validation = "off" if args.no_validate else "on"
        announce(f"MDMS receiver: journal {args.journal or '(none)'}, validation {validation}, delay {args.delay:g} s, "
                 f"fail rate {args.fail_rate:g}, drop rate {args.drop_rate:g}, seed {args.seed}")
        if listener is not None:
            jms_line = f"jms://{listener.address} as {listener.client_id}: {', '.join(listener.destinations)}"
            announce(f"listening on {jms_line} (Ctrl-C stops)" if http is None else f"consuming {jms_line}")
        if http is not None:
            announce(f"listening on {http.base_url} (Ctrl-C stops)")
        await wait_for_stop()
    finally:
        if listener is not None:
            await listener.close()
        if http is not None:
            await http.close()
        receiver.close()
    return receiver


def run_mdms(args: argparse.Namespace) -> int:
    """The `hes-sim mdms` command: serve until SIGINT or SIGTERM."""
    from simulator import mdms_jms

    def announce(line: str) -> None:
        print(line, flush=True)

    problem = mdms_jms.check_arguments(args)
    if problem is not None:
        print(f"hes-sim: error: {problem}", file=sys.stderr)
        return 2
    try:
        receiver = asyncio.run(_serve(args, announce))
    except KeyboardInterrupt:
        return 0
    announce(f"MDMS receiver stopped after {receiver.received} messages")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m simulator.mdms ...`: the same command without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="hes-sim")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["mdms", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args))
    except SimulatorError as exc:
        print(f"hes-sim: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The stand-in MDMS on JMS: consume queues and topics of an ActiveMQ broker, journal like SOAP.

A message on JMS is the bare 61968-100 XML in a TextMessage, with JMSCorrelationID = Header
CorrelationID and string properties Verb and Noun. Each one goes through the same reading,
validation and journal code as a SOAP POST (`MdmsReceiver.begin/examine/record`), so a SOAP
journal and a JMS journal of the same traffic compare field by field; a JMS entry has
`transport: "jms"`, `path`/`soap_action` None, and the JMS envelope beside (`destination`,
`jms_*`). `jms_mismatches` lists where the JMS headers disagree with the 61968 Header, which the
head-end's JMS convention says must not happen; it does not change `valid` (the XML's verdict).

Answers: nobody waits on a JMS message, so a message is answered only when its Header asks
AckRequired and it has a JMS reply-to: the same `<Noun>ResponseMessage` with code 0.3 the SOAP
path returns (or the `<Noun>FaultMessage` 1.8 for a schema-invalid one), sent to the reply-to
with JMSCorrelationID = that answer's CorrelationID. `answered` is then "ok" or "fault", else
"none". `delay_s` waits before answering and acknowledging; fail and drop rates are HTTP only.

Delivery: topics are subscribed durably (the connection's client ID plus a subscription name, the
topic's own name), so what is published while the receiver is away, once it has subscribed, waits
for it. Every destination is consumed with `client-individual` acknowledgement and a bounded
prefetch; a message is acknowledged only after its entry is flushed to the journal (and its
answer confirmed by the broker), so a crash or a lost connection before then brings it back,
marked `jms_redelivered`: at least once, never lost. An unreadable body is journaled with its
error and acknowledged, like a bad SOAP body is answered with a fault: it cannot get better.

Threading: stomp.py calls the handler on its receiver thread. The handler only hands the
message to the asyncio loop (`call_soon_threadsafe`); reading, journaling and the delay run
there. That keeps `MdmsReceiver` single-threaded, as the HTTP side already uses it (one journal
file, one arrival counter, one answer-ID stream shared by both transports, no lock to forget),
and a `delay_s` becomes a sleeping task instead of a blocked receiver thread that would stop
every subscription and starve the connection's heart-beats. Sends and acks, which block on the
broker, run on one worker thread of the listener, in order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from simulator.cim import codes
from simulator.errors import CimError, SimulatorError
from simulator.mdms import MdmsReceiver, answer_wrapper, open_receiver
from simulator.transports.jms import JmsConnection, JmsError, JmsMessage

log = logging.getLogger(__name__)

DEFAULT_CLIENT_ID = "hes-sim-mdms"
DEFAULT_STOMP_PORT = 61613
DEFAULT_PREFETCH = 100
CLOSE_GRACE_S = 5.0  # how long close() lets messages in hand finish (on top of delay_s)
ENVELOPE_ON_JMS = "a JMS message carries the bare 61968-100 message, not a SOAP envelope"
_LISTENABLE = re.compile(r"^(queue|topic)://\S+$")
_ADDRESS = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$")


class JmsEndpoint(Protocol):
    """What the listener needs of a connection (JmsConnection; a fake in unit tests)."""

    def subscribe(self, destination: str, handler: Callable[[JmsMessage], None],
                  ack: str = ..., headers: Mapping[str, str] | None = ...) -> str: ...

    def send(self, destination: str, body: bytes, correlation_id: str | None = ..., reply_to: str | None = ...,
             properties: Mapping[str, str] | None = ..., persistent: bool = ...) -> None: ...

    def ack(self, msg: JmsMessage) -> None: ...

    def drop(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class JmsReply:
    """An answer to send to a message's reply-to."""

    destination: str
    body: bytes
    correlation_id: str | None
    properties: dict[str, str]


def subscription_headers(destination: str, prefetch: int = DEFAULT_PREFETCH) -> dict[str, str]:
    """SUBSCRIBE headers: a bounded prefetch, and for a topic the durable subscription's name."""
    headers = {"activemq.prefetchSize": str(prefetch)}
    if destination.startswith("topic://"):
        headers["activemq.subscriptionName"] = destination[len("topic://"):]
    return headers


def _envelope_fields(msg: JmsMessage) -> dict[str, Any]:
    return {
        "destination": msg.destination,
        "jms_message_id": msg.message_id,
        "jms_correlation_id": msg.correlation_id,
        "jms_reply_to": msg.reply_to,
        "jms_redelivered": msg.redelivered,
        "jms_properties": dict(sorted(msg.properties.items())),
        "jms_mismatches": [],
    }


def convention_mismatches(entry: dict[str, Any], msg: JmsMessage) -> list[str]:
    """Where JMSCorrelationID and the Verb/Noun properties disagree with the message's Header."""
    if entry["root"] is None:
        return []
    found = []
    if msg.correlation_id != entry["correlation_id"]:
        found.append(f"JMSCorrelationID {msg.correlation_id!r} is not Header/CorrelationID "
                     f"{entry['correlation_id']!r}")
    for prop, key in (("Verb", "verb"), ("Noun", "noun")):
        if msg.properties.get(prop) != entry[key]:
            found.append(f"property {prop} {msg.properties.get(prop)!r} is not Header/{prop} {entry[key]!r}")
    return found


def read_jms_message(receiver: MdmsReceiver, msg: JmsMessage) -> tuple[dict[str, Any], JmsReply | None]:
    """The journal entry (not yet recorded) and the answer to send, if any, for one JMS message."""
    entry = receiver.begin("jms", msg.body)
    entry.update(_envelope_fields(msg))
    version, invalid = receiver.examine(entry, msg.body, None)
    if entry["root"] is not None and version is not None:
        entry["valid"] = False
        entry["validation_errors"] = [ENVELOPE_ON_JMS, *entry["validation_errors"]][:3]
        invalid = invalid or CimError(codes.SCHEMA_INVALID, ENVELOPE_ON_JMS)
    entry["jms_mismatches"] = convention_mismatches(entry, msg)
    if not (entry["ack_required"] and msg.reply_to):
        entry["answered"] = "none"
        return entry, None
    if invalid is None:
        entry["answered"], answer = "ok", receiver.acknowledge(entry, None)
    else:
        entry["answered"], answer = "fault", receiver.fault(entry, None, invalid)
    _, noun = answer_wrapper(entry["root"], entry["noun"], "Response")
    correlation = entry["correlation_id"] or entry["message_id"] or msg.correlation_id or msg.message_id or None
    return entry, JmsReply(msg.reply_to, answer.body, correlation, {"Verb": "reply", "Noun": noun})


def _unreadable(receiver: MdmsReceiver, msg: JmsMessage, exc: Exception) -> dict[str, Any]:
    """The entry for a message the reader itself failed on: journaled, so it is not lost silently."""
    entry = receiver.begin("jms", msg.body)
    entry.update(_envelope_fields(msg))
    entry["validation_errors"] = [f"receiver error: {exc.__class__.__name__}: {exc}"]
    entry["answered"] = "none"
    return entry


class JmsListener:
    """Feeds one MdmsReceiver from JMS destinations (alone, or beside its HTTP server)."""

    def __init__(self, receiver: MdmsReceiver, connection: JmsEndpoint, destinations: Sequence[str], *,
                 prefetch: int = DEFAULT_PREFETCH, address: str = "", client_id: str | None = None) -> None:
        for destination in destinations:
            if not _LISTENABLE.match(destination):
                raise ValueError(f"can listen on queue://NAME or topic://NAME only, not {destination!r}")
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}")
        self.receiver = receiver
        self.connection = connection
        self.destinations = list(dict.fromkeys(destinations))  # once each, in the order given
        self.prefetch = prefetch
        self.address = address
        self.client_id = client_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mdms-jms")
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self) -> None:
        """Subscribe to every destination; raises JmsError when the broker cannot be reached."""
        self._loop = asyncio.get_running_loop()
        for destination in self.destinations:
            await self._loop.run_in_executor(self._worker, partial(
                self.connection.subscribe, destination, self._on_message, "client-individual",
                subscription_headers(destination, self.prefetch)))

    def _on_message(self, msg: JmsMessage) -> None:
        """On stomp.py's receiver thread: hand over and return. Never raises (a raise would dead-letter)."""
        loop = self._loop
        if self._closing or loop is None:
            return  # not acknowledged: the broker gives it to the next consumer
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(self._take, msg)

    def _take(self, msg: JmsMessage) -> None:
        if self._closing:
            return
        task = asyncio.get_running_loop().create_task(self._handle(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, msg: JmsMessage) -> None:
        reply: JmsReply | None = None
        try:
            entry, reply = read_jms_message(self.receiver, msg)
        except Exception as exc:
            log.exception("cannot read JMS message %s from %s", msg.message_id, msg.destination)
            entry = _unreadable(self.receiver, msg, exc)
        try:
            self.receiver.record(entry)
        except OSError as exc:  # the journal cannot be written: leave the message with the broker
            # ActiveMQ redelivers an unacknowledged message only when its connection ends.
            log.error("journal write failed, %s not acknowledged; reconnecting for its redelivery: %s",
                      msg.message_id, exc)
            self.connection.drop()
            return
        if self.receiver.options.delay_s > 0:
            await asyncio.sleep(self.receiver.options.delay_s)
        await asyncio.get_running_loop().run_in_executor(self._worker, self._settle, msg, reply)

    def _settle(self, msg: JmsMessage, reply: JmsReply | None) -> None:
        """On the worker thread: send the answer, then acknowledge the message to the broker."""
        if reply is not None:
            try:
                self.connection.send(reply.destination, reply.body, reply.correlation_id,
                                     properties=reply.properties)
            except ValueError as exc:  # a reply-to we cannot address: it will not get better
                log.warning("answer to %s not sent (%s); message acknowledged anyway", msg.message_id, exc)
            except JmsError as exc:
                log.warning("answer to %s not sent; reconnecting for its redelivery: %s", msg.message_id, exc)
                self.connection.drop()
                return
        self.connection.ack(msg)

    async def close(self) -> None:
        """Stop taking messages, let those in hand finish (delay included), then disconnect.

        Durable subscriptions stay on the broker, so topics keep collecting for the next start.
        """
        self._closing = True
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks),
                                                timeout=self.receiver.options.delay_s + CLOSE_GRACE_S)
            for task in pending:
                task.cancel()  # journaled, not acknowledged: redelivered next time
        await asyncio.get_running_loop().run_in_executor(self._worker, self.connection.close)
        self._worker.shutdown(wait=False)


class JmsReceiver:
    """A running JMS-only receiver (from `start_jms_receiver`): its journal, and how to stop it."""

    def __init__(self, receiver: MdmsReceiver, listener: JmsListener) -> None:
        self.receiver = receiver
        self.listener = listener

    @property
    def journal(self) -> list[dict[str, Any]]:
        return self.receiver.journal

    async def close(self) -> None:
        try:
            await self.listener.close()
        finally:
            self.receiver.close()


async def start_listener(receiver: MdmsReceiver, host: str, port: int, destinations: Sequence[str], *,
                         client_id: str = DEFAULT_CLIENT_ID, prefetch: int = DEFAULT_PREFETCH,
                         login: str | None = None, passcode: str | None = None,
                         connection_options: Mapping[str, Any] | None = None) -> JmsListener:
    """Connect to the broker's STOMP port and consume `destinations` into `receiver`'s journal.

    `connection_options` go to JmsConnection (timeouts, reconnect backoff). A broker that cannot
    be reached, or refuses the client ID, is a SimulatorError; once subscribed, a lost connection
    comes back by itself.
    """
    connection = JmsConnection(host, port, client_id or None, login=login, passcode=passcode,
                               **dict(connection_options or {}))
    listener = JmsListener(receiver, connection, destinations, prefetch=prefetch,
                           address=f"{host}:{port}", client_id=client_id)
    try:
        await listener.start()
    except JmsError as exc:
        await listener.close()
        raise SimulatorError(f"JMS: {exc}") from None
    return listener


async def start_jms_receiver(host: str, port: int, destinations: Sequence[str], *,
                             client_id: str = DEFAULT_CLIENT_ID, prefetch: int = DEFAULT_PREFETCH,
                             login: str | None = None, passcode: str | None = None,
                             connection_options: Mapping[str, Any] | None = None,
                             **options: Any) -> JmsReceiver:
    """A receiver consuming JMS only, with MdmsOptions given as keywords (fail/drop rates refused)."""
    for name in ("fail_rate", "drop_rate"):
        if options.get(name):
            raise ValueError(f"{name} applies to HTTP only")
    receiver = open_receiver(**options)
    try:
        listener = await start_listener(receiver, host, port, destinations, client_id=client_id, prefetch=prefetch,
                                        login=login, passcode=passcode, connection_options=connection_options)
    except BaseException:
        receiver.close()
        raise
    return JmsReceiver(receiver, listener)


# ------------------------------------------------------------------------------- command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The JMS options of `hes-sim mdms`."""
    jms = p.add_argument_group(
        "JMS (ActiveMQ over STOMP)",
        "With --jms the receiver also consumes 61968 messages (TextMessage, bare XML) from a broker, "
        "beside HTTP (or alone with --no-http), and journals them like SOAP ones, with transport \"jms\". "
        "A message is acknowledged to the broker once journaled; one whose Header asks AckRequired and "
        "that has a JMS reply-to gets the 0.3 acknowledgement (or a 1.8 fault) there, after --delay. "
        "--fail-rate and --drop-rate are HTTP only.")
    jms.add_argument("--jms", metavar="HOST[:PORT]", help=f"the broker's STOMP address (port default "
                                                           f"{DEFAULT_STOMP_PORT})")
    jms.add_argument("--listen", action="append", default=[], metavar="DEST",
                     help="queue://NAME or topic://NAME to consume (repeatable); topics are subscribed "
                          "durably, so what is published while the receiver is away waits for it")
    jms.add_argument("--client-id", default=DEFAULT_CLIENT_ID, metavar="ID",
                     help=f"JMS client ID naming the durable subscriptions (default {DEFAULT_CLIENT_ID}); "
                          "keep it across restarts, give each receiver on one broker its own")
    jms.add_argument("--prefetch", type=int, default=DEFAULT_PREFETCH, metavar="N",
                     help=f"messages the broker may send ahead of acknowledgements (default {DEFAULT_PREFETCH})")
    jms.add_argument("--jms-login", metavar="USER", help="broker login, if the broker asks for one")
    jms.add_argument("--jms-passcode", metavar="PASS", help="broker passcode, if the broker asks for one")
    jms.add_argument("--no-http", action="store_true", help="with --jms: consume JMS only, serve no HTTP")


def parse_address(text: str) -> tuple[str, int]:
    """`HOST[:PORT]` (IPv6 in brackets) -> (host, port); raises ValueError."""
    match = _ADDRESS.match(text.strip())
    port = int(match.group("port") or DEFAULT_STOMP_PORT) if match else 0
    if match is None or not 0 < port < 65536:
        raise ValueError(f"--jms {text}: expected HOST:PORT, e.g. 127.0.0.1:{DEFAULT_STOMP_PORT}")
    return match.group("v6") or match.group("host"), port


def check_arguments(args: argparse.Namespace) -> str | None:
    """What is wrong with the JMS options of `hes-sim mdms`, in one line, or None."""
    jms, listen = getattr(args, "jms", None), list(getattr(args, "listen", None) or [])
    no_http = getattr(args, "no_http", False)
    if jms is None:
        if listen:
            return "--listen needs --jms HOST:PORT"
        return "--no-http needs --jms HOST:PORT (there would be nothing to listen on)" if no_http else None
    try:
        parse_address(jms)
    except ValueError as exc:
        return str(exc)
    if not listen:
        return "--jms needs at least one --listen queue://NAME or topic://NAME"
    for destination in listen:
        if not _LISTENABLE.match(destination):
            return f"--listen {destination}: expected queue://NAME or topic://NAME"
    if not args.client_id:
        return "--client-id must not be empty (it names the durable topic subscriptions)"
    if args.prefetch < 1:
        return f"--prefetch must be at least 1, got {args.prefetch}"
    if no_http and (args.fail_rate or args.drop_rate):
        return "--fail-rate and --drop-rate apply to HTTP only; they cannot be used with --no-http"
    return None


async def listen_from_arguments(receiver: MdmsReceiver, args: argparse.Namespace) -> JmsListener:
    """Start consuming as the (checked) command-line options say."""
    host, port = parse_address(args.jms)
    return await start_listener(receiver, host, port, args.listen, client_id=args.client_id, prefetch=args.prefetch,
                                login=args.jms_login, passcode=args.jms_passcode)

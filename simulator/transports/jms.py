"""JMS through ActiveMQ, spoken over STOMP 1.2: bytes and JMS headers in, bytes and JMS headers out.

Why STOMP and stomp.py: ActiveMQ 5.17 as Debian ships it speaks OpenWire and STOMP but has no
AMQP 1.0 connector, so python-qpid-proton would need a different broker; OpenWire has no
maintained Python client. stomp.py is pure Python (no C build), maintained, and maps STOMP
frames onto JMS headers the way ActiveMQ documents it, so Java JMS clients read what we send.

This module knows brokers, not 61968: it never parses a body. The head-end decides which
correlation id, reply-to and properties a message carries (see `JmsHeaders`) and passes them in.

How STOMP maps onto JMS in ActiveMQ, which is why the frames look the way they do:
- a SEND without `content-length` becomes a TextMessage, with it a BytesMessage. Java consumers of
  61968 XML expect text, so every connection is made with `auto_content_length=False`. The price:
  a body must be UTF-8 and may not contain NUL (which ends a frame); XML 1.0 forbids NUL anyway;
- `correlation-id` -> JMSCorrelationID, `reply-to` -> JMSReplyTo, `persistent:true` -> PERSISTENT
  delivery; any other header becomes a string property (JMS int/boolean properties come back as
  strings too);
- destinations are written `queue://NAME` / `topic://NAME` here and `/queue/NAME` / `/topic/NAME`
  on the wire. A Java requester's temporary reply queue reaches us as `/remote-temp-queue/ID`, kept
  as `temp-queue://ID` so that sending a reply to it reaches that same queue.

ASSUMPTION (IEC 61968-100 ed.2 clause 9.3 is not available to us): a 61968 message travels as a
TextMessage holding the whole XML envelope, no SOAP; JMSCorrelationID = Header/CorrelationID;
JMSReplyTo from Header/ReplyAddress; string properties `Verb` and `Noun`. Those choices live in
the head-end's `JmsHeaders` factory, not here; this module only makes them expressible.

Threading: stomp.py runs one receiver thread per connection and has no asyncio API. Handlers run
on that thread, so they must return quickly (hand work to a loop with `call_soon_threadsafe`).
A send waits for the broker's RECEIPT, so `send` returning means the broker has the message (on
disk, when persistent). Inside a handler that wait would deadlock (the receipt arrives on the
handler's own thread), so a send made from a handler is transmitted without waiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import stomp
import stomp.exception

from simulator.ports import DeliveryResult, JmsHeaders

log = logging.getLogger(__name__)

# (our scheme, STOMP prefix for sending). Received destinations also use `/temp-queue/`.
_SCHEMES = (
    ("queue://", "/queue/"),
    ("topic://", "/topic/"),
    ("temp-queue://", "/remote-temp-queue/"),
    ("temp-topic://", "/remote-temp-topic/"),
)
_RECEIVED_TEMP = (("/temp-queue/", "temp-queue://"), ("/temp-topic/", "temp-topic://"))

# Frame headers with a JMS meaning of their own; everything else on a MESSAGE is a property.
_RESERVED_HEADERS = frozenset({
    "destination", "message-id", "subscription", "ack", "content-length", "content-type", "correlation-id",
    "reply-to", "persistent", "priority", "expires", "timestamp", "type", "redelivered", "receipt",
    "receipt-id", "transformation", "client-id", "selector", "id", "JMSXUserID",
})
_PROPERTY_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")  # a JMS property name is a Java identifier
_ACK_MODES = ("auto", "client", "client-individual")

__all__ = ["JmsConnection", "JmsError", "JmsHeaders", "JmsMessage", "JmsSender", "jms_destination",
           "stomp_destination"]


class JmsError(Exception):
    """The broker could not be reached or did not confirm a frame; the message may be retried.

    `refused`: the broker answered the frame with an ERROR (it is up, and said no).
    """

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def stomp_destination(destination: str) -> str:
    """`queue://A` -> `/queue/A`; raises ValueError for anything that is not one of our four schemes."""
    for scheme, prefix in _SCHEMES:
        if destination.startswith(scheme) and len(destination) > len(scheme):
            return prefix + destination[len(scheme):]
    raise ValueError(f"JMS destination must be queue://NAME or topic://NAME, not {destination!r}")


def jms_destination(stomp_name: str) -> str:
    """The inverse of `stomp_destination`, for destinations and reply-to headers read off the wire."""
    for scheme, prefix in _SCHEMES:
        if stomp_name.startswith(prefix):
            return scheme + stomp_name[len(prefix):]
    for prefix, scheme in _RECEIVED_TEMP:
        if stomp_name.startswith(prefix):
            return scheme + stomp_name[len(prefix):]
    return stomp_name  # something this broker invented; passed through untouched


@dataclass(frozen=True)
class JmsMessage:
    body: bytes
    destination: str
    correlation_id: str | None
    reply_to: str | None
    properties: dict[str, str]
    message_id: str
    redelivered: bool = False
    # What ack/nack need: the frame's ack id and which connection delivered it.
    ack_id: str = field(default="", repr=False, compare=False)
    subscription: str = field(default="", repr=False, compare=False)
    generation: int = field(default=0, repr=False, compare=False)


@dataclass(frozen=True)
class _Subscription:
    id: str
    destination: str  # STOMP form
    handler: Callable[[JmsMessage], None]
    ack: str
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. activemq.subscriptionName, prefetch


class Receipt:
    """One RECEIPT being waited for: by a thread (`done`) or by the event loop (`future`)."""

    def __init__(self, receipt_id: str, destination: str) -> None:
        self.id = receipt_id
        self.destination = destination
        self.done = threading.Event()
        self.error: str | None = None
        self.future: concurrent.futures.Future[None] = concurrent.futures.Future()

    def finish(self, error: str | None) -> None:
        """Called on stomp.py's thread when the RECEIPT (or an ERROR, or the end) comes."""
        self.error = error
        self.done.set()
        with contextlib.suppress(concurrent.futures.InvalidStateError):  # the waiter gave up meanwhile
            self.future.set_result(None)


class _Listener(stomp.ConnectionListener):
    """Callbacks of one physical connection; `generation` lets a replaced connection's late calls be ignored."""

    def __init__(self, owner: JmsConnection, generation: int) -> None:
        self.owner = owner
        self.generation = generation
        self.connected = threading.Event()
        self.error: str | None = None
        self.gone = threading.Event()

    def on_connected(self, frame: Any) -> None:
        self.connected.set()

    def on_error(self, frame: Any) -> None:
        message = frame.headers.get("message", "") or (frame.body or b"")[:200].decode("utf-8", "replace")
        log.warning("broker ERROR frame: %s", message)
        if not self.connected.is_set():
            self.error = message
            self.connected.set()  # wakes the connecting thread, which sees `error`
        self.owner._fail_pending(frame.headers.get("receipt-id"), f"broker error: {message}")

    def on_receipt(self, frame: Any) -> None:
        self.owner._complete(frame.headers.get("receipt-id"))

    def on_message(self, frame: Any) -> None:
        self.owner._deliver(frame, self.generation)

    def on_disconnected(self) -> None:
        self.gone.set()
        self.owner._lost(self.generation)


class JmsConnection:
    """One STOMP connection that comes back by itself while it has subscriptions.

    Reconnection: a lost connection with subscriptions is re-opened by a background thread with
    backoff from `reconnect_initial_s` doubling to `reconnect_max_s`, and every subscription is
    re-issued. Without subscriptions nothing runs in the background: the next `send` reconnects.
    Unacknowledged messages of a lost connection are redelivered by the broker (flag `redelivered`).
    `client_id` becomes the JMS client ID (needed for durable topic subscriptions); the broker
    refuses a second live connection with the same one.
    """

    def __init__(self, host: str, port: int, client_id: str | None = None, *, login: str | None = None,
                 passcode: str | None = None, heartbeat_ms: int = 10_000, connect_timeout_s: float = 5.0,
                 receipt_timeout_s: float = 10.0, reconnect_initial_s: float = 0.2,
                 reconnect_max_s: float = 5.0) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.login, self.passcode = login, passcode
        self.heartbeat_ms = heartbeat_ms
        self.connect_timeout_s = connect_timeout_s
        self.receipt_timeout_s = receipt_timeout_s
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self._connect_lock = threading.Lock()  # one (re)connect at a time; never taken by callbacks
        self._state_lock = threading.Lock()  # guards the fields below; held only briefly
        self._conn: Any = None
        self._listener: _Listener | None = None
        self._generation = 0
        self._subscriptions: dict[str, _Subscription] = {}
        self._pending: dict[str, Receipt] = {}
        self._closed = threading.Event()
        self._reconnecting = False
        self._ids = itertools.count(1)
        self._in_handler = threading.local()

    @property
    def is_connected(self) -> bool:
        conn = self._conn
        return conn is not None and bool(conn.is_connected())

    def connect(self) -> None:
        """Open the connection if it is not open (bounded by `connect_timeout_s`); raises JmsError."""
        if self._closed.is_set():
            raise JmsError("connection closed")
        if self.is_connected:
            return  # without the lock: a handler sending while a reconnect re-subscribes must not wait
        with self._connect_lock:
            if self.is_connected:
                return
            self._open()

    def _open(self) -> None:
        with self._state_lock:
            self._generation += 1
            generation = self._generation
        conn = stomp.Connection12(
            [(self.host, self.port)], heartbeats=(self.heartbeat_ms, self.heartbeat_ms),
            reconnect_attempts_max=1, timeout=self.connect_timeout_s, try_loopback_connect=False,
            auto_content_length=False, auto_decode=False)
        listener = _Listener(self, generation)
        conn.set_listener("jms", listener)
        headers = {"client-id": self.client_id} if self.client_id else {}
        try:
            conn.connect(username=self.login, passcode=self.passcode, wait=False, headers=headers)
        except (stomp.exception.StompException, OSError) as exc:
            raise JmsError(f"cannot connect to STOMP at {self.host}:{self.port}: {exc.__class__.__name__}") from exc
        if not listener.connected.wait(self.connect_timeout_s) or listener.error is not None:
            _drop(conn)
            why = listener.error or f"no CONNECTED within {self.connect_timeout_s:g} s"
            raise JmsError(f"STOMP at {self.host}:{self.port} refused the connection: {why}")
        with self._state_lock:
            closed = self._closed.is_set()  # close() sets it before taking this lock: no connection outlives it
            if not closed:
                self._conn, self._listener = conn, listener
            subscriptions = list(self._subscriptions.values())
        if closed:
            _drop(conn)
            raise JmsError("connection closed")
        try:
            for sub in subscriptions:
                self._subscribe_on(conn, sub)
        except JmsError:
            # Half subscribed is worse than not connected: nobody would ever re-subscribe the rest.
            self._abandon()
            raise

    def close(self) -> None:
        """Stop reconnecting and leave politely (DISCONNECT, then the socket closes within a second)."""
        self._closed.set()
        with self._state_lock:
            conn, listener, self._conn = self._conn, self._listener, None
        if conn is not None:
            try:
                conn.disconnect()
                if listener is not None:
                    listener.gone.wait(1.0)
            except (stomp.exception.StompException, OSError):
                pass
            _drop(conn)
        self._fail_pending(None, "connection closed")

    def send(self, destination: str, body: bytes, correlation_id: str | None = None, reply_to: str | None = None,
             properties: Mapping[str, str] | None = None, persistent: bool = True) -> None:
        """Hand one message to the broker and wait for its receipt; raises JmsError or ValueError."""
        receipt = self.transmit(destination, body, correlation_id, reply_to, properties, persistent)
        if receipt is None:
            return
        if not receipt.done.wait(self.receipt_timeout_s):
            raise self.expire(receipt)
        self.check(receipt)

    def transmit(self, destination: str, body: bytes, correlation_id: str | None = None,
                 reply_to: str | None = None, properties: Mapping[str, str] | None = None,
                 persistent: bool = True) -> Receipt | None:
        """Write one SEND frame and return its receipt to wait for (None inside a handler).

        Several frames may await their receipts at once; `check` a finished receipt, `expire`
        one that took longer than `receipt_timeout_s`. Raises JmsError or ValueError.
        """
        headers = _send_headers(correlation_id, reply_to, properties or {}, persistent)
        if b"\x00" in body:
            raise ValueError("a TextMessage body cannot contain NUL bytes")
        frame_destination = stomp_destination(destination)
        self.connect()
        confirm = not getattr(self._in_handler, "active", False)
        receipt = Receipt(uuid.uuid4().hex, destination)
        if confirm:
            headers["receipt"] = receipt.id
            with self._state_lock:
                self._pending[receipt.id] = receipt
        try:
            self._conn.send(frame_destination, body, headers=headers)
        except (stomp.exception.StompException, OSError, AttributeError) as exc:
            self._forget(receipt.id)
            self._abandon()
            raise JmsError(f"send to {destination} failed: {exc.__class__.__name__}: {exc}") from exc
        return receipt if confirm else None

    def check(self, receipt: Receipt) -> None:
        """Raise JmsError unless the broker confirmed this (finished) receipt."""
        if receipt.error is not None:
            raise JmsError(f"send to {receipt.destination} not confirmed: {receipt.error}",
                           refused=receipt.error.startswith("broker error"))

    def expire(self, receipt: Receipt) -> JmsError:
        """Give up on a receipt: a half-open socket never answers, so start over on the next send."""
        self._forget(receipt.id)
        self._abandon()
        return JmsError(f"no receipt from the broker within {self.receipt_timeout_s:g} s for {receipt.destination}")

    def subscribe(self, destination: str, handler: Callable[[JmsMessage], None],
                  ack: str = "client-individual", headers: Mapping[str, str] | None = None) -> str:
        """Call `handler` for each message (on the receiver thread); returns the subscription id.

        With `client`/`client-individual` the handler must `ack` or `nack` each message. A handler
        that raises is logged and its message nacked, which in ActiveMQ 5 dead-letters it at once.
        `headers` go on the SUBSCRIBE frame: ActiveMQ reads `activemq.prefetchSize` (messages sent
        ahead of acks) and, with a `client_id` on the connection, `activemq.subscriptionName`
        (a durable topic subscription: messages published while we are away wait for us).
        """
        if ack not in _ACK_MODES:
            raise ValueError(f"ack must be one of {_ACK_MODES}, not {ack!r}")
        sub = _Subscription(f"sub-{next(self._ids)}", stomp_destination(destination), handler, ack,
                            dict(headers or {}))
        with self._state_lock:
            self._subscriptions[sub.id] = sub
            conn = self._conn
        if conn is not None and conn.is_connected():
            self._subscribe_on(conn, sub)
        else:
            self.connect()  # subscribes everything recorded
        return sub.id

    def _subscribe_on(self, conn: Any, sub: _Subscription) -> None:
        """SUBSCRIBE and wait for its receipt, so a topic message sent right after is not missed."""
        if getattr(self._in_handler, "active", False):
            conn.subscribe(sub.destination, id=sub.id, ack=sub.ack, headers=dict(sub.headers))
            return
        pending = Receipt(uuid.uuid4().hex, jms_destination(sub.destination))
        receipt = pending.id
        with self._state_lock:
            self._pending[receipt] = pending
        try:
            conn.subscribe(sub.destination, id=sub.id, ack=sub.ack, headers={**sub.headers, "receipt": receipt})
        except (stomp.exception.StompException, OSError) as exc:
            self._forget(receipt)
            raise JmsError(f"subscribe to {jms_destination(sub.destination)} failed: {exc}") from exc
        if not pending.done.wait(self.receipt_timeout_s) or pending.error is not None:
            self._forget(receipt)
            raise JmsError(f"subscribe to {jms_destination(sub.destination)} not confirmed: {pending.error}")

    def unsubscribe(self, subscription_id: str) -> None:
        with self._state_lock:
            self._subscriptions.pop(subscription_id, None)
            conn = self._conn
        if conn is not None and conn.is_connected():
            conn.unsubscribe(id=subscription_id)

    def ack(self, msg: JmsMessage) -> None:
        """Acknowledge; a message from a replaced connection is ignored (the broker redelivers it)."""
        self._settle(msg, "ack")

    def nack(self, msg: JmsMessage) -> None:
        """Refuse: ActiveMQ 5 treats a STOMP NACK as poison and moves the message straight to the
        dead-letter queue (`queue://ActiveMQ.DLQ` by default, header `original-destination` kept);
        it does not redeliver. To have a message redelivered instead, close without acking it."""
        self._settle(msg, "nack")

    def _settle(self, msg: JmsMessage, how: str) -> None:
        conn = self._conn
        if conn is None or msg.generation != self._generation or not msg.ack_id:
            return
        try:
            getattr(conn, how)(msg.ack_id)
        except (stomp.exception.StompException, OSError) as exc:
            log.warning("%s of %s not sent: %s", how, msg.message_id, exc)

    # --- called from stomp.py's threads -------------------------------------------------------

    def _deliver(self, frame: Any, generation: int) -> None:
        headers: dict[str, str] = dict(frame.headers)
        with self._state_lock:
            sub = self._subscriptions.get(headers.get("subscription", ""))
        if sub is None:
            return  # unsubscribed meanwhile; an unacked message is redelivered to someone else
        msg = JmsMessage(
            body=frame.body if isinstance(frame.body, bytes) else (frame.body or "").encode("utf-8"),
            destination=jms_destination(headers.get("destination", "")),
            correlation_id=headers.get("correlation-id"),
            reply_to=jms_destination(headers["reply-to"]) if headers.get("reply-to") else None,
            properties={k: v for k, v in headers.items() if k not in _RESERVED_HEADERS},
            message_id=headers.get("message-id", ""),
            redelivered=headers.get("redelivered") == "true",
            ack_id=headers.get("ack", ""), subscription=sub.id, generation=generation)
        self._in_handler.active = True
        try:
            sub.handler(msg)
        except Exception:
            log.exception("JMS handler for %s failed on %s", jms_destination(sub.destination), msg.message_id)
            if sub.ack != "auto":
                self.nack(msg)
        finally:
            self._in_handler.active = False

    def _complete(self, receipt: str | None) -> None:
        with self._state_lock:
            pending = self._pending.pop(receipt or "", None)
        if pending is not None:
            pending.finish(None)

    def _fail_pending(self, receipt: str | None, error: str) -> None:
        """Fail one receipt, or all of them when `receipt` is None (the connection is gone)."""
        with self._state_lock:
            if receipt is None:
                failed, self._pending = list(self._pending.values()), {}
            else:
                one = self._pending.pop(receipt, None)
                failed = [one] if one is not None else []
        for pending in failed:
            pending.finish(error)

    def _lost(self, generation: int) -> None:
        if generation != self._generation:
            return
        self._fail_pending(None, "connection lost")
        with self._state_lock:
            start = bool(self._subscriptions) and not self._reconnecting and not self._closed.is_set()
            self._reconnecting = self._reconnecting or start
        if start:
            log.warning("JMS connection to %s:%s lost; reconnecting", self.host, self.port)
            threading.Thread(target=self._reconnect_loop, name="jms-reconnect", daemon=True).start()

    def _reconnect_loop(self) -> None:
        delay = self.reconnect_initial_s
        try:
            while not self._closed.wait(delay):
                try:
                    self.connect()
                    log.info("JMS connection to %s:%s restored", self.host, self.port)
                    return
                except JmsError as exc:
                    log.debug("reconnect failed: %s", exc)
                    delay = min(delay * 2, self.reconnect_max_s)
        finally:
            with self._state_lock:
                self._reconnecting = False

    def drop(self) -> None:
        """Close the socket now; with subscriptions the connection comes back by itself, and the
        broker redelivers every message we had not acknowledged."""
        self._abandon()

    def _forget(self, receipt: str) -> None:
        with self._state_lock:
            self._pending.pop(receipt, None)

    def _abandon(self) -> None:
        with self._state_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            _drop(conn)


def _drop(conn: Any) -> None:
    """Close the socket without ceremony (the broker treats unacked messages as undelivered)."""
    with contextlib.suppress(stomp.exception.StompException, OSError):
        conn.transport.disconnect_socket()


def _send_headers(correlation_id: str | None, reply_to: str | None, properties: Mapping[str, str],
                  persistent: bool) -> dict[str, str]:
    headers = {"persistent": "true" if persistent else "false"}
    if correlation_id:
        headers["correlation-id"] = correlation_id
    if reply_to:
        headers["reply-to"] = stomp_destination(reply_to)
    for name, value in properties.items():
        if name in _RESERVED_HEADERS or not _PROPERTY_NAME.match(name):
            raise ValueError(f"{name!r} cannot be a JMS property name")
        headers[name] = str(value)
    return headers


class JmsSender:
    """`OutboundSender` over JMS: ok means the broker confirmed it holds the message.

    stomp.py has no asyncio API, so each frame is written by a one-thread executor of this
    sender: the loop never blocks, frames leave in order, and a down broker (a connect bounded by
    the connection's timeouts) holds up only this sender. The receipts are awaited on the loop,
    not on that thread, so the outbox's concurrent sends share the connection with several frames
    in flight (a thread waiting for each receipt made the broker's round trip the limit of a storm;
    bench/RESULTS.md). `soap_action` is unused (no SOAP on JMS);
    `ack_required` is met by the broker's receipt, since a 61968 acknowledgement, if the receiver
    sends one, arrives later as a message of its own. `headers_for(body, soap_action)` is injected
    by the head-end so this module never reads a 61968 document. A cancelled send may still reach
    the broker (the thread finishes it): delivery is at least once, as with the outbox anyway.
    """

    def __init__(self, connection: JmsConnection, headers_for: Callable[[bytes, str], JmsHeaders] | None = None,
                 persistent: bool = True) -> None:
        self.connection = connection
        self.headers_for = headers_for
        self.persistent = persistent
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jms-send")
        self._failing = False  # say once that the broker is unreachable, and once that it is back

    async def send(self, destination: str, soap_action: str, body: bytes, ack_required: bool) -> DeliveryResult:
        try:
            headers = self.headers_for(body, soap_action) if self.headers_for else JmsHeaders()
        except Exception as exc:
            return DeliveryResult(False, None, f"cannot derive JMS headers: {exc.__class__.__name__}: {exc}", None)
        loop = asyncio.get_running_loop()
        conn = self.connection
        try:
            receipt = await loop.run_in_executor(self._executor, lambda: conn.transmit(
                destination, body, headers.correlation_id, headers.reply_to, headers.properties, self.persistent))
            if receipt is not None:
                try:
                    await asyncio.wait_for(asyncio.wrap_future(receipt.future), conn.receipt_timeout_s)
                except TimeoutError:
                    raise conn.expire(receipt) from None
                conn.check(receipt)
        except asyncio.CancelledError:
            raise
        except JmsError as exc:
            if exc.refused and destination.startswith(("temp-queue://", "temp-topic://")):
                # A requester's temporary destination dies with its connection; it never comes back.
                return DeliveryResult(False, None, f"{exc} (the requester's temporary destination is gone)",
                                      None, permanent=True)
            if not self._failing:
                self._failing = True
                log.warning("JMS: cannot send to %s (%s); messages wait in the outbox", destination, exc)
            return DeliveryResult(False, None, str(exc), None)
        except ValueError as exc:
            return DeliveryResult(False, None, str(exc), None)
        except Exception as exc:  # never raise into the outbox: it retries what is not ok
            return DeliveryResult(False, None, f"{exc.__class__.__name__}: {exc}", None)
        if self._failing:
            self._failing = False
            log.warning("JMS: sending again (broker %s:%s)", self.connection.host, self.connection.port)
        return DeliveryResult(True, None, None, None)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

"""The JMS transport against a real ActiveMQ broker (skipped without the `activemq` package, failed under CI).

Tests that only send and receive use the session's shared broker (`shared_broker`: CI's, or one
started for the session); the tests that stop or restart a broker share one of this module's
own, which they leave running. Every test uses destinations of its own, so order does not matter.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
import stomp

from simulator.transports.jms import JmsConnection, JmsError, JmsHeaders, JmsMessage, JmsSender
from tests.integration.broker import Broker, BrokerAddress, running_broker

pytestmark = pytest.mark.integration

WAIT_S = 10.0
ENVELOPE = '<?xml version="1.0" encoding="UTF-8"?><RequestMessage>Zürich</RequestMessage>'.encode()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """This module's own broker, for the tests that stop or restart it."""
    with running_broker(tmp_path_factory.mktemp("activemq")) as b:
        yield b


def _connections(host: str, port: int) -> Iterator[Callable[..., JmsConnection]]:
    """Connections made in a test, closed after it; quick reconnects so restarts stay short."""
    made: list[JmsConnection] = []

    def make(client_id: str | None = None) -> JmsConnection:
        conn = JmsConnection(host, port, client_id, connect_timeout_s=3.0,
                             receipt_timeout_s=5.0, reconnect_initial_s=0.1, reconnect_max_s=0.5)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


@pytest.fixture
def connect(shared_broker: BrokerAddress) -> Iterator[Callable[..., JmsConnection]]:
    """Connections to the shared broker."""
    yield from _connections(shared_broker.host, shared_broker.stomp_port)


@pytest.fixture
def connect_own(broker: Broker) -> Iterator[Callable[..., JmsConnection]]:
    """Connections to this module's own broker, which the test may stop and restart."""
    yield from _connections(broker.connect_host, broker.stomp_port)


def name(kind: str) -> str:
    return f"{kind}://test.{uuid.uuid4().hex[:12]}"


def collector(conn: JmsConnection) -> tuple[queue.Queue[JmsMessage], object]:
    inbox: queue.Queue[JmsMessage] = queue.Queue()

    def handler(msg: JmsMessage) -> None:
        inbox.put(msg)
        conn.ack(msg)

    return inbox, handler


def test_a_queue_message_keeps_body_correlation_reply_to_and_properties(connect) -> None:
    destination, replies = name("queue"), name("queue")
    consumer, producer = connect(), connect()
    inbox, handler = collector(consumer)
    consumer.subscribe(destination, handler)

    producer.send(destination, ENVELOPE, correlation_id="corr-42", reply_to=replies,
                  properties={"Verb": "get", "Noun": "MeterReadings"})

    msg = inbox.get(timeout=WAIT_S)
    assert msg.body == ENVELOPE  # UTF-8 text, byte for byte (the ü survives)
    assert msg.destination == destination
    assert msg.correlation_id == "corr-42"
    assert msg.reply_to == replies
    assert msg.properties["Verb"] == "get"
    assert msg.properties["Noun"] == "MeterReadings"
    assert msg.message_id.startswith("ID:")
    assert not msg.redelivered


def test_bodies_reach_java_consumers_as_text_messages(shared_broker: BrokerAddress, connect) -> None:
    """ActiveMQ writes `content-length` on a MESSAGE frame only for a BytesMessage; a TextMessage
    comes without it. A raw subscriber sees the frames; the contrast case (a client that adds the
    header, stomp.py's default) proves the check tells the two apart."""
    destination = name("queue")
    frames: queue.Queue[dict[str, str]] = queue.Queue()

    class Raw(stomp.ConnectionListener):  # type: ignore[misc]
        def on_message(self, frame: stomp.utils.Frame) -> None:
            frames.put(dict(frame.headers))

    raw = stomp.Connection12([(shared_broker.host, shared_broker.stomp_port)], auto_decode=False)
    raw.set_listener("raw", Raw())
    raw.connect(wait=True)
    try:
        raw.subscribe(destination.replace("queue://", "/queue/"), id="raw", ack="auto", headers={"receipt": "r"})
        connect().send(destination, ENVELOPE)
        as_text = frames.get(timeout=WAIT_S)
        raw.send(destination.replace("queue://", "/queue/"), ENVELOPE)  # auto_content_length=True
        as_bytes = frames.get(timeout=WAIT_S)
    finally:
        raw.disconnect()
    assert "content-length" not in as_text
    assert as_bytes["content-length"] == str(len(ENVELOPE))


def test_a_topic_message_reaches_every_subscriber(connect) -> None:
    topic = name("topic")
    first, second, producer = connect(), connect(), connect()
    inbox1, handler1 = collector(first)
    inbox2, handler2 = collector(second)
    first.subscribe(topic, handler1)
    second.subscribe(topic, handler2)

    producer.send(topic, ENVELOPE, correlation_id="evt-1", properties={"Verb": "created", "Noun": "EndDeviceEvents"})

    for inbox in (inbox1, inbox2):
        msg = inbox.get(timeout=WAIT_S)
        assert (msg.correlation_id, msg.properties["Noun"], msg.destination) == ("evt-1", "EndDeviceEvents", topic)
    with pytest.raises(queue.Empty):
        inbox1.get(timeout=0.3)  # once each, not twice


def test_a_failing_handler_does_not_stop_the_listener_and_its_message_is_dead_lettered(connect) -> None:
    destination = name("queue")
    consumer, producer = connect(), connect()
    handled: queue.Queue[str] = queue.Queue()

    def handler(msg: JmsMessage) -> None:
        handled.put(msg.correlation_id or "")
        if msg.correlation_id == "poison":
            raise RuntimeError("handler bug")
        consumer.ack(msg)

    consumer.subscribe(destination, handler)
    dead, dead_handler = collector(consumer)
    consumer.subscribe("queue://ActiveMQ.DLQ", dead_handler)

    producer.send(destination, ENVELOPE, correlation_id="poison")
    producer.send(destination, ENVELOPE, correlation_id="fine")

    assert [handled.get(timeout=WAIT_S), handled.get(timeout=WAIT_S)] == ["poison", "fine"]
    while (msg := dead.get(timeout=WAIT_S)).correlation_id != "poison":
        pass  # other tests' leftovers, if any
    assert msg.properties["original-destination"] == destination.replace("queue://", "/queue/")


def test_an_unacked_message_is_redelivered_to_the_next_consumer(connect) -> None:
    destination = name("queue")
    producer, careless = connect(), connect()
    got: queue.Queue[JmsMessage] = queue.Queue()
    careless.subscribe(destination, got.put)  # never acks
    producer.send(destination, ENVELOPE, correlation_id="again")
    assert got.get(timeout=WAIT_S).redelivered is False
    careless.close()

    consumer = connect()
    inbox, handler = collector(consumer)
    consumer.subscribe(destination, handler)
    msg = inbox.get(timeout=WAIT_S)
    assert (msg.correlation_id, msg.redelivered) == ("again", True)


async def test_sender_reports_a_stopped_broker_and_delivers_after_restart(broker: Broker, connect_own) -> None:
    destination = name("queue")
    consumer = connect_own()
    inbox, handler = collector(consumer)
    consumer.subscribe(destination, handler)
    headers = JmsHeaders(correlation_id="c-7", reply_to="queue://mdms.replies", properties={"Verb": "created"})
    sender = JmsSender(connect_own(), headers_for=lambda body, action: headers)
    try:
        assert (await sender.send(destination, "", ENVELOPE, True)).ok

        broker.stop()
        down = await sender.send(destination, "", ENVELOPE, True)
        assert not down.ok and down.error and "connect" in down.error

        broker.start()
        up = await sender.send(destination, "", ENVELOPE, True)
        assert up.ok and up.error is None
    finally:
        sender.close()

    # The consumer reconnected and resubscribed by itself: it sees the first and the last message.
    received = [inbox.get(timeout=WAIT_S), inbox.get(timeout=WAIT_S)]
    assert [(m.correlation_id, m.reply_to, m.properties["Verb"]) for m in received] == \
        [("c-7", "queue://mdms.replies", "created")] * 2


async def test_sender_never_raises_on_bad_input(connect) -> None:
    sender = JmsSender(connect())
    try:
        no_scheme = await sender.send("mdms.replies", "", ENVELOPE, False)
        nul = await sender.send(name("queue"), "", b"<a>\x00</a>", False)
    finally:
        sender.close()
    assert not no_scheme.ok and "queue://" in (no_scheme.error or "")
    assert not nul.ok and "NUL" in (nul.error or "")


def test_a_persistent_message_survives_a_broker_restart_and_a_non_persistent_one_does_not(
        broker: Broker, connect_own) -> None:
    destination = name("queue")
    producer = connect_own()
    producer.send(destination, b"<kept/>", correlation_id="kept", properties={"Noun": "MeterReadings"})
    producer.send(destination, b"<lost/>", correlation_id="lost", persistent=False)

    broker.restart()

    consumer = connect_own()
    inbox, handler = collector(consumer)
    consumer.subscribe(destination, handler)
    msg = inbox.get(timeout=WAIT_S)
    assert (msg.body, msg.correlation_id, msg.properties["Noun"]) == (b"<kept/>", "kept", "MeterReadings")
    with pytest.raises(queue.Empty):
        inbox.get(timeout=0.5)


def test_handlers_run_off_the_caller_thread_and_a_reply_from_a_handler_arrives(connect) -> None:
    """The head-end's request consumer will answer from its handler: that send must not deadlock
    waiting for a receipt that only its own (busy) receiver thread could read."""
    requests, replies = name("queue"), name("queue")
    server, client = connect(), connect()
    caller = threading.get_ident()
    threads: list[int] = []

    def serve(msg: JmsMessage) -> None:
        threads.append(threading.get_ident())
        assert msg.reply_to is not None
        server.send(msg.reply_to, b"<answer/>", correlation_id=msg.correlation_id)
        server.ack(msg)

    server.subscribe(requests, serve)
    inbox, handler = collector(client)
    client.subscribe(replies, handler)
    client.send(requests, b"<question/>", correlation_id="q-1", reply_to=replies)

    answer = inbox.get(timeout=WAIT_S)
    assert (answer.body, answer.correlation_id) == (b"<answer/>", "q-1")
    assert threads and threads[0] != caller


def test_a_resubscribe_that_fails_after_a_reconnect_is_retried_until_it_holds(connect, monkeypatch) -> None:
    conn, sender = connect(), connect()
    inbox, handler = collector(conn)
    destination = name("queue")
    conn.subscribe(destination, handler)
    original, failures = conn._subscribe_on, [JmsError("SUBSCRIBE not confirmed (simulated)")]

    def flaky(stomp_conn: object, sub: object) -> None:
        if failures:
            raise failures.pop()
        original(stomp_conn, sub)

    monkeypatch.setattr(conn, "_subscribe_on", flaky)
    conn.drop()  # the connection comes back by itself; its first re-subscribe fails
    sender.send(destination, ENVELOPE, correlation_id="after-the-failure")
    got = inbox.get(timeout=WAIT_S)  # without a retried SUBSCRIBE this never arrives
    assert got.correlation_id == "after-the-failure" and not failures

"""The MDMS receiver on JMS against a real ActiveMQ (skipped without the `activemq` package, failed under CI).

Tests that only send and receive share the session's broker (`shared_broker`) with destinations
and client IDs of their own; the one that restarts a broker starts its own.
"""

from __future__ import annotations

import asyncio
import queue
import signal
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from simulator.cim import soap
from simulator.cim.messages import ErrorItem, OutHeader, Reply, build_response, meter_error
from simulator.cim.ns import METER_READINGS_MSG, MSG
from simulator.mdms import start_receiver
from simulator.mdms_jms import JmsReceiver, start_jms_receiver
from simulator.transports.jms import JmsConnection, JmsMessage
from simulator.transports.soap_client import SoapSender
from tests.integration.broker import BrokerAddress, running_broker
from tests.integration.server import read_journal, running, wait_for
from tests.test_mdms import payload
from tests.test_mdms_jms import EVENTS_ACTION, TRANSPORT_FIELDS, end_device_events

pytestmark = pytest.mark.integration

WAIT_S = 15.0
EVENT_PROPS = {"Verb": "created", "Noun": "EndDeviceEvents"}
FAST_RECONNECT = {"reconnect_initial_s": 0.1, "reconnect_max_s": 0.5, "connect_timeout_s": 3.0}
NSMAP = {"m": METER_READINGS_MSG, "msg": MSG}


def unique(kind: str, name: str) -> str:
    return f"{kind}://t{uuid.uuid4().hex[:10]}.{name}"


def response_message(correlation: str = "job-9") -> bytes:
    """An async reply in response style, as the head-end sends the last part of a read job."""
    header = OutHeader("reply", "MeterReadings", message_id="r-1", correlation_id=correlation,
                       properties=(("MessageIndex", "2/2"),))
    reply = Reply("PARTIAL", (ErrorItem("0.2"), meter_error("4.1", "m-9")))
    return build_response(f"{{{METER_READINGS_MSG}}}MeterReadingsResponseMessage", header, reply,
                          payload(["m-7", "m-8"]))


@pytest.fixture
def client(shared_broker: BrokerAddress) -> Iterator[Callable[..., JmsConnection]]:
    """JMS connections of the test (a producer, a reply consumer), closed after it."""
    made: list[JmsConnection] = []

    def make(host: str = shared_broker.host, port: int = shared_broker.stomp_port) -> JmsConnection:
        made.append(JmsConnection(host, port, receipt_timeout_s=5.0))
        return made[-1]

    yield make
    for conn in made:
        conn.close()


@asynccontextmanager
async def receiving(host: str, port: int, destinations: list[str], **options: Any) -> AsyncIterator[JmsReceiver]:
    options.setdefault("client_id", f"mdms-test-{uuid.uuid4().hex[:8]}")
    running_receiver = await start_jms_receiver(host, port, destinations, connection_options=FAST_RECONNECT,
                                                **options)
    try:
        yield running_receiver
    finally:
        await running_receiver.close()


async def until(predicate: Callable[[], object], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.05)


def inbox_of(conn: JmsConnection, destination: str) -> queue.Queue[JmsMessage]:
    inbox: queue.Queue[JmsMessage] = queue.Queue()

    def take(msg: JmsMessage) -> None:
        inbox.put(msg)
        conn.ack(msg)

    conn.subscribe(destination, take)
    return inbox


async def test_events_on_a_topic_and_a_reply_on_a_queue_are_journaled_like_soap(
        shared_broker: BrokerAddress, client: Callable[..., JmsConnection], tmp_path: Path) -> None:
    topic, replies = unique("topic", "hes.events.EndDeviceEvents"), unique("queue", "mdms.replies")
    journal = tmp_path / "journal.jsonl"
    events, response = end_device_events("evt-1", ack=None), response_message("job-9")
    async with receiving(shared_broker.host, shared_broker.stomp_port, [topic, replies],
                         journal_path=journal) as receiver:
        producer = client()
        producer.send(topic, events, correlation_id="evt-1", properties=EVENT_PROPS)
        producer.send(replies, response, correlation_id="job-9", properties={"Verb": "reply", "Noun": "MeterReadings"})
        await until(lambda: len(receiver.journal) == 2, "two entries")
        entries = list(receiver.journal)
    assert read_journal(journal) == entries  # the file says what memory says
    by_destination = {e["destination"]: e for e in entries}
    event, reply = by_destination[topic], by_destination[replies]
    assert (event["transport"], event["verb"], event["noun"], event["correlation_id"]) == \
        ("jms", "created", "EndDeviceEvents", "evt-1")
    assert (event["events"], event["valid"], event["validation_errors"], event["jms_mismatches"]) == (6, True, [], [])
    assert event["event_types"] == {"3.26.38.185": 3, "3.26.38.216": 3}
    assert (reply["result"], reply["error_codes"], reply["message_index"]) == ("PARTIAL", ["0.2", "4.1"], "2/2")
    assert (reply["meters"], reply["readings"], reply["valid"]) == (["m-7", "m-8"], 10, True)
    assert reply["jms_properties"] == {"Noun": "MeterReadings", "Verb": "reply"}
    assert {event["answered"], reply["answered"]} == {"none"}

    # The same event over SOAP gives the same entry, but for what the transport decides.
    http = await start_receiver("127.0.0.1", 0)
    sender = SoapSender(timeout_s=5)
    try:
        assert (await sender.send(http.base_url + "/EndDeviceEvents", EVENTS_ACTION, events, False)).ok
        (over_soap,) = http.journal
    finally:
        await sender.close()
        await http.close()
    assert {k: v for k, v in event.items() if k in over_soap and k not in TRANSPORT_FIELDS} == \
        {k: v for k, v in over_soap.items() if k not in TRANSPORT_FIELDS}


async def test_ack_required_is_answered_at_the_reply_to_with_the_correlation_id(
        shared_broker: BrokerAddress, client: Callable[..., JmsConnection]) -> None:
    topic, acks = unique("topic", "hes.events.EndDeviceEvents"), unique("queue", "hes.acks")
    waiter = client()
    answers = inbox_of(waiter, acks)
    async with receiving(shared_broker.host, shared_broker.stomp_port, [topic], seed=3) as receiver:
        producer = client()
        producer.send(topic, end_device_events("evt-7", ack=True), correlation_id="evt-7", reply_to=acks,
                      properties=EVENT_PROPS)
        producer.send(topic, end_device_events("evt-8", ack=None), correlation_id="evt-8", reply_to=acks,
                      properties=EVENT_PROPS)
        await until(lambda: len(receiver.journal) == 2, "two entries")
        answer = await asyncio.to_thread(answers.get, timeout=WAIT_S)
    assert [e["answered"] for e in receiver.journal] == ["ok", "none"]
    assert answer.correlation_id == "evt-7"
    assert (answer.properties["Verb"], answer.properties["Noun"]) == ("reply", "EndDeviceEvents")
    root = etree.fromstring(answer.body)
    assert etree.QName(root).localname == "EndDeviceEventsResponseMessage"
    assert root.findtext("{*}Header/msg:CorrelationID", namespaces=NSMAP) == "evt-7"
    assert root.xpath("*/msg:Error/msg:code/text()", namespaces=NSMAP) == ["0.3"]
    with pytest.raises(queue.Empty):
        answers.get(timeout=0.5)  # nothing for the message that did not ask


async def test_a_bad_body_is_journaled_and_acknowledged_and_the_listener_goes_on(
        shared_broker: BrokerAddress, client: Callable[..., JmsConnection]) -> None:
    requests = unique("queue", "mdms.in")
    producer = client()
    async with receiving(shared_broker.host, shared_broker.stomp_port, [requests]) as receiver:
        producer.send(requests, b"this is not xml", correlation_id="bad")
        producer.send(requests, end_device_events("good", ack=None), correlation_id="good", properties=EVENT_PROPS)
        await until(lambda: len(receiver.journal) == 2, "two entries")
        await asyncio.sleep(0.2)  # acks are sent right after the journal line
    bad, good = receiver.journal
    assert (bad["jms_correlation_id"], bad["root"], bad["valid"]) == ("bad", None, False)
    assert "well-formed" in bad["validation_errors"][0]
    assert (good["correlation_id"], good["valid"]) == ("good", True)
    leftovers = inbox_of(client(), requests)  # both were acknowledged: nothing comes back
    with pytest.raises(queue.Empty):
        leftovers.get(timeout=1.0)


async def test_a_durable_topic_keeps_what_is_published_while_the_receiver_is_away(
        shared_broker: BrokerAddress, client: Callable[..., JmsConnection]) -> None:
    topic, client_id = unique("topic", "hes.events.EndDeviceEvents"), f"mdms-durable-{uuid.uuid4().hex[:8]}"
    host, port = shared_broker.host, shared_broker.stomp_port
    async with receiving(host, port, [topic], client_id=client_id) as first:
        pass  # subscribing once creates the durable subscription
    assert first.journal == []
    client().send(topic, end_device_events("while-away", ack=None), correlation_id="while-away",
                  properties=EVENT_PROPS)
    async with receiving(host, port, [topic], client_id=f"{client_id}-other") as stranger, \
            receiving(host, port, [topic], client_id=client_id) as again:
        await until(lambda: again.journal, "the message published while away")
        await asyncio.sleep(0.3)
    assert [(e["correlation_id"], e["valid"], e["jms_redelivered"]) for e in again.journal] == \
        [("while-away", True, False)]
    assert stranger.journal == []  # a new subscription starts now: the backlog was kept for ours only


async def test_after_a_broker_restart_the_receiver_is_back_with_what_was_published_meanwhile(
        tmp_path: Path, client: Callable[..., JmsConnection]) -> None:
    topic, requests = unique("topic", "hes.events.EndDeviceEvents"), unique("queue", "mdms.in")
    with running_broker(tmp_path / "broker") as broker:
        host, port = broker.connect_host, broker.stomp_port
        producer = client(host, port)
        async with receiving(host, port, [topic, requests]) as receiver:
            producer.send(topic, end_device_events("before"), correlation_id="before", properties=EVENT_PROPS)
            await until(lambda: len(receiver.journal) == 1, "the first event")
            connection = receiver.listener.connection
            assert isinstance(connection, JmsConnection)
            # Come back well after the broker does (a restart takes 2-4 s, more on a busy machine), so
            # a message published right after the restart finds the durable subscription without
            # its subscriber.
            connection.reconnect_initial_s = connection.reconnect_max_s = 12.0

            await asyncio.to_thread(broker.restart)
            producer.send(topic, end_device_events("during"), correlation_id="during", properties=EVENT_PROPS)
            assert not connection.is_connected  # published while the receiver was still away
            producer.send(requests, end_device_events("queued"), correlation_id="queued", properties=EVENT_PROPS)

            await until(lambda: len(receiver.journal) == 3, "the messages sent after the restart", timeout=30)
            producer.send(topic, end_device_events("after"), correlation_id="after", properties=EVENT_PROPS)
            await until(lambda: len(receiver.journal) == 4, "an event after the reconnect")
    assert [e["correlation_id"] for e in receiver.journal[:1]] == ["before"]
    assert sorted(e["correlation_id"] for e in receiver.journal[1:3]) == ["during", "queued"]
    assert receiver.journal[3]["correlation_id"] == "after"
    assert all(e["valid"] for e in receiver.journal)


def test_the_command_journals_jms_alone_and_beside_http(
        shared_broker: BrokerAddress, client: Callable[..., JmsConnection], tmp_path: Path) -> None:
    address = f"{shared_broker.host}:{shared_broker.stomp_port}"
    topic, requests = unique("topic", "hes.events.EndDeviceEvents"), unique("queue", "mdms.in")
    client_id = f"mdms-cli-{uuid.uuid4().hex[:8]}"
    producer = client()

    alone = tmp_path / "alone.jsonl"
    with running("mdms", "--jms", address, "--listen", topic, "--listen", requests, "--client-id", client_id,
                 "--no-http", "--journal", str(alone), "-v") as (where, proc):
        assert where == f"jms://{address}"
        producer.send(topic, end_device_events("cli-1", ack=None), correlation_id="cli-1", properties=EVENT_PROPS)
        wait_for(lambda: len(read_journal(alone)) == 1, WAIT_S, "the event in the journal")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "created EndDeviceEvents from topic://" in out and "stopped after 1 messages" in out
    (entry,) = read_journal(alone)
    assert (entry["transport"], entry["destination"], entry["correlation_id"], entry["valid"]) == \
        ("jms", topic, "cli-1", True)

    both = tmp_path / "both.jsonl"
    with running("mdms", "--port", "0", "--jms", address, "--listen", requests, "--client-id", client_id,
                 "--journal", str(both)) as (base, _proc):
        assert base.startswith("http://")
        producer.send(requests, end_device_events("over-jms", ack=None), correlation_id="over-jms",
                      properties=EVENT_PROPS)
        wait_for(lambda: len(read_journal(both)) == 1, WAIT_S, "the JMS message in the journal")
        request = urllib.request.Request(
            base + "/EndDeviceEvents", data=soap.wrap(end_device_events("over-soap"), "1.1"),
            headers={"Content-Type": soap.CONTENT_TYPE_SOAP11, "SOAPAction": f'"{EVENTS_ACTION}"'})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
    assert [(e["transport"], e["correlation_id"]) for e in read_journal(both)] == \
        [("jms", "over-jms"), ("soap", "over-soap")]

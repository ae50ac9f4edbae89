"""The MDMS receiver on JMS without a broker: entries, answers, acknowledgement order, CLI options.

A fake connection stands in for JmsConnection and calls the listener's handler from a thread of
its own, as stomp.py's receiver thread does. Real-broker tests are in tests/integration/test_mdms_jms.py.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from simulator.cim import schemas, soap
from simulator.cim.enddeviceevents import EventOut, build_end_device_events
from simulator.cim.messages import OutHeader, build_event, typed_root
from simulator.cim.ns import END_DEVICE_EVENTS_MSG, MSG
from simulator.mdms import MdmsOptions, MdmsReceiver, main, register
from simulator.mdms_jms import (
    ENVELOPE_ON_JMS,
    JmsListener,
    check_arguments,
    parse_address,
    read_jms_message,
    subscription_headers,
)
from simulator.transports.jms import JmsError, JmsMessage
from tests.integration.server import read_journal

EVENTS_ROOT = typed_root("Created", "EndDeviceEvents")
EVENTS_ACTION = "http://iec.ch/TC57/2011/EndDeviceEvents/CreatedEndDeviceEvents"
NSMAP = {"e": END_DEVICE_EVENTS_MSG, "msg": MSG}
# Fields the transport decides, not the message: everything else must match between SOAP and JMS.
HTTP_ONLY = "--fail-rate and --drop-rate apply to HTTP only"
TRANSPORT_FIELDS = {"received_at", "transport", "path", "soap_action", "bytes", "answered"}


def end_device_events(correlation: str = "evt-1", ack: bool | None = True, meters: int = 3) -> bytes:
    """A CreatedEndDeviceEvents as the head-end publishes it after an outage: power off, then restored."""
    events = [
        EventOut(mrid=f"ev-{i}-{kind}", created=f"2026-03-10T00:3{i}:0{n}Z", event_type=code,
                 meter_mrid=f"9f5a3c1e-2b7d-4e8a-9c41-5d2e7b0a6f{i:02d}", meter_name=f"SIM{i:08d}",
                 usage_point_mrid=f"up-{i}", issuer_id="HES-SIM", severity="critical" if n == 0 else "info",
                 details=(("Feeder", "FEEDER-07"),))
        for i in range(meters)
        for n, (kind, code) in enumerate((("off", "3.26.38.185"), ("on", "3.26.38.216")))
    ]
    header = OutHeader("created", "EndDeviceEvents", message_id=f"msg-{correlation}", correlation_id=correlation,
                       timestamp="2026-03-10T00:35:00Z", source="HES-SIM", ack_required=ack)
    return build_event(EVENTS_ROOT, header, build_end_device_events(events))


def jms(body: bytes, destination: str = "topic://hes.events.EndDeviceEvents", correlation: str | None = "evt-1",
        reply_to: str | None = None, properties: Mapping[str, str] | None = None, message_id: str = "ID:m-1",
        redelivered: bool = False) -> JmsMessage:
    props = {"Verb": "created", "Noun": "EndDeviceEvents"} if properties is None else dict(properties)
    return JmsMessage(body, destination, correlation, reply_to, props, message_id, redelivered)


# ------------------------------------------------------------------------------------- entries


async def test_a_jms_entry_has_the_soap_entry_fields_with_the_same_values_plus_the_jms_envelope() -> None:
    message = end_device_events()
    over_soap = MdmsReceiver()
    await over_soap.handle("/EndDeviceEvents", f'"{EVENTS_ACTION}"', soap.CONTENT_TYPE_SOAP11,
                           soap.wrap(message, "1.1"))
    over_jms = MdmsReceiver()
    entry, _ = read_jms_message(over_jms, jms(message, properties={"Verb": "created", "Noun": "EndDeviceEvents",
                                                                   "Extra": "x"}))
    (soap_entry,) = over_soap.journal
    assert soap_entry["transport"] == "soap"
    assert set(soap_entry) <= set(entry)
    assert {k: v for k, v in entry.items() if k in soap_entry and k not in TRANSPORT_FIELDS} == \
        {k: v for k, v in soap_entry.items() if k not in TRANSPORT_FIELDS}
    assert entry["events"] == 6 and entry["event_types"] == {"3.26.38.185": 3, "3.26.38.216": 3}
    assert entry["valid"] is True and entry["validation_errors"] == []
    assert entry | {
        "transport": "jms", "path": None, "soap_action": None, "bytes": len(message), "answered": "none",
        "destination": "topic://hes.events.EndDeviceEvents", "jms_message_id": "ID:m-1",
        "jms_correlation_id": "evt-1", "jms_reply_to": None, "jms_redelivered": False,
        "jms_properties": {"Extra": "x", "Noun": "EndDeviceEvents", "Verb": "created"}, "jms_mismatches": [],
    } == entry  # fmt: skip


def test_ack_required_with_a_reply_to_is_answered_there_with_0_3_and_the_correlation_id() -> None:
    receiver = MdmsReceiver(MdmsOptions(seed=2))
    entry, reply = read_jms_message(receiver, jms(end_device_events("evt-9"), correlation="evt-9",
                                                  reply_to="queue://hes.acks"))
    assert reply is not None and entry["answered"] == "ok"
    assert (reply.destination, reply.correlation_id) == ("queue://hes.acks", "evt-9")
    assert reply.properties == {"Verb": "reply", "Noun": "EndDeviceEvents"}
    root = etree.fromstring(reply.body)  # bare XML: no SOAP envelope on JMS
    assert root.tag == f"{{{END_DEVICE_EVENTS_MSG}}}EndDeviceEventsResponseMessage"
    assert schemas.validate(root, "EndDeviceEventsMessage") == []
    assert root.findtext("e:Header/msg:CorrelationID", namespaces=NSMAP) == "evt-9"
    assert root.xpath("e:Reply/msg:Error/msg:code/text()", namespaces=NSMAP) == ["0.3"]


@pytest.mark.parametrize(("ack", "reply_to"), [(True, None), (None, "queue://hes.acks"), (False, "queue://x")])
def test_without_both_ack_required_and_a_reply_to_nothing_is_sent(ack: bool | None, reply_to: str | None) -> None:
    entry, reply = read_jms_message(MdmsReceiver(), jms(end_device_events(ack=ack), reply_to=reply_to))
    assert reply is None and entry["answered"] == "none" and entry["valid"] is True


def test_a_schema_invalid_message_asking_for_an_ack_gets_a_1_8_fault_at_its_reply_to() -> None:
    bad = end_device_events().replace(b"<msg:Verb>created</msg:Verb>", b"<msg:Verb>made</msg:Verb>")
    entry, reply = read_jms_message(MdmsReceiver(), jms(bad, reply_to="queue://hes.acks"))
    assert entry["valid"] is False and entry["answered"] == "fault" and "made" in entry["validation_errors"][0]
    assert reply is not None and reply.correlation_id == "evt-1"
    root = etree.fromstring(reply.body)
    assert root.tag == f"{{{END_DEVICE_EVENTS_MSG}}}EndDeviceEventsFaultMessage"
    assert root.xpath("e:Reply/msg:Error/msg:code/text()", namespaces=NSMAP) == ["1.8"]


def test_an_unparseable_body_is_journaled_with_its_error() -> None:
    entry, reply = read_jms_message(MdmsReceiver(), jms(b"<CreatedEndDeviceEvents", reply_to="queue://x"))
    assert reply is None
    assert (entry["root"], entry["valid"], entry["answered"], entry["bytes"]) == (None, False, "none", 23)
    assert "well-formed" in entry["validation_errors"][0]
    assert entry["jms_mismatches"] == []  # nothing to compare the JMS headers with


def test_a_soap_envelope_on_jms_is_read_but_marked_invalid() -> None:
    entry, reply = read_jms_message(MdmsReceiver(), jms(soap.wrap(end_device_events(), "1.1"),
                                                        reply_to="queue://x"))
    assert (entry["noun"], entry["correlation_id"], entry["events"]) == ("EndDeviceEvents", "evt-1", 6)
    assert entry["valid"] is False and entry["validation_errors"] == [ENVELOPE_ON_JMS]
    assert entry["answered"] == "fault" and reply is not None


def test_jms_headers_that_contradict_the_61968_header_are_listed_without_changing_the_verdict() -> None:
    entry, _ = read_jms_message(MdmsReceiver(), jms(end_device_events(), correlation="other",
                                                    properties={"Verb": "created"}))
    assert entry["valid"] is True
    assert entry["jms_mismatches"] == [
        "JMSCorrelationID 'other' is not Header/CorrelationID 'evt-1'",
        "property Noun None is not Header/Noun 'EndDeviceEvents'",
    ]


def test_jms_and_soap_arrivals_share_one_counter_and_one_answer_id_stream() -> None:
    receiver = MdmsReceiver(MdmsOptions(seed=4))
    ids = []
    for n in range(3):
        _, reply = read_jms_message(receiver, jms(end_device_events(f"c{n}"), reply_to="queue://x"))
        assert reply is not None
        ids.append(etree.fromstring(reply.body).findtext("e:Header/msg:MessageID", namespaces=NSMAP))
    again = MdmsReceiver(MdmsOptions(seed=4))
    answer = again.acknowledge(read_jms_message(again, jms(end_device_events()))[0], None)
    assert receiver.received == 3 and len(set(ids)) == 3
    assert etree.fromstring(answer.body).findtext("e:Header/msg:MessageID", namespaces=NSMAP) == ids[0]


# ------------------------------------------------------------------------------------- the listener


class FakeConnection:
    """Records what the listener asks of a broker; delivers on a thread of its own like stomp.py."""

    def __init__(self) -> None:
        self.subscriptions: list[tuple[str, str, dict[str, str]]] = []
        self.handlers: dict[str, Callable[[JmsMessage], None]] = {}
        self.sent: list[tuple[str, bytes, str | None, dict[str, str]]] = []
        self.acked: list[str] = []
        self.send_error: Exception | None = None
        self.on_ack: Callable[[JmsMessage], None] | None = None
        self.closed = False
        self.drops = 0

    def subscribe(self, destination: str, handler: Callable[[JmsMessage], None], ack: str = "auto",
                  headers: Mapping[str, str] | None = None) -> str:
        self.subscriptions.append((destination, ack, dict(headers or {})))
        self.handlers[destination] = handler
        return f"sub-{len(self.subscriptions)}"

    def send(self, destination: str, body: bytes, correlation_id: str | None = None, reply_to: str | None = None,
             properties: Mapping[str, str] | None = None, persistent: bool = True) -> None:
        if self.send_error is not None:
            raise self.send_error
        self.sent.append((destination, body, correlation_id, dict(properties or {})))

    def ack(self, msg: JmsMessage) -> None:
        if self.on_ack is not None:
            self.on_ack(msg)
        self.acked.append(msg.message_id)

    def drop(self) -> None:
        self.drops += 1

    def close(self) -> None:
        self.closed = True

    def deliver(self, msg: JmsMessage) -> None:
        thread = threading.Thread(target=self.handlers[msg.destination], args=(msg,))
        thread.start()
        thread.join()


async def until(predicate: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def listening(conn: FakeConnection, receiver: MdmsReceiver | None = None,
                    destinations: tuple[str, ...] = ("topic://hes.events.EndDeviceEvents", "queue://mdms.replies"),
                    ) -> JmsListener:
    listener = JmsListener(receiver or MdmsReceiver(), conn, destinations, prefetch=25)
    await listener.start()
    return listener


async def test_topics_are_subscribed_durably_and_everything_with_individual_acks_and_a_bounded_prefetch() -> None:
    conn = FakeConnection()
    listener = await listening(conn, destinations=("topic://hes.events.EndDeviceEvents", "queue://mdms.replies",
                                                   "topic://hes.events.EndDeviceEvents"))
    await listener.close()
    assert conn.subscriptions == [
        ("topic://hes.events.EndDeviceEvents", "client-individual",
         {"activemq.prefetchSize": "25", "activemq.subscriptionName": "hes.events.EndDeviceEvents"}),
        ("queue://mdms.replies", "client-individual", {"activemq.prefetchSize": "25"}),
    ]
    assert conn.closed
    assert subscription_headers("queue://q") == {"activemq.prefetchSize": "100"}


async def test_a_message_is_acknowledged_only_once_its_line_is_in_the_journal_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    conn = FakeConnection()
    lines_at_ack: list[int] = []
    conn.on_ack = lambda msg: lines_at_ack.append(len(read_journal(path)))
    receiver = MdmsReceiver(MdmsOptions(journal_path=path))
    listener = await listening(conn, receiver)
    for n in range(3):
        conn.deliver(jms(end_device_events(f"e{n}"), correlation=f"e{n}", message_id=f"ID:{n}"))
    await until(lambda: len(conn.acked) == 3, "three acks")
    await listener.close()
    receiver.close()
    assert conn.acked == ["ID:0", "ID:1", "ID:2"]
    assert lines_at_ack[0] >= 1 and all(later >= n + 1 for n, later in enumerate(lines_at_ack))
    assert [e["correlation_id"] for e in read_journal(path)] == ["e0", "e1", "e2"]


async def test_the_acknowledgement_goes_to_the_reply_to_before_the_broker_ack_and_after_the_delay() -> None:
    conn = FakeConnection()
    receiver = MdmsReceiver(MdmsOptions(delay_s=0.2))
    listener = await listening(conn, receiver)
    sent_before_ack: list[int] = []
    conn.on_ack = lambda msg: sent_before_ack.append(len(conn.sent))
    started = time.monotonic()
    conn.deliver(jms(end_device_events(), reply_to="queue://hes.acks"))
    await until(lambda: receiver.journal, "the journal entry")
    assert conn.acked == [] and conn.sent == []  # journaled at once, answered after the delay
    await until(lambda: conn.acked, "the ack")
    assert time.monotonic() - started >= 0.2
    await listener.close()
    ((destination, body, correlation, properties),) = conn.sent
    assert (destination, correlation, properties["Noun"], sent_before_ack) == ("queue://hes.acks", "evt-1",
                                                                             "EndDeviceEvents", [1])
    assert b"<msg:code>0.3</msg:code>" in body


async def test_a_bad_body_is_journaled_and_acked_and_the_listener_goes_on() -> None:
    conn = FakeConnection()
    listener = await listening(conn)
    conn.deliver(jms(b"\xff\xfe not xml", message_id="ID:bad"))
    conn.deliver(jms(end_device_events(), message_id="ID:good"))
    await until(lambda: len(conn.acked) == 2, "both acks")
    await listener.close()
    assert conn.acked == ["ID:bad", "ID:good"]
    assert [e["valid"] for e in listener.receiver.journal] == [False, True]


async def test_a_reader_failure_is_journaled_and_acked_rather_than_stopping_the_listener(
        monkeypatch: pytest.MonkeyPatch) -> None:
    conn = FakeConnection()
    receiver = MdmsReceiver()
    listener = await listening(conn, receiver)
    real = receiver.examine

    def flaky(entry: dict[str, Any], body: bytes, content_type: str | None) -> Any:
        if b"boom" in body:
            raise RuntimeError("reader bug")
        return real(entry, body, content_type)

    monkeypatch.setattr(receiver, "examine", flaky)
    conn.deliver(jms(b"<boom/>", message_id="ID:1"))
    conn.deliver(jms(end_device_events(), message_id="ID:2"))
    await until(lambda: len(conn.acked) == 2, "both acks")
    await listener.close()
    assert receiver.journal[0]["validation_errors"] == ["receiver error: RuntimeError: reader bug"]
    assert receiver.journal[0]["destination"] == "topic://hes.events.EndDeviceEvents"
    assert receiver.journal[1]["valid"] is True


async def test_an_answer_the_broker_did_not_take_leaves_the_message_for_redelivery() -> None:
    conn = FakeConnection()
    listener = await listening(conn)
    conn.send_error = JmsError("no receipt")
    conn.deliver(jms(end_device_events(), reply_to="queue://hes.acks", message_id="ID:1"))
    await until(lambda: listener.receiver.journal, "the entry")
    await listener.close()  # waits for the message in hand
    assert conn.acked == [] and conn.drops == 1  # the broker redelivers it once the connection is back
    assert listener.receiver.journal[0]["answered"] == "ok"


async def test_an_unaddressable_reply_to_does_not_hold_the_message() -> None:
    conn = FakeConnection()
    listener = await listening(conn)
    conn.send_error = ValueError("JMS destination must be queue://NAME or topic://NAME, not 'nowhere'")
    conn.deliver(jms(end_device_events(), reply_to="nowhere", message_id="ID:1"))
    await until(lambda: conn.acked, "the ack")
    await listener.close()
    assert conn.acked == ["ID:1"]


async def test_after_close_messages_are_neither_journaled_nor_acked() -> None:
    conn = FakeConnection()
    listener = await listening(conn)
    await listener.close()
    conn.deliver(jms(end_device_events()))
    await asyncio.sleep(0.05)
    assert listener.receiver.journal == [] and conn.acked == []


def test_the_listener_refuses_destinations_it_cannot_consume() -> None:
    for bad in ("mdms.replies", "temp-queue://x", "queue://"):
        with pytest.raises(ValueError, match="queue://NAME or topic://NAME"):
            JmsListener(MdmsReceiver(), FakeConnection(), [bad])


# ------------------------------------------------------------------------------------- command line


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hes-sim")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["mdms", *argv])


def test_the_jms_options_parse_with_stable_defaults() -> None:
    args = parse("--jms", "broker:61614", "--listen", "queue://mdms.replies", "--listen",
                 "topic://hes.events.EndDeviceEvents", "--no-http")
    assert (args.jms, args.listen, args.client_id, args.prefetch, args.no_http) == (
        "broker:61614", ["queue://mdms.replies", "topic://hes.events.EndDeviceEvents"], "hes-sim-mdms", 100, True)
    assert check_arguments(args) is None
    assert check_arguments(parse()) is None  # HTTP only, as before


@pytest.mark.parametrize(("argv", "message"), [
    (["--listen", "queue://a"], "--listen needs --jms"),
    (["--no-http"], "--no-http needs --jms"),
    (["--jms", "127.0.0.1:61613"], "--jms needs at least one --listen"),
    (["--jms", "127.0.0.1:0", "--listen", "queue://a"], "--jms 127.0.0.1:0: expected HOST:PORT"),
    (["--jms", "127.0.0.1:61613", "--listen", "mdms.replies"], "--listen mdms.replies: expected queue://NAME"),
    (["--jms", "h", "--listen", "queue://a", "--client-id", ""], "--client-id must not be empty"),
    (["--jms", "h", "--listen", "queue://a", "--prefetch", "0"], "--prefetch must be at least 1"),
    (["--jms", "h", "--listen", "queue://a", "--no-http", "--fail-rate", "0.1"], HTTP_ONLY),
    (["--jms", "h", "--listen", "queue://a", "--no-http", "--drop-rate", "0.1"], HTTP_ONLY),
])
def test_bad_jms_options_are_one_line_errors(argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hes-sim: error: {message}") and err.count("\n") == 1


def test_rates_are_allowed_beside_http() -> None:
    args = parse("--jms", "h", "--listen", "queue://a", "--fail-rate", "0.1", "--drop-rate", "0.2")
    assert check_arguments(args) is None


@pytest.mark.parametrize(("text", "address"), [
    ("127.0.0.1:61614", ("127.0.0.1", 61614)), ("broker", ("broker", 61613)), ("[::1]:61615", ("::1", 61615)),
    ("[::1]", ("::1", 61613)),
])
def test_broker_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["", "h:x", "h:70000", "::1:61613", "h:1:2"])
def test_bad_broker_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        parse_address(text)

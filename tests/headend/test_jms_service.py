"""The head-end's JMS service without a broker: what goes to the outbox, and what is dead-lettered.

The simulator is not started (no live driver): each request drives the sim clock itself, and the
outbox is a list, so every answer a JMS requester would get can be inspected as a document.
"""

from __future__ import annotations

import asyncio

import pytest
from lxml import etree

from simulator.app import Simulator
from simulator.errors import ScenarioError
from simulator.headend.jmsservice import jms_headers
from simulator.headend.outbound import MemoryOutbound
from simulator.ports import Disposition, QueuedRequest
from simulator.scenario import scenario_from_mapping
from tests.conformance.refschemas import assert_valid_both
from tests.conftest import make_sim

from .requests import control, controls_request, generic_get, get_profile, typed_get

MSG = "{http://iec.ch/TC57/2011/schema/message}"
REG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
DAY = ("2025-09-01T00:00:00Z", "2025-09-02T00:00:00Z")
REPLIES = "queue://mdms.replies"


def jms_sim(**sections: dict) -> tuple[Simulator, MemoryOutbound]:
    sections["jms"] = {"enabled": True, **sections.get("jms", {})}
    sim = make_sim(meters=100, **sections)
    out = MemoryOutbound()
    sim.headend.outbound = out
    return sim, out


def request(body: bytes | str, reply_to: str | None = REPLIES, correlation_id: str | None = None,
            **properties: str) -> QueuedRequest:
    return QueuedRequest(body=body.encode() if isinstance(body, str) else body, destination="queue://hes.requests",
                         reply_to=reply_to, correlation_id=correlation_id, message_id="ID:broker-1:1",
                         properties=properties)


def serve(sim: Simulator, req: QueuedRequest) -> Disposition:
    return asyncio.run(sim.jms.handle_message(req))


def answer(body: bytes) -> tuple[str, str | None, list[str], str | None]:
    root = etree.fromstring(body)
    reply = root.find("{*}Reply")
    return (etree.QName(root).localname, reply.findtext(f"{MSG}Result"),
            [e.findtext(f"{MSG}code") for e in reply.findall(f"{MSG}Error")],
            root.findtext(f"{{*}}Header/{MSG}CorrelationID"))


def meters_of(sim: Simulator, group: str) -> list[str]:
    return list(sim.fleet.mrids(sim.fleet.group_members(sim.fleet.group_by_name(group))))


def test_a_sync_read_is_answered_to_reply_to_with_the_soap_document() -> None:
    sim, out = jms_sim()
    profile = get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY)
    assert serve(sim, request(typed_get(profile, correlation_id="c-1"))) == Disposition()
    [part] = out.parts
    assert part.destination == REPLIES and part.correlation_id == "c-1"
    assert answer(part.body) == ("MeterReadingsResponseMessage", "OK", [], "c-1")
    assert_valid_both(part.body, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    # The same request through the SOAP service gives the same document but for its Header.
    soap_sim = make_sim(meters=100)
    soap_answer = asyncio.run(soap_sim.soap.handle(
        "GetMeterReadings", None, "text/xml", b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'>"
        b"<s:Body>" + typed_get(profile, correlation_id="c-1").encode() + b"</s:Body></s:Envelope>"))
    soap_doc = etree.fromstring(soap_answer.body).find("{*}Body")[0]
    jms_doc = etree.fromstring(part.body)
    for doc in (soap_doc, jms_doc):
        doc.remove(doc.find("{*}Header"))
    assert etree.tostring(jms_doc, method="c14n", exclusive=True) == etree.tostring(
        soap_doc, method="c14n", exclusive=True)


def test_jms_correlation_and_reply_to_stand_in_for_missing_header_fields() -> None:
    sim, out = jms_sim()
    profile = get_profile(groups=["FEEDER-02"], reading_types=[REG], period=DAY)
    body = generic_get(profile).replace("<msg:CorrelationID>corr-g</msg:CorrelationID>", "")
    serve(sim, request(body, correlation_id="jms-corr"))
    assert answer(out.parts[0].body)[3] == "jms-corr"
    out.parts.clear()
    serve(sim, request(body))  # neither: the JMS message ID, as JMS request/reply does
    assert answer(out.parts[0].body)[3] == "ID:broker-1:1"


def test_an_async_read_acceptance_leaves_before_its_parts_on_the_same_correlation() -> None:
    sim, out = jms_sim(replies={"part_size": 10})
    profile = get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY)
    serve(sim, request(typed_get(profile, correlation_id="c-a", reply_address="queue://results")))
    sim.env.run(until=sim.env.now + 600)
    first, *parts = out.parts
    assert first.destination == REPLIES and answer(first.body)[1] == "OK"
    assert {p.destination for p in parts} == {"queue://results"}
    assert len(parts) == -(-len(meters_of(sim, "FEEDER-01")) // 10)
    assert {p.correlation_id for p in out.parts} == {"c-a"}


def test_controls_send_their_events_to_jms_reply_to_when_the_header_names_no_reply_address() -> None:
    sim, out = jms_sim()
    meters = meters_of(sim, "FEEDER-03")[:2]
    serve(sim, request(controls_request("Create", [control("3.31.0.23", meters=meters)], correlation_id="c-c")))
    sim.env.run(until=sim.env.now + 600)
    roots = [answer(p.body)[0] if b"Reply" in p.body else etree.QName(etree.fromstring(p.body)).localname
             for p in out.parts]
    assert roots[0] == "EndDeviceControlsResponseMessage" and "CreatedEndDeviceEvents" in roots
    assert {p.destination for p in out.parts} == {REPLIES}


@pytest.mark.parametrize(("body", "code"), [
    (b"\xff\xfe not xml", "1.8"),
    (generic_get(get_profile(groups=["FEEDER-01"]), noun="Bananas"), "2.5"),
    (generic_get(get_profile(groups=["FEEDER-01"]), verb="delete"), "2.9"),
    (typed_get(get_profile(groups=["NO-SUCH-GROUP"], reading_types=[REG], period=DAY)), None),
])
def test_bad_requests_are_answered_failed_with_their_code(body: bytes | str, code: str | None) -> None:
    sim, out = jms_sim()
    assert serve(sim, request(body, correlation_id="c-bad", Noun="MeterReadings")) == Disposition()
    [part] = out.parts
    root, result, codes, correlation = answer(part.body)
    assert result == "FAILED" and correlation in ("c-bad", "corr-1", "corr-g")
    if code is not None:
        assert codes == [code] and root == "ResponseMessage"
        assert_valid_both(part.body, "Message", "Message")  # ours and the public 61968-100 Message.xsd
    else:
        assert root == "MeterReadingsResponseMessage"
        assert_valid_both(part.body, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    assert jms_headers(part.body).properties["Verb"] == "reply"


def test_requests_with_nowhere_to_answer_are_dead_lettered_with_the_reason() -> None:
    sim, out = jms_sim()
    profile = get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY)
    assert serve(sim, request(b"junk", reply_to=None)).dead_letter.startswith("1.8 ")
    assert serve(sim, request(generic_get(profile, verb="delete"), reply_to=None)).dead_letter.startswith("2.9 ")
    assert "nowhere to answer" in serve(sim, request(typed_get(profile), reply_to=None)).dead_letter
    # An http ReplyAddress is not a JMS destination for the answer itself.
    assert serve(sim, request(typed_get(profile, reply_address="http://mdms/x"), reply_to=None)).dead_letter
    assert out.parts == []


@pytest.mark.parametrize(("fault", "expected"), [("connection_reset", None), ("http_500", "5.3")])
def test_transport_reply_faults_map_onto_jms(fault: str, expected: str | None) -> None:
    sim, out = jms_sim(replies={"faults": {fault: {"probability": 1.0}}})
    serve(sim, request(typed_get(get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY))))
    if expected is None:
        assert out.parts == []  # as a dropped connection: no answer at all
    else:
        assert answer(out.parts[0].body)[1:3] == ("FAILED", [expected])


def test_outbound_messages_carry_correlation_and_verb_noun_from_their_header() -> None:
    sim, out = jms_sim()
    serve(sim, request(typed_get(get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY),
                                 correlation_id="c-h")))
    headers = jms_headers(out.parts[0].body)
    assert headers.correlation_id == "c-h" and dict(headers.properties) == {"Verb": "reply", "Noun": "MeterReadings"}
    assert jms_headers(b"not xml").properties == {}


def test_jms_destinations_need_jms_enabled() -> None:
    for key, value in (("destinations", {"events": ["topic://x"]}), ("replies", {"events_address": "queue://y"})):
        raw = {"name": "t", "fleet": {"meters": 10}, key: value}
        with pytest.raises(ScenarioError) as err:
            Simulator(scenario_from_mapping(raw, "s.yaml"), source="s.yaml")
        assert "jms.enabled" in str(err.value) and key in str(err.value)


def test_event_topics_per_noun_are_added_when_jms_is_on() -> None:
    sim, _ = jms_sim(destinations={"events": ["http://mdms/events"]})
    assert sim.event_sender.destinations == ("http://mdms/events", "topic://hes.events.EndDeviceEvents")
    assert sim.pushes.destinations == ("topic://hes.events.MeterReadings",)
    off, _ = jms_sim(jms={"event_topic": ""})
    assert off.event_sender.destinations == ()

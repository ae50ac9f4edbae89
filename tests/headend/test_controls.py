"""EndDeviceControls, consequential events, cancel, ping and GetEndDeviceEvents, in fast mode."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
from lxml import etree

from simulator.app import Simulator
from simulator.headend.ping import PING_READING_TYPE
from simulator.model.relay import ARMED, CONNECTED, DISCONNECTED
from simulator.timeutil import parse_datetime
from tests.conformance.refschemas import assert_valid_both
from tests.conftest import PERFECT_COMMS, make_sim

from .requests import control, controls_request, get_events, get_profile, soap, typed_get
from .test_reply_patterns import TimedOutbound

MSG = "{http://iec.ch/TC57/2011/schema/message}"
EV = "{http://iec.ch/TC57/2011/EndDeviceEvents#}"
MR = "{http://iec.ch/TC57/2011/MeterReadings#}"
MDMS = "http://127.0.0.1:9/mdms"
KWH_15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
VOLT = "0.0.0.6.0.1.54.0.0.0.0.0.0.0.128.0.29.0"
NO_FAILURES = {"failure_probability": 0.0}


def new_sim(meters: int = 1000, **sections: dict) -> tuple[Simulator, TimedOutbound]:
    sections.setdefault("relay", dict(NO_FAILURES))
    sim = make_sim(meters=meters, **sections)
    out = TimedOutbound(sim)
    sim.headend.outbound = out
    return sim, out


def call(sim: Simulator, service: str, body: str) -> tuple[int, etree._Element]:
    answer = asyncio.run(sim.soap.handle(service, None, "text/xml", soap(body)))
    return answer.status, etree.fromstring(answer.body).find("{*}Body")[0]


def reply(root: etree._Element) -> tuple[str, list[str]]:
    r = root.find("{*}Reply")
    return r.findtext(f"{MSG}Result"), [e.findtext(f"{MSG}code") for e in r.findall(f"{MSG}Error")]


def events_in(out: TimedOutbound) -> list[etree._Element]:
    """Every EndDeviceEvent we sent, in order, each part validated against ours and the reference."""
    found = []
    for _, part in out.sent:
        root = etree.fromstring(part.body)
        if root.tag.endswith("CreatedEndDeviceEvents"):
            assert_valid_both(root, "EndDeviceEventsMessage", "EndDeviceEventsMessage")
            found += root.findall(f".//{EV}EndDeviceEvent")
    return found


def finals(out: TimedOutbound) -> list[etree._Element]:
    roots = [etree.fromstring(p.body) for _, p in out.sent]
    result = [r for r in roots if r.tag.endswith("EndDeviceControlsResponseMessage")]
    for r in result:
        assert_valid_both(r, "EndDeviceControlsMessage", "EndDeviceControlsMessage")
    return result


def feeder(sim: Simulator, name: str = "FEEDER-01") -> np.ndarray:
    return sim.fleet.group_members(sim.fleet.group_by_name(name))


def test_disconnect_and_reconnect_a_group_of_100_meters() -> None:
    sim, out = new_sim()
    members = feeder(sim)
    assert len(members) == 100
    status, root = call(sim, "ExecuteEndDeviceControls",
                        controls_request("Create", [control("3.31.0.23", groups=["FEEDER-01"], tracking="T-1")],
                                         reply_address=MDMS))
    assert status == 200
    assert_valid_both(root, "EndDeviceControlsMessage", "EndDeviceControlsMessage")
    assert reply(root) == ("OK", [])
    transaction = root.findtext(f"{{*}}Reply/{MSG}ID")
    assert transaction
    sim.env.run(until=3600)
    evs = events_in(out)
    assert len(evs) == 100
    assert {e.find(f"{EV}EndDeviceEventType").get("ref") for e in evs} == {"3.31.0.68"}
    assert sorted(e.findtext(f"{EV}Assets/{EV}mRID") for e in evs) == sorted(sim.fleet.mrids(members))
    assert {e.findtext(f"{EV}issuerTrackingID") for e in evs} == {"T-1"}
    (final,) = finals(out)
    assert reply(final) == ("OK", []) and final.findtext(f"{{*}}Header/{MSG}CorrelationID") == "ctl-1"
    assert np.all(sim.relay.state[members] == DISCONNECTED)
    # Readings while disconnected: zero energy, zero load-side voltage.
    off_at = min(parse_datetime(e.findtext(f"{EV}createdDateTime")) for e in evs)
    t0 = (off_at // 900 + 1) * 900
    span = (t0, t0 + 2 * 900)  # both intervals end before "now" (one hour in)
    _, r = call(sim, "GetMeterReadings", typed_get(get_profile(meters=[sim.fleet.mrid(int(members[0]))],
                                                               reading_types=[KWH_15],
                                                               period=tuple(_iso(t) for t in span))))
    assert [Decimal(v.text) for v in r.iterfind(f".//{MR}IntervalReadings/{MR}value")] == [0, 0]
    _, r = call(sim, "GetMeterReadings", typed_get(get_profile(meters=[sim.fleet.mrid(int(members[1]))],
                                                               reading_types=[VOLT])))
    assert Decimal(r.findtext(f".//{MR}Readings/{MR}value")) == 0
    # Reconnect: connected events and energy again.
    call(sim, "ExecuteEndDeviceControls", controls_request("Create", [control("3.31.0.18", groups=["FEEDER-01"])],
                                                           reply_address=MDMS, correlation_id="ctl-2"))
    sim.env.run(until=7200)
    again = [e for e in events_in(out) if e.find(f"{EV}EndDeviceEventType").get("ref") == "3.31.0.42"]
    assert len(again) == 100 and np.all(sim.relay.state[members] == CONNECTED)
    later = (sim.clock.now_unix() // 900 + 1) * 900
    sim.env.run(until=sim.clock.to_sim(later + 8 * 900) + 1)
    _, r = call(sim, "GetMeterReadings", typed_get(get_profile(meters=[sim.fleet.mrid(int(members[0]))],
                                                               reading_types=[KWH_15],
                                                               period=(_iso(later), _iso(later + 8 * 900)))))
    assert sum(Decimal(v.text) for v in r.iterfind(f".//{MR}IntervalReadings/{MR}value")) > 0


def _iso(t: int) -> str:
    from simulator.timeutil import format_datetime
    return format_datetime(t)


def test_relay_failures_are_reported_as_disconnect_failed() -> None:
    sim, out = new_sim(relay={"failure_probability": 0.0, "failure_groups": ["FEEDER-02"]})
    call(sim, "ExecuteEndDeviceControls",
         controls_request("Create", [control("3.31.0.23", groups=["FEEDER-01", "FEEDER-02"])], reply_address=MDMS))
    sim.env.run(until=3600)
    kinds = [e.find(f"{EV}EndDeviceEventType").get("ref") for e in events_in(out)]
    assert kinds.count("3.31.0.68") == 100 and kinds.count("3.31.0.84") == 100
    (final,) = finals(out)
    result, codes = reply(final)
    assert result == "PARTIAL" and codes.count("5.3") == 100
    assert np.all(sim.relay.state[feeder(sim, "FEEDER-02")] == CONNECTED)


def test_scheduled_disconnect_cancelled_in_time_and_too_late() -> None:
    sim, _ = new_sim(meters=200)
    later = _iso(sim.clock.now_unix() + 3600)
    call(sim, "ExecuteEndDeviceControls", controls_request(
        "Create", [control("3.31.0.23", groups=["FEEDER-01"], tracking="LATER", start=later)], reply_address=MDMS))
    _, root2 = call(sim, "ExecuteEndDeviceControls", controls_request(
        "Create", [control("3.31.0.23", groups=["FEEDER-02"], tracking="NOW")], reply_address=MDMS))
    sim.env.run(until=600)
    assert np.all(sim.relay.state[feeder(sim, "FEEDER-02")] == DISCONNECTED)
    # In time, by issuerTrackingID in the payload:
    _, c1 = call(sim, "ExecuteEndDeviceControls", controls_request(
        "Cancel", ['<c:EndDeviceControl><c:issuerTrackingID>LATER</c:issuerTrackingID>'
                   '<c:EndDeviceControlType ref="3.31.0.23"/></c:EndDeviceControl>']))
    assert_valid_both(c1, "EndDeviceControlsMessage", "EndDeviceControlsMessage")
    assert reply(c1) == ("OK", [])
    # Too late, by transaction ID in Request/ID:
    done = root2.findtext(f"{{*}}Reply/{MSG}ID")
    _, c2 = call(sim, "ExecuteEndDeviceControls", controls_request("Cancel", [], request_ids=[done]))
    result, codes = reply(c2)
    assert result == "FAILED" and codes == ["5.2"]
    assert "20 of 20 meters acted" in c2.findtext(f".//{MSG}reason")
    sim.env.run(until=7200)
    assert np.all(sim.relay.state[feeder(sim, "FEEDER-01")] == CONNECTED)  # never ran
    _, unknown = call(sim, "ExecuteEndDeviceControls", controls_request("Cancel", [], request_ids=["nope"]))
    assert reply(unknown) == ("FAILED", ["2.15"])


def test_unknown_control_type_is_a_per_item_error_not_a_fault() -> None:
    sim, _ = new_sim(meters=100)
    status, root = call(sim, "ExecuteEndDeviceControls", controls_request(
        "Create", [control("3.99.0.1", meters=[sim.fleet.mrid(0)]), control("0.31.0.23", meters=[sim.fleet.mrid(1)])],
        reply_address=MDMS))
    assert status == 200
    result, codes = reply(root)
    assert result == "PARTIAL" and codes == ["5.2"]  # the 0.31.0.23 one (any type digit) was accepted


def test_arm_then_the_customer_closes() -> None:
    sim, out = new_sim(meters=100, relay={"failure_probability": 0.0, "customer_closes_probability": 1.0,
                                         "customer_delay_median_s": 600})
    m = [sim.fleet.mrid(i) for i in range(3)]
    call(sim, "ExecuteEndDeviceControls",
         controls_request("Create", [control("3.31.0.23", meters=m)], reply_address=MDMS))
    sim.env.run(until=60)
    call(sim, "ExecuteEndDeviceControls",
         controls_request("Create", [control("3.31.0.5", meters=m)], reply_address=MDMS))
    sim.env.run(until=120)
    assert np.all(sim.relay.state[:3] == ARMED)
    sim.env.run(until=86_400)
    kinds = [e.find(f"{EV}EndDeviceEventType").get("ref") for e in events_in(out)]
    assert kinds == ["3.31.0.68"] * 3 + ["3.31.0.11"] * 3 + ["3.31.0.42"] * 3
    assert np.all(sim.relay.state[:3] == CONNECTED)


def test_ping_with_5_percent_unreachable_reports_exactly_those() -> None:
    comms = dict(PERFECT_COMMS, cohorts=[{"name": "down", "mode": "unreachable", "fraction": 0.05}],
                 attempt_timeout_s=60)
    sim, out = new_sim(meters=1000, comms=comms)
    dead = set(sim.fleet.mrids(sim.comms.cohort_members(sim.comms.cohorts[0])))
    assert 20 <= len(dead) <= 80
    status, root = call(sim, "GetMeterReadings", typed_get(
        get_profile(groups=[f"FEEDER-{k:02d}" for k in range(1, 11)], reading_types=[PING_READING_TYPE]),
        reply_address=MDMS))
    assert status == 200 and reply(root)[0] == "OK"
    sim.env.run()
    results, final = (etree.fromstring(p.body) for _, p in out.sent)
    for r in (results, final):
        assert_valid_both(r, "MeterReadingsMessage", "MeterReadingsMessage")
    answered = [m.findtext(f"{MR}Meter/{MR}mRID") for m in results.iterfind(f".//{MR}MeterReading")]
    rtts = [Decimal(v.text) for v in results.iterfind(f".//{MR}Readings/{MR}value")]
    assert len(answered) == 1000 - len(dead) and not set(answered) & dead and set(rtts) == {Decimal("1.000")}
    assert reply(results) == ("PARTIAL", ["0.1"])
    result, codes = reply(final)
    unreachable = {i.text for i in final.iterfind(f"{{*}}Reply/{MSG}Error/{MSG}ID")}
    assert result == "PARTIAL" and unreachable == dead and set(codes) == {"0.2", "4.1"}


def test_ping_as_a_control_uses_the_configured_code() -> None:
    sim, out = new_sim(meters=100, headend={"ping_control_type": "3.1.0.0"})
    _, root = call(sim, "ExecuteEndDeviceControls", controls_request(
        "Create", [control("0.1.0.0", meters=[sim.fleet.mrid(4)])], reply_address=MDMS))
    assert reply(root)[0] == "OK"
    sim.env.run()
    assert [etree.fromstring(p.body).findtext(f"{{*}}Header/{MSG}Property/{MSG}Value") for _, p in out.sent] == \
        ["1/2", "2/2"]


def test_get_end_device_events_returns_what_happened() -> None:
    sim, out = new_sim(meters=100)
    m = sim.fleet.mrid(7)
    call(sim, "ExecuteEndDeviceControls", controls_request("Create", [control("3.31.0.23", meters=[m])]))
    call(sim, "ExecuteEndDeviceControls", controls_request("Create", [control("3.8.0.214", meters=[m])]))
    sim.env.run(until=600)
    assert out.sent == []  # no ReplyAddress and no events_address: events are only kept
    status, root = call(sim, "GetEndDeviceEvents", get_events(meters=[m]))
    assert status == 200
    assert_valid_both(root, "GetEndDeviceEventsMessage", "GetEndDeviceEventsMessage")
    kinds = [e.find(f"{EV}EndDeviceEventType").get("ref") for e in root.iterfind(f".//{EV}EndDeviceEvent")]
    assert sorted(kinds) == ["3.31.0.68", "3.8.0.214"]
    _, only = call(sim, "GetEndDeviceEvents", get_events(meters=[m], types=["0.8.0.214"]))
    assert [e.find(f"{EV}EndDeviceEventType").get("ref") for e in only.iterfind(f".//{EV}EndDeviceEvent")] == \
        ["3.8.0.214"]
    _, none = call(sim, "GetEndDeviceEvents", get_events(meters=[sim.fleet.mrid(8)]))
    assert reply(none) == ("OK", []) and none.find(f".//{EV}EndDeviceEvent") is None


def test_generic_endpoint_and_created_style_for_controls() -> None:
    sim, out = new_sim(meters=100, replies={"style": "created"})
    body = ('<msg:RequestMessage xmlns:msg="http://iec.ch/TC57/2011/schema/message">'
            "<msg:Header><msg:Verb>create</msg:Verb><msg:Noun>EndDeviceControls</msg:Noun>"
            f"<msg:AsyncReplyFlag>true</msg:AsyncReplyFlag><msg:ReplyAddress>{MDMS}</msg:ReplyAddress>"
            "<msg:CorrelationID>gen-1</msg:CorrelationID></msg:Header><msg:Payload>"
            '<c:EndDeviceControls xmlns:c="http://iec.ch/TC57/2011/EndDeviceControls#">'
            + control("3.31.0.23", meters=[sim.fleet.mrid(2)])
            + "</c:EndDeviceControls></msg:Payload></msg:RequestMessage>")
    status, root = call(sim, "Message", body)
    assert status == 200 and root.tag == f"{MSG}ResponseMessage" and reply(root)[0] == "OK"
    sim.env.run(until=600)
    roots = [etree.fromstring(p.body) for _, p in out.sent]
    assert [etree.QName(r).localname for r in roots] == ["CreatedEndDeviceEvents", "CreatedEndDeviceControls",
                                                         "EndDeviceControlsResponseMessage"]
    for r in roots:
        assert_valid_both(r, etree.QName(r).namespace.rsplit("/", 1)[1], etree.QName(r).namespace.rsplit("/", 1)[1])
    assert {r.findtext(f"{{*}}Header/{MSG}CorrelationID") for r in roots} == {"gen-1"}

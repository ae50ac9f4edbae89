"""Reply patterns in fast mode: sync timeouts, async parts, per-meter failures, faults, capacity."""

from __future__ import annotations

import asyncio

import pytest
from lxml import etree

from simulator.app import Simulator
from simulator.headend.readjob import OutboundPart
from tests.conformance.refschemas import assert_valid_both
from tests.conftest import PERFECT_COMMS, make_sim

from .requests import get_profile, soap, typed_get

MSG = "{http://iec.ch/TC57/2011/schema/message}"
MRM = "{http://iec.ch/TC57/2011/MeterReadingsMessage}"
MR = "{http://iec.ch/TC57/2011/MeterReadings#}"
REG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
MDMS = "http://127.0.0.1:9/mdms/ReplyMeterReadings"


class TimedOutbound:
    """An outbound that records the sim time each message was handed over."""

    def __init__(self, sim: Simulator, backlog: int = 0) -> None:
        self.sim = sim
        self.sent: list[tuple[float, OutboundPart]] = []
        self._backlog = backlog

    def put_parts(self, parts: list[OutboundPart]) -> None:
        self.sent.extend((self.sim.env.now, p) for p in parts)

    def backlog(self) -> int:
        return self._backlog


def sim_with(meters: int = 200, comms: dict | None = None, **sections: dict) -> tuple[Simulator, TimedOutbound]:
    sim = make_sim(meters=meters, comms=comms or dict(PERFECT_COMMS), **sections)
    out = TimedOutbound(sim)
    sim.headend.outbound = out
    return sim, out


def call(sim: Simulator, body: bytes) -> tuple[int, etree._Element | bytes]:
    answer = asyncio.run(sim.soap.handle("GetMeterReadings", None, "text/xml; charset=utf-8", body))
    try:
        return answer.status, etree.fromstring(answer.body).find("{*}Body")[0]
    except etree.XMLSyntaxError:
        return answer.status, answer.body


def reply(root: etree._Element) -> tuple[str, list[str]]:
    r = root.find("{*}Reply")
    return r.findtext(f"{MSG}Result"), [e.findtext(f"{MSG}code") for e in r.findall(f"{MSG}Error")]


def part_info(part: OutboundPart) -> tuple[etree._Element, str, list[str]]:
    root = etree.fromstring(part.body)
    index = root.findtext(f"{{*}}Header/{MSG}Property[{MSG}Name='MessageIndex']/{MSG}Value")
    meters = [m.findtext(f"{MR}Meter/{MR}mRID") for m in root.iterfind(f".//{MR}MeterReading")]
    return root, index, meters


def test_sync_timeout_reports_unfinished_meters_with_4_1() -> None:
    slow = {"classes": {"slow": {"latency": {"kind": "fixed", "value_s": 100.0}, "success": 1.0, "retries": 0}}}
    sim, _ = sim_with(comms=slow, headend={"sync_timeout_s": 30.0})
    status, root = call(sim, soap(typed_get(get_profile(groups=["FEEDER-01"], reading_types=[REG]))))
    assert status == 200
    result, codes = reply(root)
    assert result == "FAILED" and codes == ["4.1"] * 20  # FEEDER-01 of a 200-meter fleet has 20 meters
    assert sim.env.now == pytest.approx(30.0)


def test_sync_partial_when_a_slow_cohort_misses_the_timeout() -> None:
    comms = dict(PERFECT_COMMS, cohorts=[{"mode": "slow", "group": "COLLECTOR-0001", "factor": 100}])
    sim, _ = sim_with(meters=600, comms=comms, fleet={"meters": 600, "meters_per_collector": 300},
                      headend={"sync_timeout_s": 30.0})
    # FEEDER-01 (60 meters) lies inside collector 1 (meters 0-299): all slow. Ask for it and FEEDER-10.
    _, root = call(sim, soap(typed_get(get_profile(groups=["FEEDER-01", "FEEDER-10"], reading_types=[REG]))))
    assert_valid_both(root, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    result, codes = reply(root)
    slow = set(sim.fleet.mrids(sim.fleet.group_members(sim.fleet.group_by_name("COLLECTOR-0001"))))
    feeder = sim.fleet.mrids(sim.fleet.group_members(sim.fleet.group_by_name("FEEDER-01")))
    late = [i.text for i in root.iterfind(f"{{*}}Reply/{MSG}Error/{MSG}ID")]
    assert result == "PARTIAL" and set(codes) == {"4.1"}
    assert sorted(late) == sorted(m for m in feeder if m in slow) and len(late) == 60
    got = [m.findtext(f"{MR}Meter/{MR}mRID") for m in root.iterfind(f".//{MR}MeterReading")]
    assert len(got) == 60 and not set(got) & slow


def test_async_5000_meters_in_parts_of_1000() -> None:
    sim, out = sim_with(meters=5000, replies={"part_size": 1000}, fleet={"meters": 5000, "feeders": 1})
    status, root = call(sim, soap(typed_get(get_profile(groups=["FEEDER-01"], reading_types=[REG]),
                                            reply_address=MDMS, correlation_id="big-1")))
    assert status == 200
    assert_valid_both(root, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    assert reply(root) == ("OK", [])
    ident = root.find(f"{{*}}Reply/{MSG}ID")
    assert ident.get("kind") == "transaction" and ident.text
    assert root.find("{*}Payload") is None
    assert out.sent == []  # nothing before the meters answer
    sim.env.run()
    parts = [p for _, p in out.sent]
    assert len(parts) == 5
    seen: list[str] = []
    for k, part in enumerate(parts, start=1):
        assert part.destination == MDMS and part.correlation_id == "big-1"
        root, index, meters = part_info(part)
        assert_valid_both(root, "MeterReadingsMessage", "MeterReadingsMessage")
        assert root.tag == f"{MRM}MeterReadingsResponseMessage"
        assert index == f"{k}/5"
        assert root.findtext(f"{{*}}Header/{MSG}CorrelationID") == "big-1"
        assert reply(root) == (("PARTIAL", ["0.1"]) if k < 5 else ("OK", ["0.0"]))
        assert len(meters) == 1000
        seen += meters
    assert sorted(seen) == sorted(sim.fleet.mrids(sim.fleet.group_members(sim.fleet.group_by_name("FEEDER-01"))))


def test_async_partial_failure_carries_per_meter_errors_and_the_final_outcome() -> None:
    comms = dict(PERFECT_COMMS, cohorts=[{"mode": "unreachable", "group": "FEEDER-02"}], attempt_timeout_s=50)
    sim, out = sim_with(comms=comms, replies={"part_size": 15})
    call(sim, soap(typed_get(get_profile(groups=["FEEDER-01", "FEEDER-02"], reading_types=[REG]),
                             reply_address=MDMS)))
    sim.env.run()
    parts = [part_info(p) for _, p in out.sent]
    assert [i for _, i, _ in parts] == ["1/3", "2/3", "3/3"]
    dead = set(sim.fleet.mrids(sim.fleet.group_members(sim.fleet.group_by_name("FEEDER-02"))))
    errors = [e.findtext(f"{MSG}ID") for root, _, _ in parts for e in root.iterfind(f"{{*}}Reply/{MSG}Error")
              if e.findtext(f"{MSG}code") == "4.1"]
    assert sorted(errors) == sorted(dead)
    assert reply(parts[-1][0])[0] == "PARTIAL" and "0.2" in reply(parts[-1][0])[1]
    assert all(reply(r)[1][0] == "0.1" for r, _, _ in parts[:-1])
    # Meters with data and meters with errors together cover the request exactly once.
    data = [m for _, _, ms in parts for m in ms]
    assert len(data) + len(errors) == 40 and not set(data) & dead


def test_created_style_sends_created_parts_and_a_closing_response() -> None:
    sim, out = sim_with(replies={"part_size": 10, "style": "created"})
    call(sim, soap(typed_get(get_profile(groups=["FEEDER-03"], reading_types=[REG]), reply_address=MDMS)))
    sim.env.run()
    roots = [etree.fromstring(p.body) for _, p in out.sent]
    assert [r.tag for r in roots] == [f"{MRM}CreatedMeterReadings"] * 2 + [f"{MRM}MeterReadingsResponseMessage"]
    created = "http://iec.ch/TC57/2011/MeterReadings/CreatedMeterReadings"
    assert [p.soap_action for _, p in out.sent][:2] == [created] * 2
    for r in roots:
        assert_valid_both(r, "MeterReadingsMessage", "MeterReadingsMessage")
    assert [r.findtext(f"{{*}}Header/{MSG}Verb") for r in roots] == ["created", "created", "reply"]
    assert reply(roots[-1]) == ("OK", [])


def _faulted(fault: str, **cfg: object) -> tuple[Simulator, TimedOutbound]:
    return sim_with(replies={"part_size": 5, "faults": {fault: {"probability": 1.0, **cfg}}})


def _async(sim: Simulator) -> None:
    call(sim, soap(typed_get(get_profile(groups=["FEEDER-01"], reading_types=[REG]), reply_address=MDMS)))
    sim.env.run()


def test_late_fault_delays_every_part_by_its_delay() -> None:
    sim, out = _faulted("late", delay_s=900)
    _async(sim)
    assert [t for t, _ in out.sent] == [901.0] * 4  # meters answer at 1 s, parts leave 900 s later


def test_duplicate_fault_sends_every_part_twice() -> None:
    sim, out = _faulted("duplicate")
    _async(sim)
    assert [part_info(p)[1] for _, p in out.sent] == ["1/4", "1/4", "2/4", "2/4", "3/4", "3/4", "4/4", "4/4"]


def test_missing_part_fault_drops_exactly_one_part() -> None:
    sim, out = _faulted("missing_part")
    _async(sim)
    indices = [part_info(p)[1] for _, p in out.sent]
    assert len(indices) == 3 and set(indices) < {"1/4", "2/4", "3/4", "4/4"}


def test_out_of_order_fault_sends_parts_last_to_first() -> None:
    sim, out = _faulted("out_of_order")
    _async(sim)
    assert [part_info(p)[1] for _, p in out.sent] == ["4/4", "3/4", "2/4", "1/4"]


def test_no_reply_fault_sends_nothing() -> None:
    sim, out = _faulted("no_reply")
    _async(sim)
    assert out.sent == []


def test_faults_target_only_requests_touching_their_groups() -> None:
    sim, out = sim_with(replies={"part_size": 5, "faults": {"no_reply": {"groups": ["FEEDER-02"]}}})
    _async(sim)  # FEEDER-01: not targeted
    assert len(out.sent) == 4
    call(sim, soap(typed_get(get_profile(groups=["FEEDER-02"], reading_types=[REG]), reply_address=MDMS)))
    sim.env.run()
    assert len(out.sent) == 4


def test_probability_faults_hit_a_seeded_share_of_requests() -> None:
    def run() -> list[int]:
        sim, out = sim_with(replies={"faults": {"no_reply": {"probability": 0.3}}})
        answered = []
        for k in range(60):
            before = len(out.sent)
            call(sim, soap(typed_get(get_profile(meters=[sim.fleet.mrid(k)], reading_types=[REG]),
                                     reply_address=MDMS)))
            sim.env.run()
            answered.append(len(out.sent) - before)
        return answered

    first = run()
    assert first == run()  # same seed, same requests faulted
    assert 8 <= first.count(0) <= 30  # 30 % of 60, loose binomial bounds


@pytest.mark.parametrize("fault", ["http_500", "connection_reset", "invalid"])
def test_sync_answer_faults(fault: str) -> None:
    sim, _ = sim_with(replies={"faults": {fault: {"probability": 1.0}}})
    answer = asyncio.run(sim.soap.handle("GetMeterReadings", None, "text/xml",
                                         soap(typed_get(get_profile(meters=[sim.fleet.mrid(0)])))))
    if fault == "http_500":
        assert answer.status == 500 and b"Envelope" not in answer.body
    elif fault == "connection_reset":
        assert answer.reset
    else:
        assert answer.status == 200
        body = etree.fromstring(answer.body).find("{*}Body")[0]
        from simulator.cim import schemas
        assert schemas.validate(body, "GetMeterReadingsMessage")  # well-formed but invalid


def test_ack_required_is_answered_with_0_3_and_set_on_our_messages() -> None:
    sim, out = sim_with(replies={"ack_required": True})
    _, root = call(sim, soap(typed_get(get_profile(meters=[sim.fleet.mrid(0)], reading_types=[REG]),
                                       reply_address=MDMS, ack_required=True)))
    assert reply(root) == ("OK", ["0.3"])
    sim.env.run()
    ((_, part),) = out.sent
    assert part.ack_required
    assert etree.fromstring(part.body).findtext(f"{{*}}Header/{MSG}AckRequired") == "true"


def test_overload_answers_3_2_when_the_queue_is_full() -> None:
    slow = {"classes": {"slow": {"latency": {"kind": "fixed", "value_s": 50.0}, "success": 1.0, "retries": 0}}}
    sim, _ = sim_with(comms=slow, headend={"max_jobs_in_flight": 1, "max_queued_jobs": 1})
    req = soap(typed_get(get_profile(meters=[sim.fleet.mrid(0)], reading_types=[REG]), reply_address=MDMS))
    assert call(sim, req)[0] == 200  # runs
    assert call(sim, req)[0] == 200  # waits
    status, fault = call(sim, req)
    assert status == 500 and fault.findtext(f".//{MSG}code") == "3.2"


def test_outbox_backlog_answers_5_1() -> None:
    sim, _ = sim_with(headend={"max_outbox_backlog": 10})
    sim.headend.outbound = TimedOutbound(sim, backlog=10)
    status, fault = call(sim, soap(typed_get(get_profile(meters=[sim.fleet.mrid(0)]), reply_address=MDMS)))
    assert status == 500 and fault.findtext(f".//{MSG}code") == "5.1"


def test_async_without_reply_address_is_refused() -> None:
    sim, _ = sim_with()
    body = soap(typed_get(get_profile(meters=[sim.fleet.mrid(0)]), reply_address="queue://nowhere"))
    status, fault = call(sim, body)
    assert status == 500 and fault.findtext(f".//{MSG}code") == "5.8"


def test_same_seed_same_async_payloads() -> None:
    def bodies() -> list[bytes]:
        sim, out = sim_with(comms={"classes": {"mesh": {"latency": {"kind": "lognormal", "median_s": 5}}}},
                            replies={"part_size": 7})
        _async(sim)
        return [etree.tostring(etree.fromstring(p.body).find("{*}Payload")) for _, p in out.sent]

    assert bodies() == bodies()

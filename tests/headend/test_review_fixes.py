"""Behaviour pinned after review: IDs per run, correlation of async results, empty ranges, limits."""

from __future__ import annotations

import asyncio

from lxml import etree

from simulator.app import Simulator
from simulator.headend.outbound import MemoryOutbound
from simulator.timeutil import format_datetime, parse_datetime
from tests.conftest import make_sim

from .requests import get_profile, soap, typed_get

MSG = "{http://iec.ch/TC57/2011/schema/message}"


def _call(sim: Simulator, body: str) -> tuple[int, etree._Element]:
    answer = asyncio.run(sim.soap.handle("GetMeterReadings", None, "text/xml", soap(body)))
    return answer.status, etree.fromstring(answer.body).find("{*}Body")[0]


def test_message_ids_differ_between_runs_but_payloads_do_not() -> None:
    req = typed_get(get_profile(meters=[make_sim().fleet.mrid(3)], period=("2026-03-09T00:00:00Z",
                                                                         "2026-03-09T01:00:00Z")))
    a, b = _call(make_sim(), req)[1], _call(make_sim(), req)[1]
    assert a.findtext(f"{{*}}Header/{MSG}MessageID") != b.findtext(f"{{*}}Header/{MSG}MessageID")
    assert etree.tostring(a.find("{*}Payload")) == etree.tostring(b.find("{*}Payload"))


def test_async_results_carry_the_correlation_id_the_acceptance_showed() -> None:
    sim = make_sim()
    out = MemoryOutbound()
    sim.headend.outbound = out
    body = ('<m:GetMeterReadings xmlns:m="http://iec.ch/TC57/2011/GetMeterReadingsMessage" '
            'xmlns:h="http://iec.ch/TC57/2011/schema/message"><m:Header><h:Verb>get</h:Verb>'
            "<h:Noun>MeterReadings</h:Noun><h:AsyncReplyFlag>true</h:AsyncReplyFlag>"
            "<h:ReplyAddress>http://127.0.0.1:9/r</h:ReplyAddress></m:Header><m:Request>"
            + get_profile(meters=[sim.fleet.mrid(0)]) + "</m:Request></m:GetMeterReadings>")
    _, accepted = _call(sim, body)  # no MessageID, no CorrelationID in the request
    shown = accepted.findtext(f"{{*}}Header/{MSG}CorrelationID")
    assert shown
    sim.env.run()
    (part,) = out.parts
    assert part.correlation_id == shown
    assert etree.fromstring(part.body).findtext(f"{{*}}Header/{MSG}CorrelationID") == shown


def test_a_range_without_a_complete_interval_says_why() -> None:
    sim = make_sim()
    now = sim.clock.now_unix()
    start = now - now % 900 - 600  # 10 minutes inside one interval, ending before it does
    _, root = _call(sim, typed_get(get_profile(meters=[sim.fleet.mrid(0)],
                                               reading_types=["0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"],
                                               period=(format_datetime(start), format_datetime(start + 300)))))
    reply = root.find("{*}Reply")
    assert reply.findtext(f"{MSG}Result") == "FAILED"
    assert [e.findtext(f"{MSG}code") for e in reply.findall(f"{MSG}Error")] == ["5.7"]


def test_the_meter_limit_counts_distinct_meters() -> None:
    sim = make_sim(meters=200, headend={"max_meters_per_request": 20})
    members = sim.fleet.group_members(sim.fleet.group_by_name("FEEDER-01"))
    assert len(members) == 20
    status, root = _call(sim, typed_get(get_profile(meters=[sim.fleet.mrid(int(members[0]))],
                                                    groups=["FEEDER-01"])))
    assert status == 200 and root.findtext(f"{{*}}Reply/{MSG}Result") == "OK"
    status, _ = _call(sim, typed_get(get_profile(meters=[sim.fleet.mrid(int(members[-1]) + 1)],
                                                 groups=["FEEDER-01"])))
    assert status == 500  # 21 distinct meters


def test_early_dates_are_valid_xs_datetime() -> None:
    assert format_datetime(parse_datetime("0001-01-01T00:15:00Z")) == "0001-01-01T00:15:00Z"

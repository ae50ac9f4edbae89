"""GetMeterReadings through the SOAP adapter, in process: what the MDMS sees on the wire."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import numpy as np
import pytest
from lxml import etree

from simulator.app import Simulator
from simulator.cim import schemas
from simulator.model.readingtypes import class_reading_types
from simulator.timeutil import parse_datetime
from tests.conformance.refschemas import assert_valid_both
from tests.conftest import make_sim

from .requests import generic_get, get_profile, soap, typed_get

NS = {
    "s": "http://schemas.xmlsoap.org/soap/envelope/",
    "msg": "http://iec.ch/TC57/2011/schema/message",
    "gm": "http://iec.ch/TC57/2011/GetMeterReadingsMessage",
    "mr": "http://iec.ch/TC57/2011/MeterReadings#",
}
KWH_15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
KWH_REG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
KWH_15_RECEIVED = "0.0.2.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0"
KWH_DAILY = "11.0.0.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
DAY = ("2026-03-09T00:00:00Z", "2026-03-10T00:00:00Z")


def call(sim: Simulator, service: str, body: bytes, content_type: str = "text/xml; charset=utf-8"):
    answer = asyncio.run(sim.soap.handle(service, None, content_type, body))
    return answer.status, etree.fromstring(answer.body)


def body_root(env: etree._Element) -> etree._Element:
    return env.find("s:Body", NS)[0]


def reply_of(root: etree._Element) -> tuple[str, list[tuple[str, str | None, str | None]]]:
    reply = root.find("{*}Reply")
    result = reply.findtext("msg:Result", namespaces=NS)
    errors = []
    for e in reply.findall("msg:Error", NS):
        ident = e.find("msg:ID", NS)
        errors.append((e.findtext("msg:code", namespaces=NS), ident.text if ident is not None else None,
                       ident.get("objectType") if ident is not None else None))
    return result, errors


def meter_of(sim: Simulator, cls: str) -> int:
    return int(np.nonzero(sim.fleet.class_index == sim.fleet.classes.index(cls))[0][0])


def test_typed_read_by_mrid_returns_a_day_of_intervals_equal_to_the_model(sim: Simulator) -> None:
    i = meter_of(sim, "residential")
    mrid = sim.fleet.mrid(i)
    status, env = call(sim, "GetMeterReadings", soap(typed_get(get_profile(meters=[mrid], period=DAY))))
    root = body_root(env)
    assert status == 200
    assert root.tag == "{http://iec.ch/TC57/2011/GetMeterReadingsMessage}MeterReadingsResponseMessage"
    assert_valid_both(root, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    header = root.find("{*}Header")
    assert header.findtext("msg:Verb", namespaces=NS) == "reply"
    assert header.findtext("msg:Noun", namespaces=NS) == "MeterReadings"
    assert header.findtext("msg:CorrelationID", namespaces=NS) == "corr-1"
    assert header.findtext("msg:MessageID", namespaces=NS)
    assert reply_of(root) == ("OK", [])
    readings = root.find("{*}Payload/mr:MeterReadings", NS)
    (mreading,) = readings.findall("mr:MeterReading", NS)
    assert mreading.findtext("mr:Meter/mr:mRID", namespaces=NS) == mrid
    assert mreading.findtext("mr:Meter/mr:Names/mr:name", namespaces=NS) == sim.fleet.serial(i)
    block = {b.find("mr:ReadingType", NS).get("ref"): b for b in mreading.findall("mr:IntervalBlocks", NS)}
    assert set(block) == {c for c in class_reading_types("residential") if c in (KWH_15, KWH_DAILY)}
    ivs = block[KWH_15].findall("mr:IntervalReadings", NS)
    assert len(ivs) == 96
    assert ivs[0].findtext("mr:timeStamp", namespaces=NS) == "2026-03-09T00:15:00Z"
    assert ivs[-1].findtext("mr:timeStamp", namespaces=NS) == "2026-03-10T00:00:00Z"
    got = [Decimal(iv.findtext("mr:value", namespaces=NS)) for iv in ivs]
    expected = sim.readings.intervals(np.array([i]), KWH_15, parse_datetime(DAY[0]), 96)[0]
    assert got == [Decimal(int(v)) / 1000 for v in expected]
    daily = block[KWH_DAILY].findall("mr:IntervalReadings", NS)
    assert len(daily) == 1 and Decimal(daily[0].findtext("mr:value", namespaces=NS)) == sum(got)
    # The register is read at the end of the range.
    reg = {r.find("mr:ReadingType", NS).get("ref"): r for r in mreading.findall("mr:Readings", NS)}
    assert reg[KWH_REG].findtext("mr:timeStamp", namespaces=NS) == DAY[1]


def test_unknown_meter_is_a_per_item_error_and_the_rest_is_served(sim: Simulator) -> None:
    good = sim.fleet.mrid(3)
    unknown = "0f0e0d0c-0b0a-4908-8706-050403020100"
    _, env = call(sim, "GetMeterReadings", soap(typed_get(get_profile(meters=[unknown, good], period=DAY))))
    root = body_root(env)
    assert_valid_both(root, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    assert reply_of(root) == ("PARTIAL", [("2.4", unknown, "EndDevice")])
    assert [m.findtext("mr:Meter/mr:mRID", namespaces=NS)
            for m in root.iterfind("{*}Payload/mr:MeterReadings/mr:MeterReading", NS)] == [good]


def test_only_unknown_meters_fails(sim: Simulator) -> None:
    _, env = call(sim, "GetMeterReadings", soap(typed_get(get_profile(meter_names=["NOPE1", "NOPE2"]))))
    root = body_root(env)
    assert_valid_both(root, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    result, errors = reply_of(root)
    assert result == "FAILED"
    assert errors == [("2.4", "NOPE1", "EndDevice"), ("2.4", "NOPE2", "EndDevice")]
    assert root.find("{*}Payload") is None


def test_reading_type_errors_unknown_and_unsupported(sim: Simulator) -> None:
    i = meter_of(sim, "residential")
    rts = [KWH_15, "9.9.9.9.9.9.9.0.0.0.0.0.0.0.0.3.72.0", KWH_15_RECEIVED]
    _, env = call(sim, "GetMeterReadings",
                  soap(typed_get(get_profile(meters=[sim.fleet.mrid(i)], reading_types=rts, period=DAY))))
    root = body_root(env)
    result, errors = reply_of(root)
    assert result == "PARTIAL"
    assert errors == [("2.6", rts[1], "ReadingType"), ("2.10", KWH_15_RECEIVED, "ReadingType")]
    refs = [b.get("ref") for b in root.iterfind(".//mr:IntervalBlocks/mr:ReadingType", NS)]
    assert refs == [KWH_15]


def test_select_by_serial_usage_point_and_group_in_request_order(sim: Simulator) -> None:
    feeder = sim.fleet.groups()[0]
    members = sim.fleet.group_members(feeder)
    a, b = int(members[-1]) + 1, int(members[-1]) + 2  # outside the feeder
    profile = get_profile(meter_names=[sim.fleet.serial(a)], usage_points=[sim.fleet.usage_point_mrid(b)],
                          groups=[feeder.name], reading_types=[KWH_REG])
    _, env = call(sim, "GetMeterReadings", soap(typed_get(profile)))
    root = body_root(env)
    assert reply_of(root) == ("OK", [])
    got = [m.findtext("mr:Meter/mr:mRID", namespaces=NS)
           for m in root.iterfind("{*}Payload/mr:MeterReadings/mr:MeterReading", NS)]
    # EndDevices first, then the group's members; usage points are resolved in between.
    assert got == [sim.fleet.mrid(a), sim.fleet.mrid(b), *sim.fleet.mrids(members)]


def test_on_demand_read_gives_registers_now_and_the_latest_interval(sim: Simulator) -> None:
    i = meter_of(sim, "prosumer")
    now = sim.clock.now_unix()  # on-demand values are taken when the request reaches the head-end
    _, env = call(sim, "GetMeterReadings", soap(typed_get(get_profile(meters=[sim.fleet.mrid(i)]))))
    root = body_root(env)
    assert_valid_both(root, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    assert sim.clock.now_unix() == now + 1  # the meter took its one second to answer
    reg = {r.find("mr:ReadingType", NS).get("ref"): r for r in root.iterfind(".//mr:Readings", NS)}
    assert parse_datetime(reg[KWH_REG].findtext("mr:timeStamp", namespaces=NS)) == now
    assert Decimal(reg[KWH_REG].findtext("mr:value", namespaces=NS)) == \
        Decimal(int(sim.readings.register(np.array([i]), KWH_REG, now)[0])) / 1000
    block = next(b for b in root.iterfind(".//mr:IntervalBlocks", NS)
                 if b.find("mr:ReadingType", NS).get("ref") == KWH_15)
    (iv,) = block.findall("mr:IntervalReadings", NS)
    assert parse_datetime(iv.findtext("mr:timeStamp", namespaces=NS)) == now - now % 900


def test_range_precedence_reading_period_over_request_times(sim: Simulator) -> None:
    extra = "<m:StartTime>2026-03-01T00:00:00Z</m:StartTime><m:EndTime>2026-03-02T00:00:00Z</m:EndTime>"
    profile = get_profile(meters=[sim.fleet.mrid(0)], reading_types=[KWH_15],
                          period=("2026-03-09T00:00:00Z", "2026-03-09T01:00:00Z"))
    _, env = call(sim, "GetMeterReadings", soap(typed_get(profile, request_extra=extra)))
    stamps = [t.text for t in body_root(env).iterfind(".//mr:IntervalReadings/mr:timeStamp", NS)]
    assert stamps == ["2026-03-09T00:15:00Z", "2026-03-09T00:30:00Z", "2026-03-09T00:45:00Z", "2026-03-09T01:00:00Z"]
    # Without a Reading period, Request/StartTime and EndTime apply.
    profile = get_profile(meters=[sim.fleet.mrid(0)], reading_types=[KWH_15])
    _, env = call(sim, "GetMeterReadings", soap(typed_get(profile, request_extra=extra)))
    assert len(body_root(env).findall(".//mr:IntervalReadings", NS)) == 96


def test_future_range_is_data_unavailable(sim: Simulator) -> None:
    profile = get_profile(meters=[sim.fleet.mrid(0)], period=("2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z"))
    _, env = call(sim, "GetMeterReadings", soap(typed_get(profile)))
    result, errors = reply_of(body_root(env))
    assert result == "FAILED" and [e[0] for e in errors] == ["5.7"]


def test_generic_message_endpoint_dispatches_on_verb_and_noun(sim: Simulator) -> None:
    profile = get_profile(meters=[sim.fleet.mrid(1)], reading_types=[KWH_15], period=DAY)
    status, env = call(sim, "Message", soap(generic_get(profile)))
    root = body_root(env)
    assert status == 200
    assert root.tag == "{http://iec.ch/TC57/2011/schema/message}ResponseMessage"
    assert_valid_both(root, "Message", "Message")
    assert root.findtext("msg:Header/msg:CorrelationID", namespaces=NS) == "corr-g"
    assert reply_of(root) == ("OK", [])
    payload = root.find("msg:Payload/mr:MeterReadings", NS)
    assert not schemas.validate(payload, "MeterReadings")
    assert len(payload.findall(".//mr:IntervalReadings", NS)) == 96


def fault_of(env: etree._Element) -> tuple[str, str, str]:
    fault = env.find("s:Body/s:Fault", NS)
    assert fault is not None, etree.tostring(env)[:500]
    err = fault.find("detail//{*}Reply/msg:Error", NS)
    return (fault.findtext("faultcode"), err.findtext("msg:code", namespaces=NS),
            err.findtext("msg:reason", namespaces=NS))


@pytest.mark.parametrize(
    ("service", "body", "code", "words"),
    [
        ("GetMeterReadings", b"this is not xml", "1.8", "XML"),
        ("GetMeterReadings", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "1.8", "DTD"),
        ("GetMeterReadings", soap(generic_get(get_profile(meter_names=["X"]))), "1.8", "GetMeterReadings"),
        ("GetMeterReadings", soap(typed_get("<gmr:Wrong xmlns:gmr='http://iec.ch/TC57/2011/GetMeterReadings#'/>")),
         "1.8", "valid"),
        ("Message", soap(generic_get(get_profile(meter_names=["X"]), noun="Weather")), "2.5", "Weather"),
        ("Message", soap(generic_get(get_profile(meter_names=["X"]), verb="create")), "2.9", "create"),
        ("Message", soap(generic_get(get_profile(meter_names=["X"]), verb="fetch")), "2.9", "fetch"),
        ("Message", soap('<msg:RequestMessage xmlns:msg="http://iec.ch/TC57/2011/schema/message"/>'), "1.5", "Header"),
    ],
)
def test_bad_requests_get_soap_faults_with_61968_codes(
    sim: Simulator, service: str, body: bytes, code: str, words: str
) -> None:
    started = time.perf_counter()
    status, env = call(sim, service, body)
    assert time.perf_counter() - started < 0.5
    assert status == 500
    faultcode, got_code, reason = fault_of(env)
    assert got_code == code, reason
    assert words.lower() in reason.lower()
    assert faultcode.endswith("Client")
    detail = env.find("s:Body/s:Fault/detail", NS)[0]
    if service == "GetMeterReadings":
        assert detail.tag == "{http://iec.ch/TC57/2011/GetMeterReadingsMessage}MeterReadingsFaultMessage"
        assert_valid_both(detail, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    else:
        assert detail.tag == "{http://iec.ch/TC57/2011/schema/message}FaultMessage"
        assert_valid_both(detail, "Message", "Message")


def test_billion_laughs_is_refused_fast(sim: Simulator) -> None:
    lol = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                     for i in range(1, 10))
           + ']><lolz>&lol9;</lolz>').encode()
    started = time.perf_counter()
    status, env = call(sim, "Message", lol)
    assert time.perf_counter() - started < 0.1
    assert status == 500 and fault_of(env)[1] == "1.8"


def test_too_many_meters_is_refused_with_3_1() -> None:
    sim = make_sim(meters=500, headend={"max_meters_per_request": 100})
    feeder = sim.fleet.groups()[0]  # 50 meters
    profile = get_profile(groups=[feeder.name, sim.fleet.groups()[1].name, sim.fleet.groups()[2].name])
    status, env = call(sim, "GetMeterReadings", soap(typed_get(profile)))
    assert status == 500
    _, code, reason = fault_of(env)
    assert code == "3.1" and "100" in reason


def test_oversized_body_is_refused_with_a_fault(sim: Simulator) -> None:
    answer = sim.soap.too_large("GetMeterReadings", "text/xml", 50_000_000)
    env = etree.fromstring(answer.body)
    assert answer.status == 500 and fault_of(env)[1] == "1.8"


def test_soap12_requests_get_soap12_answers(sim: Simulator) -> None:
    body = ('<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>'
            + typed_get(get_profile(meters=[sim.fleet.mrid(0)], reading_types=[KWH_REG]))
            + "</env:Body></env:Envelope>").encode()
    answer = asyncio.run(sim.soap.handle("GetMeterReadings", None, "application/soap+xml; charset=utf-8", body))
    assert answer.status == 200
    assert answer.content_type.startswith("application/soap+xml")
    env = etree.fromstring(answer.body)
    assert env.tag == "{http://www.w3.org/2003/05/soap-envelope}Envelope"


def test_same_seed_same_payload_across_simulators() -> None:
    a, b = make_sim(seed=11), make_sim(seed=11)
    req = soap(typed_get(get_profile(groups=["FEEDER-01"], period=DAY)))
    pa = etree.tostring(body_root(call(a, "GetMeterReadings", req)[1]).find("{*}Payload"))
    pb = etree.tostring(body_root(call(b, "GetMeterReadings", req)[1]).find("{*}Payload"))
    assert pa == pb
    c = make_sim(seed=12)
    pc = etree.tostring(body_root(call(c, "GetMeterReadings", req)[1]).find("{*}Payload"))
    assert pc != pa

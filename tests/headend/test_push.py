"""Scheduled pushes: batching over the window, backfill, gaps, duplicates, registers, reproducibility."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from lxml import etree

from simulator.app import Simulator
from simulator.errors import SimulatorError
from simulator.headend.push import PushScheduler, PushSpec, next_push_time
from simulator.timeutil import format_datetime, parse_datetime
from tests.conformance.refschemas import assert_valid_both
from tests.conftest import make_sim

from .test_reply_patterns import TimedOutbound

MSG = "{http://iec.ch/TC57/2011/schema/message}"
MRM = "{http://iec.ch/TC57/2011/MeterReadingsMessage}"
MR = "{http://iec.ch/TC57/2011/MeterReadings#}"
KWH15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
REG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
MDMS = "http://127.0.0.1:9/mdms/SendMeterReadings"
MDMS2 = "http://127.0.0.1:9/other/SendMeterReadings"
PUSH_AT = parse_datetime("2026-03-11T02:00:00Z")  # first 02:00 after the fixture's start (03-10 12:00 UTC)
DAY_START = parse_datetime("2026-03-10T00:00:00Z")


@dataclass
class Message:
    at: float
    root: etree._Element
    body: bytes
    destination: str
    soap_action: str
    correlation_id: str

    def prop(self, name: str) -> str | None:
        return self.root.findtext(f"{MRM}Header/{MSG}Property[{MSG}Name='{name}']/{MSG}Value")

    def header(self, name: str) -> str | None:
        return self.root.findtext(f"{MRM}Header/{MSG}{name}")

    def meters(self) -> list[str]:
        return [m.findtext(f"{MR}Meter/{MR}mRID") for m in self.root.iterfind(f".//{MR}MeterReading")]

    def payload(self) -> bytes:
        return etree.tostring(self.root.find(f"{MRM}Payload"), method="c14n")


def pushed(meters: int, *specs: PushSpec, until: float, destinations: tuple[str, ...] = (MDMS,),
           seed: int = 7, ack: bool = False) -> tuple[Simulator, PushScheduler, list[Message]]:
    sim = make_sim(meters=meters, seed=seed)
    out = TimedOutbound(sim)
    sim.headend.outbound = out
    scheduler = PushScheduler(sim.headend, specs, destinations, ack_required=ack)
    scheduler.start()
    sim.env.run(until=until)
    return sim, scheduler, [Message(t, etree.fromstring(p.body), p.body, p.destination, p.soap_action,
                                    p.correlation_id) for t, p in out.sent]


def at(sim: Simulator, unix: int) -> float:
    return sim.clock.to_sim(unix)


def interval_table(msg: Message, code: str = KWH15) -> dict[str, list[tuple[str, str | None, tuple[str, ...]]]]:
    """meter mRID -> [(timeStamp, value or None, quality codes)] of its block of `code`."""
    table = {}
    for mr in msg.root.iterfind(f".//{MR}MeterReading"):
        for ib in mr.iterfind(f"{MR}IntervalBlocks"):
            if ib.find(f"{MR}ReadingType").get("ref") != code:
                continue
            table[mr.findtext(f"{MR}Meter/{MR}mRID")] = [
                (ir.findtext(f"{MR}timeStamp"), ir.findtext(f"{MR}value"),
                 tuple(q.get("ref") for q in ir.iterfind(f"{MR}ReadingQualities/{MR}ReadingQualityType")))
                for ir in ib.iterfind(f"{MR}IntervalReadings")
            ]
    return table


def wh(texts: list[str | None]) -> np.ndarray:
    return np.array([round(float(t) * 1000) if t is not None else -1 for t in texts], dtype=np.int64)


def assert_valid(msg: Message) -> None:
    """Valid against our profile (simulator.cim.schemas.validate) and the reference schemas."""
    assert_valid_both(msg.root, "MeterReadingsMessage", "MeterReadingsMessage")


def test_daily_push_sends_the_previous_day_in_batches_spread_over_the_window() -> None:
    sim, _, sent = pushed(2500, PushSpec("daily", batch_meters=1000, window_s=3600), until=50400 + 4000)
    t0 = at(sim, PUSH_AT)
    assert [m.at for m in sent] == [t0, t0 + 1200, t0 + 2400]
    assert [m.prop("MessageIndex") for m in sent] == ["1/3", "2/3", "3/3"]
    assert len({m.correlation_id for m in sent}) == 1
    assert {m.header("CorrelationID") for m in sent} == {sent[0].correlation_id}
    assert len({m.header("MessageID") for m in sent}) == 3
    for m in sent:
        assert m.root.tag == f"{MRM}CreatedMeterReadings"
        assert (m.header("Verb"), m.header("Noun"), m.header("AckRequired")) == ("created", "MeterReadings", None)
        assert m.soap_action == "http://iec.ch/TC57/2011/MeterReadings/CreatedMeterReadings"
        assert m.destination == MDMS
        assert m.root.findtext(f".//{MR}valuesInterval/{MR}start") == format_datetime(DAY_START)
        assert m.root.findtext(f".//{MR}valuesInterval/{MR}end") == format_datetime(DAY_START + 86400)
        assert_valid(m)
    order = [mrid for m in sent for mrid in m.meters()]
    assert order == sim.fleet.mrids(np.arange(2500))  # every meter once, in index order
    stamps = [format_datetime(DAY_START + 900 * (k + 1)) for k in range(96)]
    expected = sim.readings.intervals(np.arange(2500), KWH15, DAY_START, 96)
    ns = {"m": MR[1:-1]}
    values = np.concatenate([np.array(m.root.xpath("//m:IntervalReadings/m:value/text()", namespaces=ns),
                                      dtype=np.float64) for m in sent])
    assert (np.round(values * 1000).astype(np.int64) == expected.ravel()).all()
    for m in sent:
        assert m.root.xpath("count(//m:IntervalBlocks)", namespaces=ns) == len(m.meters())
        assert m.root.xpath("//m:IntervalReadings/m:timeStamp/text()", namespaces=ns) == stamps * len(m.meters())
        assert m.root.xpath("count(//m:ReadingQualities)", namespaces=ns) == 0


def test_every_destination_gets_every_message_and_ack_required_is_stated() -> None:
    _, scheduler, sent = pushed(300, PushSpec("daily", batch_meters=100, window_s=600), until=50400 + 700,
                                destinations=(MDMS, MDMS2), ack=True)
    assert [(m.destination, m.prop("MessageIndex")) for m in sent] == [
        (MDMS, "1/3"), (MDMS2, "1/3"), (MDMS, "2/3"), (MDMS2, "2/3"), (MDMS, "3/3"), (MDMS2, "3/3")]
    assert sent[0].body == sent[1].body and sent[2].body == sent[3].body
    assert {m.header("AckRequired") for m in sent} == {"true"}
    assert scheduler.messages_sent == 6


def test_missing_meters_come_later_in_a_backfill_message_and_nowhere_else() -> None:
    spec = PushSpec("daily", batch_meters=1000, window_s=3600, missing_fraction=0.1, backfill_after_s=7200)
    sim, _, sent = pushed(2500, spec, until=50400 + 7200 + 100)
    t0 = at(sim, PUSH_AT)
    main, late = sent[:3], sent[3:]
    assert [m.prop("MessageIndex") for m in main] == ["1/3", "2/3", "3/3"]
    assert [m.at for m in main] == [t0, t0 + 1200, t0 + 2400]
    assert len(late) == 1
    backfill = late[0]
    assert backfill.at == t0 + 7200
    assert (backfill.prop("MessageIndex"), backfill.prop("Backfill"), backfill.prop("BackfillOf")) == (
        "1/1", "true", main[0].correlation_id)
    assert backfill.correlation_id != main[0].correlation_id
    assert_valid(backfill)
    on_time = [mrid for m in main for mrid in m.meters()]
    missing = backfill.meters()
    assert 0.07 * 2500 < len(missing) < 0.13 * 2500
    assert set(on_time).isdisjoint(missing)
    everyone = sim.fleet.mrids(np.arange(2500))
    assert sorted(on_time + missing) == sorted(everyone)
    assert missing == [m for m in everyone if m in set(missing)]  # index order
    # The late data is the same day's data, not data of the later delivery time.
    first_late = sim.fleet.index_of_mrid(missing[0])
    values = interval_table(backfill)[missing[0]]
    assert (wh([v for _, v, _ in values]) == sim.readings.intervals([first_late], KWH15, DAY_START, 96)[0]).all()


@pytest.mark.parametrize("estimate", [False, True])
def test_gaps_are_flagged_exactly_where_seeded(estimate: bool) -> None:
    spec = PushSpec("daily", batch_meters=500, window_s=0, gap_fraction=0.02, estimate_gaps=estimate)
    sim, scheduler, sent = pushed(500, spec, until=50400 + 1)
    (msg,) = sent
    assert_valid(msg)
    meters = np.arange(500)
    gaps = scheduler.gap_draws(KWH15, meters, DAY_START, 96) < 0.02
    assert 0.01 < gaps.mean() < 0.03
    model = sim.readings.intervals(meters, KWH15, DAY_START, 96)
    table = interval_table(msg)
    for i, mrid in enumerate(sim.fleet.mrids(meters)):
        readings = table[mrid]
        flagged = np.array([q != () for _, _, q in readings])
        assert (flagged == gaps[i]).all()
        for k, (_, value, qualities) in enumerate(readings):
            if not gaps[i, k]:
                assert value is not None and round(float(value) * 1000) == model[i, k]
            elif estimate:
                assert qualities == ("2.8.0",) and round(float(value) * 1000) == model[i, k]
            else:
                assert qualities == ("2.5.259",) and value is None


def test_gaps_do_not_depend_on_batching_or_on_the_push() -> None:
    spec_a = PushSpec("a", batch_meters=7, window_s=0, gap_fraction=0.05)
    spec_b = PushSpec("b", at="03:30", batch_meters=300, window_s=0, gap_fraction=0.05)
    _, _, sent = pushed(300, spec_a, spec_b, until=50400 + 5400 + 1)
    a = {k: v for m in sent if m.prop("MessageIndex") != "1/1" for k, v in interval_table(m).items()}
    b = interval_table(sent[-1])
    assert sent[-1].prop("MessageIndex") == "1/1" and len(a) == len(b) == 300
    assert a == b


def test_duplicates_send_the_same_bytes_twice_in_a_row() -> None:
    _, _, sent = pushed(300, PushSpec("daily", batch_meters=100, window_s=600, duplicate_fraction=1.0),
                        until=50400 + 700)
    assert [m.prop("MessageIndex") for m in sent] == ["1/3", "1/3", "2/3", "2/3", "3/3", "3/3"]
    assert all(sent[i].body == sent[i + 1].body and sent[i].at == sent[i + 1].at for i in (0, 2, 4))
    _, _, some = pushed(2000, PushSpec("daily", batch_meters=50, window_s=0, duplicate_fraction=0.5),
                        until=50400 + 1)
    indices = [m.prop("MessageIndex") for m in some]
    assert len(set(indices)) == 40 and 50 < len(indices) < 70


def test_hourly_registers_at_the_end_of_each_hour() -> None:
    spec = PushSpec("hourly", every="hourly", at_minute=5, reading_types=(REG, KWH15), batch_meters=100,
                    window_s=600)
    sim, _, sent = pushed(250, spec, until=300 + 3600 + 700)  # sim starts at 12:00: pushes at 12:05 and 13:05
    assert [(m.at, m.prop("MessageIndex")) for m in sent] == [
        (300.0, "1/3"), (500.0, "2/3"), (700.0, "3/3"), (3900.0, "1/3"), (4100.0, "2/3"), (4300.0, "3/3")]
    assert sent[0].correlation_id != sent[3].correlation_id
    noon = parse_datetime("2026-03-10T12:00:00Z")
    for push, hour_end in ((sent[:3], noon), (sent[3:], noon + 3600)):
        mrids = [mrid for m in push for mrid in m.meters()]
        assert mrids == sim.fleet.mrids(np.arange(250))
        registers = [
            (r.findtext(f"{MR}timeStamp"), r.findtext(f"{MR}value"))
            for m in push for r in m.root.iterfind(f".//{MR}Readings")
            if r.find(f"{MR}ReadingType").get("ref") == REG
        ]
        assert {s for s, _ in registers} == {format_datetime(hour_end)}
        assert (wh([v for _, v in registers]) == sim.readings.register(np.arange(250), REG, hour_end)).all()
        blocks = [r for m in push for r in interval_table(m).values()]
        assert len(blocks) == 250
        assert all([s for s, _, _ in b] == [format_datetime(hour_end - 3600 + 900 * k) for k in (1, 2, 3, 4)]
                   for b in blocks)
        for m in push:
            assert_valid(m)


def test_group_push_sends_only_the_group_and_only_meters_recording_the_types() -> None:
    received = "0.0.2.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0"  # only prosumers export
    sim, _, sent = pushed(400, PushSpec("feeder", group="FEEDER-01", window_s=0),
                          PushSpec("export", at="02:00", reading_types=(received,), window_s=0),
                          until=50400 + 1)
    feeder = sim.fleet.group_members(sim.fleet.group_by_name("FEEDER-01"))
    by_corr: dict[str, list[str]] = {}
    for m in sent:
        by_corr.setdefault(m.correlation_id, []).extend(m.meters())
    got = sorted(by_corr.values(), key=len)
    prosumers = np.flatnonzero(sim.fleet.has_reading_type(np.arange(400), received))
    assert 0 < len(prosumers) < 400
    assert sorted(got) == sorted([sim.fleet.mrids(feeder), sim.fleet.mrids(prosumers)])


def test_a_meter_without_supply_reads_zero_without_a_flag() -> None:
    sim = make_sim(meters=20)
    out = TimedOutbound(sim)
    sim.headend.outbound = out
    sim.supply.off([3], DAY_START + 3600)
    sim.supply.on([3], DAY_START + 7200)
    scheduler = PushScheduler(sim.headend, [PushSpec("daily", window_s=0, gap_fraction=0.0)], [MDMS])
    scheduler.start()
    sim.env.run(until=50400 + 1)
    (msg,) = [Message(t, etree.fromstring(p.body), p.body, p.destination, p.soap_action, p.correlation_id)
              for t, p in out.sent]
    readings = interval_table(msg)[sim.fleet.mrid(3)]
    assert [v for _, v, _ in readings[4:8]] == ["0.000"] * 4  # 01:15 .. 02:00 wholly off
    assert all(q == () for _, _, q in readings)


def test_push_now_sends_the_last_complete_day_at_once_without_a_schedule() -> None:
    sim = make_sim(meters=150)
    out = TimedOutbound(sim)
    sim.headend.outbound = out
    scheduler = PushScheduler(sim.headend, [PushSpec("daily", batch_meters=100, window_s=100)], [MDMS])
    sim.env.run(until=1000)
    scheduler.push_now("daily")
    sim.env.run(until=100_000)  # no scheduled push at 02:00: start() was never called
    assert [(t, Message(t, etree.fromstring(p.body), p.body, "", "", "").prop("MessageIndex"))
            for t, p in out.sent] == [(1000.0, "1/2"), (1050.0, "2/2")]
    root = etree.fromstring(out.sent[0][1].body)  # at 12:16 on 03-10 the last whole day is 03-09
    assert root.findtext(f".//{MR}valuesInterval/{MR}start") == format_datetime(DAY_START - 86400)
    with pytest.raises(SimulatorError, match="no push named"):
        scheduler.push_now("weekly")


def test_push_now_while_scheduled_does_not_disturb_the_schedule() -> None:
    sim = make_sim(meters=10)
    out = TimedOutbound(sim)
    sim.headend.outbound = out
    scheduler = PushScheduler(sim.headend, [PushSpec("daily", window_s=0)], [MDMS])
    scheduler.start()
    sim.env.run(until=1000)
    scheduler.push_now("daily")
    sim.env.run(until=50400 + 86400 + 1)
    assert [t for t, _ in out.sent] == [1000.0, 50400.0, 50400.0 + 86400]


def test_same_seed_same_payloads_other_seed_other_payloads() -> None:
    spec = PushSpec("daily", batch_meters=40, window_s=600, missing_fraction=0.2, gap_fraction=0.05,
                    duplicate_fraction=0.3)
    runs = [pushed(200, spec, until=50400 + 7200 + 700, seed=seed)[2] for seed in (7, 7, 8)]
    first, again, other = ([(m.at, m.prop("MessageIndex"), m.payload()) for m in run] for run in runs)
    assert first == again
    assert first != other


def test_next_push_time_honours_the_local_offset() -> None:
    t = parse_datetime("2026-03-10T12:00:00Z")
    assert next_push_time(PushSpec("d", at="02:00"), t, 0) == parse_datetime("2026-03-11T02:00:00Z")
    assert next_push_time(PushSpec("d", at="02:00"), t, 60 * 60) == parse_datetime("2026-03-11T01:00:00Z")
    assert next_push_time(PushSpec("d", at="12:00"), t, 0) == t  # due now counts
    hourly = PushSpec("h", every="hourly", at_minute=5)
    assert next_push_time(hourly, t, 0) == t + 300
    assert next_push_time(hourly, t, 30 * 60) == t + 35 * 60  # local hours start at :30 UTC


@pytest.mark.parametrize("bad", [
    {"every": "weekly"}, {"at": "25:00"}, {"at": "2"}, {"at_minute": 60}, {"reading_types": ()},
    {"reading_types": ("1.2.3",)}, {"batch_meters": 0}, {"window_s": -1.0}, {"missing_fraction": 1.5},
    {"gap_fraction": -0.1},
])
def test_bad_specs_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="push 'x'"):
        PushSpec("x", **bad)


def test_unknown_group_and_duplicate_names_are_refused() -> None:
    sim = make_sim(meters=10)
    with pytest.raises(ValueError, match="unknown group"):
        PushScheduler(sim.headend, [PushSpec("x", group="FEEDER-99")], [MDMS])
    with pytest.raises(ValueError, match="two pushes"):
        PushScheduler(sim.headend, [PushSpec("x"), PushSpec("x")], [MDMS])

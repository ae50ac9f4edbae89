"""Every shipped scenario runs in fast mode with a fixed seed, and its message trace is checked."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from lxml import etree

from simulator.app import Simulator
from simulator.cim import schemas
from simulator.headend.readjob import OutboundPart
from simulator.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
MSG = "{http://iec.ch/TC57/2011/schema/message}"
EV = "{http://iec.ch/TC57/2011/EndDeviceEvents#}"
MR = "{http://iec.ch/TC57/2011/MeterReadings#}"


class Trace:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.sent: list[tuple[float, OutboundPart]] = []

    def put_parts(self, parts: list[OutboundPart]) -> None:
        self.sent.extend((self.sim.env.now, p) for p in parts)

    def backlog(self) -> int:
        return 0

    def roots(self, local: str) -> list[tuple[float, etree._Element]]:
        out = []
        for t, p in self.sent:
            root = etree.fromstring(p.body)
            if etree.QName(root).localname == local:
                out.append((t, root))
        return out

    def events(self) -> list[tuple[float, str, str]]:
        """(sim time sent, event type, meter mRID) of every EndDeviceEvent sent."""
        return [(t, e.find(f"{EV}EndDeviceEventType").get("ref"), e.findtext(f"{EV}Assets/{EV}mRID"))
                for t, root in self.roots("CreatedEndDeviceEvents") for e in root.iterfind(f".//{EV}EndDeviceEvent")]


def run(name: str, until_s: float, *overrides: str) -> tuple[Simulator, Trace]:
    scenario = load_scenario(REPO / "scenarios" / f"{name}.yaml", ["clock.start=2026-03-10T00:00:00Z", *overrides])
    sim = Simulator(scenario, run_id="test")
    trace = Trace(sim)
    sim.headend.outbound = trace
    if until_s > sim.env.now:
        sim.env.run(until=until_s)
    for _, part in trace.sent[:3] + trace.sent[-3:]:  # a sample: validating everything would be slow
        root = etree.fromstring(part.body)
        stem = etree.QName(root).namespace.rsplit("/", 1)[1]
        assert not schemas.validate(root, stem), (stem, schemas.validate(root, stem)[:2])
    return sim, trace


def test_demo_pushes_yesterday_every_night() -> None:
    sim, trace = run("demo", 86_400)
    pushes = trace.roots("CreatedMeterReadings")
    indices = [r.findtext(f"{{*}}Header/{MSG}Property[{MSG}Name='MessageIndex']/{MSG}Value") for _, r in pushes]
    assert indices == [f"{k}/2" for k in (1, 2)]
    meters = [m.findtext(f"{MR}Meter/{MR}mRID") for _, r in pushes for m in r.iterfind(f".//{MR}MeterReading")]
    assert sorted(meters) == sorted(sim.fleet.mrids(range(1000)))
    assert 7200 <= pushes[0][0] < pushes[1][0] <= 7200 + 1800  # 02:00, spread over the window


def test_epri_part9_timeline() -> None:
    sim, trace = run("epri-part9", 3600)
    done = [what for _, what in sim.timeline.done]
    assert done[0] == "push scheduled-read" and len(done) == 5
    kinds = Counter(k for _, k, _ in trace.events())
    assert kinds["3.31.0.68"] + kinds["3.31.0.84"] == 200  # FEEDER-02 disconnected (a few relays fail)
    assert kinds["3.31.0.42"] >= kinds["3.31.0.68"] - 5
    assert kinds["3.12.43.257"] == 200  # the tamper storm on FEEDER-04
    assert kinds["3.26.0.216"] == 200 and 0.6 * 200 <= kinds["3.26.0.85"] <= 0.95 * 200  # FEEDER-03 outage
    assert len(trace.roots("CreatedMeterReadings")) == 4  # 2,000 meters in parts of 500


def test_outage_storm_every_last_gasp_once_and_restorations_after() -> None:
    sim, trace = run("outage-storm", 3600, "fleet.meters=5000")
    evs = trace.events()
    gasps = [(t, m) for t, k, m in evs if k == "3.26.0.85"]
    restores = [(t, m) for t, k, m in evs if k == "3.26.0.216"]
    assert len({m for _, m in gasps}) == len(gasps)  # once each
    assert 0.6 * 5000 <= len(gasps) <= 0.8 * 5000
    assert sorted(m for _, m in restores) == sorted(sim.fleet.mrids(range(5000)))
    assert max(t for t, _ in gasps) < min(t for t, _ in restores)
    assert min(t for t, _ in restores) >= 60 + 1800
    # The outage shows in the data: intervals wholly inside it (00:15-00:30) read zero, and the
    # one in which power returned (00:30-00:45) has consumption again.
    start = sim.clock.to_unix(60) // 900 * 900 + 900
    values = sim.readings.intervals(sim.fleet.group_members(sim.fleet.group_by_name("FEEDER-01"))[:50],
                                    "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0", start, 2)
    assert not values[:, 0].any() and values[:, 1].all()


def test_load_scenario_pushes_backfills_and_flags_gaps() -> None:
    sim, trace = run("load", 86_400, "fleet.meters=5000", "fleet.feeders=5", "fleet.meters_per_collector=1000")
    pushes = trace.roots("CreatedMeterReadings")
    meters = Counter(m.findtext(f"{MR}Meter/{MR}mRID") for _, r in pushes for m in r.iterfind(f".//{MR}MeterReading"))
    assert set(meters) == set(sim.fleet.mrids(range(5000))) and set(meters.values()) == {1}  # backfill included
    qualities = [q.get("ref") for _, r in pushes for q in r.iterfind(f".//{MR}ReadingQualityType")]
    assert qualities and set(qualities) <= {"2.5.259", "2.8.0"}


def test_training_runs_its_explained_timeline() -> None:
    sim, trace = run("training", 1800)
    kinds = Counter(k for _, k, _ in trace.events())
    assert kinds["3.31.0.68"] == 10 and kinds["3.31.0.42"] == 10
    assert kinds["3.26.0.216"] == 10
    assert [w for _, w in sim.timeline.done][-1] == "push hourly-registers"


def test_timeouts_scenario_faults_some_requests() -> None:
    sim, trace = run("timeouts", 0)
    import asyncio

    from tests.headend.requests import get_profile, soap, typed_get

    answers = []
    for k in range(40):
        body = soap(typed_get(get_profile(meters=[sim.fleet.mrid(k)]), reply_address="http://127.0.0.1:9/r"))
        answers.append(asyncio.run(sim.soap.handle("GetMeterReadings", None, "text/xml", body)))
    sim.env.run(until=sim.env.now + 7200)
    per_request = Counter(p.correlation_id for _, p in trace.sent)
    assert any(a.status == 500 or a.reset for a in answers) or len(per_request) < 40  # some requests misbehave
    assert any(n > 1 for n in per_request.values())  # duplicates

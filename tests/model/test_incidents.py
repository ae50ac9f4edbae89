"""Incidents: outage arrivals and their effects on supply, comms and events; rated events; storms."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import simpy

from simulator.model.clock import SimClock
from simulator.model.comms import (
    OUTCOME_OK,
    OUTCOME_TIMEOUT,
    CommClassSpec,
    CommConfig,
    CommModel,
    LatencySpec,
)
from simulator.model.events import Event, EventLog
from simulator.model.fleet import Fleet, FleetConfig
from simulator.model.incidents import (
    LAST_GASP,
    POWER_RESTORED,
    EventRate,
    IncidentConfig,
    IncidentModel,
    OutageConfig,
)
from simulator.model.readings import Readings
from simulator.model.relay import CONNECTED, DISCONNECTED, RelayConfig, RelayModel
from simulator.model.supply import SupplyHistory
from simulator.timeutil import parse_datetime

EPOCH = parse_datetime("2026-03-02T00:00:00Z")
D15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
DREG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
TAMPER, LOW_BATTERY = "3.12.43.257", "3.2.22.150"
DAY = 86_400.0


@dataclass
class World:
    env: simpy.Environment
    fleet: Fleet
    clock: SimClock
    supply: SupplyHistory
    relay: RelayModel
    comms: CommModel
    events: EventLog
    model: IncidentModel
    batches: list[tuple[float, list[Event]]] = field(default_factory=list)

    def reported(self) -> list[Event]:
        return [e for _, batch in self.batches for e in batch]


NO_INCIDENTS = IncidentConfig()


def world(config: IncidentConfig = NO_INCIDENTS, seed: int = 3, size: int = 2000, feeders: int = 20) -> World:
    env = simpy.Environment()
    fleet = Fleet(FleetConfig(seed=seed, size=size, feeders=feeders, meters_per_collector=50))
    clock = SimClock(env, EPOCH)
    supply = SupplyHistory()
    relay = RelayModel(fleet, RelayConfig(failure_probability=0.0), supply)
    rf = CommClassSpec("rf", LatencySpec("fixed", value_s=2.0), success=1.0, retries=0)
    comms = CommModel(fleet, CommConfig((rf,), (("rf", 1.0),)))
    events = EventLog()
    batches: list[tuple[float, list[Event]]] = []
    model = IncidentModel(env, fleet, clock, supply, relay, comms, events, config,
                          lambda evs: batches.append((env.now, evs)))
    return World(env, fleet, clock, supply, relay, comms, events, model, batches)


def keyed(events: list[Event]) -> list[tuple[int, int, str, tuple[tuple[str, str], ...]]]:
    return [(e.meter, e.t, e.event_type, e.details) for e in events]


# -- unplanned outages ----------------------------------------------------------------------------

def test_outage_arrivals_groups_durations_and_last_gasps_follow_the_config() -> None:
    cfg = OutageConfig(rate_per_group_per_day=0.5, duration_median_s=600.0, duration_sigma=1.0,
                       last_gasp_fraction=0.8)
    w = world(IncidentConfig(outages=cfg))
    w.model.start()
    days = 200
    w.env.run(until=days * DAY)
    outs = w.model.outages
    expected = 0.5 * 20 * days  # 2000; Poisson sd ~45
    assert abs(len(outs) - expected) < 4 * math.sqrt(expected)
    per_group = np.unique([o.group for o in outs], return_counts=True)[1]
    assert len(per_group) == 20 and np.all(np.abs(per_group - 100) < 40)
    assert {o.origin for o in outs} == {"unplanned"} and [o.seq for o in outs] == list(range(len(outs)))
    durations = np.array([o.end_s - o.start_s for o in outs])
    assert np.median(durations) == pytest.approx(600.0, rel=0.1)
    assert np.std(np.log(durations)) == pytest.approx(1.0, rel=0.1)
    gaps = np.diff([o.start_s for o in outs])
    assert np.mean(gaps) == pytest.approx(DAY / 10, rel=0.08)
    lost = sum(o.lost_power for o in outs)
    assert sum(o.last_gasps for o in outs) / lost == pytest.approx(0.8, abs=0.01)
    # every meter that lost power got it back (those still dark at the horizon excepted)
    finished = [o for o in outs if o.end_s <= days * DAY]
    assert sum(o.restored for o in finished) == sum(o.lost_power for o in finished)
    gasps = w.events.query(None, [LAST_GASP], None, None)
    assert len(gasps) == sum(o.last_gasps for o in outs)


def test_collector_scope_hits_whole_collectors() -> None:
    w = world(IncidentConfig(outages=OutageConfig(rate_per_group_per_day=1.0, scope="collector",
                                                  duration_median_s=60.0, last_gasp_fraction=1.0)))
    w.model.start()
    w.env.run(until=5 * DAY)
    outs = w.model.outages
    assert abs(len(outs) - 200) < 60  # 40 collectors x 5 days
    assert all(o.group is not None and o.group.startswith("COLLECTOR-") and o.meters == 50 for o in outs)


# -- one outage, end to end -----------------------------------------------------------------------

def test_commanded_outage_last_gasps_restorations_and_supply() -> None:
    w = world(IncidentConfig(outages=OutageConfig(last_gasp_fraction=0.5)))
    meters = np.arange(100, 400)
    w.env.run(until=1000)
    w.model.outage(meters, 1800.0, reason="timeline")
    t0, t1 = EPOCH + 1000, EPOCH + 2800
    assert w.model.under_outage[meters].all() and w.model.under_outage.sum() == 300
    w.env.run(until=5000)
    assert not w.model.under_outage.any()
    gasps = w.events.query(None, [LAST_GASP], None, None)
    restored = w.events.query(None, [POWER_RESTORED], None, None)
    assert 100 < len(gasps) < 200 and {e.t for e in gasps} == {t0}
    assert sorted(e.meter for e in restored) == meters.tolist() and {e.t for e in restored} == {t1}
    assert {e.details for e in gasps + restored} == {(("Reason", "timeline"),)}
    # reported in one batch each, when they happened, and exactly what the log holds
    assert [(now, len(b)) for now, b in w.batches] == [(1000, len(gasps)), (2800, 300)]
    assert keyed(w.reported()) == keyed(gasps + restored)
    assert all(w.supply.periods(m) == [(t0, t1)] for m in meters.tolist())
    assert w.supply.periods(99) == [] and w.supply.periods(400) == []
    rec = w.model.outages[0]
    assert (rec.origin, rec.seq, rec.group, rec.meters, rec.lost_power, rec.restored) == (
        "commanded", 0, None, 300, 300, 300)


def test_relay_and_outage_combine() -> None:
    w = world()
    stays_off, connected_during, disconnected_during, plain = 10, 11, 12, 13
    r = w.relay
    r.operate([stays_off, connected_during], "disconnect", EPOCH + 100, key=1)
    w.env.run(until=1000)
    w.model.outage([stays_off, connected_during, disconnected_during, plain], 1000.0)
    w.env.run(until=1200)
    assert r.operate([connected_during], "connect", EPOCH + 1200, key=2).ok.all()
    assert r.operate([disconnected_during], "disconnect", EPOCH + 1200, key=3).ok.all()
    assert r.state[[connected_during, disconnected_during]].tolist() == [CONNECTED, DISCONNECTED]
    assert w.supply.is_off([connected_during], EPOCH + 1500).all()  # the grid is still down
    w.env.run(until=3000)
    assert w.supply.periods(stays_off) == [(EPOCH + 100, None)]
    assert w.supply.periods(connected_during) == [(EPOCH + 100, EPOCH + 2000)]
    assert w.supply.periods(disconnected_during) == [(EPOCH + 1000, None)]
    assert w.supply.periods(plain) == [(EPOCH + 1000, EPOCH + 2000)]
    # the meters themselves lost and regained grid power whatever their relay did
    restored = w.events.query(None, [POWER_RESTORED], None, None)
    assert sorted(e.meter for e in restored) == [10, 11, 12, 13]
    # customer closing during an outage waits for the grid too
    r.operate([stays_off], "arm", EPOCH + 3000, key=4)
    w.model.outage([stays_off], 500.0)
    r.customer_close([stays_off], EPOCH + 3100)
    assert w.supply.is_off([stays_off], EPOCH + 3200).all()
    w.env.run(until=4000)
    assert w.supply.periods(stays_off) == [(EPOCH + 100, EPOCH + 3500)]


def test_overlapping_outages_count_as_one_loss_of_power() -> None:
    w = world(IncidentConfig(outages=OutageConfig(last_gasp_fraction=1.0)))
    w.model.outage(np.arange(0, 10), 1000.0)
    w.env.run(until=500)
    w.model.outage(np.arange(5, 15), 1000.0)
    assert w.relay.outages[[0, 5, 10]].tolist() == [1, 2, 1]
    w.env.run(until=3000)
    gasps = w.events.query(None, [LAST_GASP], None, None)
    assert sorted(e.meter for e in gasps) == list(range(15))  # no second gasp for meters 5..9
    restored = {e.meter: e.t - EPOCH for e in w.events.query(None, [POWER_RESTORED], None, None)}
    assert restored == {**dict.fromkeys(range(5), 1000), **dict.fromkeys(range(5, 15), 1500)}
    assert w.supply.periods(7) == [(EPOCH, EPOCH + 1500)]
    assert [(o.lost_power, o.restored) for o in w.model.outages] == [(10, 5), (5, 10)]


def test_meters_are_unreachable_during_the_outage_only() -> None:
    w = world()
    hit, other = np.arange(200, 260), np.arange(300, 320)
    w.env.run(until=100)
    w.model.outage(hit, 600.0)
    inside = w.comms.plan(np.concatenate([hit, other]), 400.0, key=9)
    assert (inside.outcome[:60] == OUTCOME_TIMEOUT).all() and (inside.outcome[60:] == OUTCOME_OK).all()
    assert (w.comms.plan(hit, 700.0, key=9).outcome == OUTCOME_OK).all()  # window is [100, 700)
    assert (w.comms.plan(hit, 99.0, key=9).outcome == OUTCOME_OK).all()


def test_unplanned_outage_makes_its_group_unreachable() -> None:
    w = world(IncidentConfig(outages=OutageConfig(rate_per_group_per_day=1.0, duration_median_s=3600.0)))
    w.model.start()
    w.env.run(until=DAY)
    o = w.model.outages[0]
    group = w.fleet.group_by_name(o.group or "")
    assert group is not None
    members = w.fleet.group_members(group)
    mid = (o.start_s + o.end_s) / 2
    # Plans are made at the current sim time (expired cohorts are pruned), so replay the same
    # seed up to the middle of that outage and plan there.
    again = world(IncidentConfig(outages=OutageConfig(rate_per_group_per_day=1.0, duration_median_s=3600.0)))
    again.model.start()
    assert (again.comms.plan(members, o.start_s - 1, key=1).outcome == OUTCOME_OK).all()
    again.env.run(until=mid)
    assert (again.comms.plan(members, mid, key=1).outcome == OUTCOME_TIMEOUT).all()


def test_readings_show_no_consumption_during_an_outage() -> None:
    w = world()
    readings, plain = Readings(w.fleet, w.supply), Readings(w.fleet)
    meters = np.arange(0, 40)
    w.env.run(until=3600)
    w.model.outage(meters, 1800.0)
    w.env.run(until=4 * 3600)
    got = readings.intervals(meters, D15, EPOCH, 12)
    ref = plain.intervals(meters, D15, EPOCH, 12)
    assert (got[:, 4:6] == 0).all() and ref[:, 4:6].sum() > 0
    assert np.array_equal(np.delete(got, [4, 5], axis=1), np.delete(ref, [4, 5], axis=1))
    start, end = readings.register(meters, DREG, EPOCH + 3600), readings.register(meters, DREG, EPOCH + 5400)
    assert np.array_equal(start, end)
    assert (readings.register(meters, DREG, EPOCH + 7200) > end).any()
    untouched = np.arange(40, 60)
    assert np.array_equal(readings.intervals(untouched, D15, EPOCH, 12), plain.intervals(untouched, D15, EPOCH, 12))


# -- rated events and storms ----------------------------------------------------------------------

def test_rated_events_follow_their_rates_per_class() -> None:
    rates = (EventRate(TAMPER, {"residential": 0.2, "commercial": 1.0}), EventRate(LOW_BATTERY, {"prosumer": 0.5}))
    w = world(IncidentConfig(rates=rates), size=3000)
    w.model.start()
    days = 10
    w.env.run(until=days * DAY)
    counts = dict(zip(w.fleet.classes, w.fleet.class_counts, strict=True))
    cls = w.fleet.class_index
    tamper = w.events.query(None, [TAMPER], None, None)
    by_class = np.bincount(cls[[e.meter for e in tamper]], minlength=3)
    for k, (name, rate) in enumerate((("residential", 0.2), ("commercial", 1.0), ("prosumer", 0.0))):
        expected = counts[name] * rate * days
        assert abs(by_class[k] - expected) <= 4 * math.sqrt(expected) + 1e-9, name
    low = w.events.query(None, [LOW_BATTERY], None, None)
    assert set(cls[[e.meter for e in low]].tolist()) == {2}
    assert abs(len(low) - counts["prosumer"] * 0.5 * days) <= 4 * math.sqrt(counts["prosumer"] * 0.5 * days)
    # batches: one second each, reported once they happened, exactly the logged events
    for now, batch in w.batches:
        assert len({(e.t, e.event_type) for e in batch}) == 1 and batch[0].t <= EPOCH + now < batch[0].t + 1
    assert sorted(keyed(w.reported())) == sorted(keyed(tamper + low))
    # each residential meter's count is Poisson(2): spread over the class, not a few favourites
    per_meter = np.bincount([e.meter for e in tamper], minlength=w.fleet.size)[cls == 0]
    assert per_meter.mean() == pytest.approx(2.0, rel=0.1)
    assert per_meter.var() / per_meter.mean() == pytest.approx(1.0, abs=0.15)
    assert (per_meter == 0).mean() == pytest.approx(math.exp(-2.0), abs=0.03)


def test_storm_gives_each_meter_one_event_inside_the_window() -> None:
    w = world()
    meters = np.arange(500, 1500)
    w.env.run(until=100.5)
    w.model.storm(np.concatenate([meters, meters[:10]]), TAMPER, within_s=60.0)
    w.env.run(until=1000)
    got = w.events.query(None, [TAMPER], None, None)
    assert sorted(e.meter for e in got) == meters.tolist()
    times = np.array([e.t for e in got]) - EPOCH
    assert times.min() >= 100 and times.max() <= 160 and len(np.unique(times)) > 50
    assert len(w.batches) == len(np.unique(times))
    for now, batch in w.batches:
        assert len({e.t for e in batch}) == 1 and batch[0].t <= EPOCH + now < batch[0].t + 1
    assert keyed(w.reported()) == keyed(sorted(got, key=lambda e: e.seq))


def test_same_seed_same_incidents_whatever_the_requests() -> None:
    cfg = IncidentConfig(outages=OutageConfig(rate_per_group_per_day=2.0, duration_median_s=900.0),
                         rates=(EventRate(TAMPER, {"residential": 0.5}),))

    def run(seed: int, busy: bool) -> list[tuple[int, int, str, tuple[tuple[str, str], ...]]]:
        w = world(cfg, seed=seed)
        w.model.start()
        readings = Readings(w.fleet, w.supply)
        for hour in range(1, 72):
            w.env.run(until=hour * 3600)
            if busy:  # requests in between must not move any incident
                w.comms.plan(np.arange(0, 2000, 7), w.env.now, key=hour)
                readings.intervals(np.arange(0, 50), D15, EPOCH, 4 * hour)
            if hour == 30:
                w.model.storm(np.arange(0, 300), LOW_BATTERY, 600.0)
        return keyed(w.reported())

    a = run(8, busy=False)
    assert len(a) > 100 and {LAST_GASP, POWER_RESTORED, TAMPER, LOW_BATTERY} <= {k[2] for k in a}
    assert run(8, busy=True) == a
    assert run(9, busy=False) != a


def test_bad_configs_and_calls_are_refused() -> None:
    with pytest.raises(ValueError, match="scope"):
        world(IncidentConfig(outages=OutageConfig(scope="substation")))
    with pytest.raises(ValueError, match="last_gasp_fraction"):
        world(IncidentConfig(outages=OutageConfig(last_gasp_fraction=1.5)))
    with pytest.raises(ValueError, match="unknown meter class"):
        world(IncidentConfig(rates=(EventRate(TAMPER, {"industrial": 1.0}),)))
    w = world()
    with pytest.raises(ValueError, match="duration"):
        w.model.outage([1], 0.0)
    with pytest.raises(IndexError):
        w.model.outage([w.fleet.size], 10.0)
    assert not w.model.under_outage.any() and w.model.outages == []
    w.model.outage([], 10.0)  # nobody: nothing happens, nothing breaks
    w.env.run(until=20)
    assert len(w.events) == 0 and w.model.outages[0].meters == 0
    w.model.start()
    with pytest.raises(ValueError, match="started"):
        w.model.start()

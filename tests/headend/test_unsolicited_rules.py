"""Rules of unsolicited traffic pinned after review."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from simulator.app import Simulator
from simulator.control_api import ControlApi
from simulator.fastrun import parse_duration
from simulator.headend.timeline import Action
from simulator.scenario import scenario_from_mapping

from .requests import get_events, get_profile, soap, typed_get

EV = "{http://iec.ch/TC57/2011/EndDeviceEvents#}"


def _sim(**raw: object) -> Simulator:
    base: dict = {"seed": 3, "fleet": {"meters": 400}, "clock": {"start": "2026-03-10T00:00:00Z"},
                  "relay": {"failure_probability": 0.3}}
    base.update(raw)
    return Simulator(scenario_from_mapping(base, "<t>"), run_id="t")


def _events(sim: Simulator) -> list[tuple[int, int, str]]:
    return [(e.t, e.meter, e.event_type) for e in sim.events.query(None, None, None, None)]


def test_timeline_controls_do_not_depend_on_mdms_requests_in_between() -> None:
    timeline = [{"at_s": 60, "action": "disconnect", "group": "FEEDER-02"}]
    quiet = _sim(timeline=timeline)
    quiet.env.run(until=900)
    busy = _sim(timeline=timeline)
    busy.env.run(until=10)
    body = soap(typed_get(get_profile(meters=[busy.fleet.mrid(1)])))
    asyncio.run(busy.soap.handle("GetMeterReadings", None, "text/xml", body))
    busy.env.run(until=900)
    assert _events(quiet) == _events(busy) and any(k == "3.31.0.84" for _, _, k in _events(quiet))


def test_events_of_any_leading_type_digit_are_found_by_a_type_filter() -> None:
    sim = _sim(timeline=[{"at_s": 5, "action": "storm", "group": "FEEDER-01", "event_type": "0.12.43.257",
                          "within_s": 10}])
    sim.env.run(until=60)
    for asked in ("0.12.43.257", "3.12.43.257"):
        answer = asyncio.run(sim.soap.handle("GetEndDeviceEvents", None, "text/xml",
                                             soap(get_events(types=[asked]))))
        assert answer.body.count(b"3.12.43.257") == 40  # FEEDER-01 of 400 meters


def test_control_api_refuses_unknown_pushes_and_groups_with_a_clear_400() -> None:
    sim = _sim()
    api = ControlApi(sim.timeline)
    for body, words in ((b'{"action": "push", "push": "nope"}', "no push named"),
                        (b'{"action": "outage", "group": "FEEDER-99"}', "FEEDER-99"),
                        (b'{"action": "fly"}', "action")):
        answer = asyncio.run(api.control(body))
        assert answer.status == 400 and words in json.loads(answer.body)["error"]


@pytest.mark.parametrize("text", ["inf", "nan", "-5", "0", "1e999"])
def test_until_must_be_a_positive_finite_duration(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_meters_without_power_raise_no_alarms() -> None:
    sim = _sim(incidents={"events": [{"event_type": "3.12.43.257",
                                      "per_meter_per_day": {"residential": 50.0, "commercial": 50.0,
                                                            "prosumer": 50.0}}]})
    dark = sim.fleet.group_members(sim.fleet.group_by_name("FEEDER-01"))
    sim.timeline.run(Action("outage", group="FEEDER-01", duration_s=3600))
    start = sim.clock.now_unix()
    sim.env.run(until=sim.env.now + 3000)
    during = [e for e in sim.events.query(dark, ["3.12.43.257"], start + 1, start + 3000)]
    others = sim.events.query(np.setdiff1d(np.arange(400), dark), ["3.12.43.257"], start + 1, start + 3000)
    assert during == [] and len(others) > 50


def test_a_comm_class_can_be_made_slow_from_the_timeline() -> None:
    sim = _sim()
    done = sim.timeline.run(Action("slow", comm_class="cellular", factor=1000.0, duration_s=3600))
    assert done == "comm class cellular slow for 3600 s"
    cellular = np.flatnonzero(sim.comms.comm_class == sim.comms.class_names.index("cellular"))
    mesh = np.flatnonzero(sim.comms.comm_class == sim.comms.class_names.index("rf_mesh"))
    slow = sim.comms.plan(cellular, sim.env.now, key=1)
    fast = sim.comms.plan(mesh, sim.env.now, key=1)
    assert np.median(slow.done_at - sim.env.now) > 10 * np.median(fast.done_at - sim.env.now)
    with pytest.raises(Exception, match="no comm class"):
        sim.timeline.run(Action("slow", comm_class="carrier-pigeon"))

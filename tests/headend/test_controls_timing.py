"""Controls act at the second each meter is reached: overlaps, outages, a full head-end, cancels."""

from __future__ import annotations

import numpy as np
from lxml import etree

from simulator.model.relay import CONNECTED, DISCONNECTED

from .requests import control, controls_request
from .test_controls import EV, MDMS, MSG, call, feeder, finals, new_sim, reply

SPREAD = {"classes": {"mesh": {"latency": {"kind": "uniform", "low_s": 1.0, "high_s": 100.0}, "success": 1.0,
                               "retries": 0}}}


def _last_event_by_meter(out) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    last: dict[str, tuple[str, str]] = {}
    for _, part in out.sent:
        root = etree.fromstring(part.body)
        for e in root.iterfind(f".//{EV}EndDeviceEvent"):
            meter, created = e.findtext(f"{EV}Assets/{EV}mRID"), e.findtext(f"{EV}createdDateTime")
            if meter not in last or created >= last[meter][0]:
                last[meter] = (created, e.find(f"{EV}EndDeviceEventType").get("ref"))
    return last


def test_overlapping_disconnect_and_connect_leave_state_equal_to_the_last_event() -> None:
    sim, out = new_sim(comms=SPREAD)
    call(sim, "ExecuteEndDeviceControls",
         controls_request("Create", [control("3.31.0.23", groups=["FEEDER-01"])], reply_address=MDMS))
    sim.env.run(until=3)
    call(sim, "ExecuteEndDeviceControls",
         controls_request("Create", [control("3.31.0.18", groups=["FEEDER-01"])], reply_address=MDMS,
                          correlation_id="ctl-2"))
    sim.env.run(until=600)
    assert len(finals(out)) == 2  # both controls finished
    last = _last_event_by_meter(out)
    members = feeder(sim)
    state = {sim.fleet.mrid(int(m)): int(sim.relay.state[m]) for m in members}
    assert len(last) == 100
    for mrid, (_, kind) in last.items():
        assert state[mrid] == (CONNECTED if kind == "3.31.0.42" else DISCONNECTED), (mrid, kind)
    for m in members[:10]:  # supply history moves forward only, and agrees with the relay
        assert sim.supply.is_off(np.array([m]), sim.clock.now_unix())[0] == (sim.relay.state[m] != CONNECTED)


def test_meters_reached_during_an_outage_do_not_act() -> None:
    sim, out = new_sim(comms=SPREAD)
    call(sim, "ExecuteEndDeviceControls",
         controls_request("Create", [control("3.31.0.23", groups=["FEEDER-01"])], reply_address=MDMS))
    sim.env.run(until=40)
    sim.incidents.outage(feeder(sim), 30.0, "test")
    sim.env.run(until=600)
    (final,) = finals(out)
    result, codes = reply(final)
    dark = [e for e in final.iterfind(f"{{*}}Reply/{MSG}Error") if "no power" in (e.findtext(f"{MSG}reason") or "")]
    assert result == "PARTIAL" and dark and set(codes) == {"4.1"}


def test_controls_due_when_the_head_end_is_full_are_reported_not_lost() -> None:
    sim, out = new_sim(comms=SPREAD, headend={"max_jobs_in_flight": 2, "max_queued_jobs": 3})
    items = [control("3.31.0.23", meters=[sim.fleet.mrid(i)], tracking=f"T{i}") for i in range(10)]
    status, root = call(sim, "ExecuteEndDeviceControls", controls_request("Create", items, reply_address=MDMS))
    assert status == 200 and reply(root)[0] == "OK"
    sim.env.run(until=3600)
    done = finals(out)
    assert len(done) == 10  # every accepted control ends with a final reply
    refused = [r for r in done if "3.2" in reply(r)[1]]
    assert len(refused) == 5 and all(reply(r)[0] == "FAILED" for r in refused)


def test_cancel_mid_way_closes_the_part_count_and_a_second_cancel_says_so() -> None:
    sim, out = new_sim(comms=SPREAD, replies={"part_size": 20})
    _, root = call(sim, "ExecuteEndDeviceControls",
                   controls_request("Create", [control("3.31.0.23", groups=["FEEDER-01"])], reply_address=MDMS))
    transaction = root.findtext(f"{{*}}Reply/{MSG}ID")
    sim.env.run(until=45)
    _, first = call(sim, "ExecuteEndDeviceControls", controls_request("Cancel", [], request_ids=[transaction]))
    assert reply(first) == ("OK", [])
    _, again = call(sim, "ExecuteEndDeviceControls", controls_request("Cancel", [], request_ids=[transaction]))
    assert reply(again) == ("FAILED", ["5.2"]) and "already cancelled" in again.findtext(f".//{MSG}reason")
    sim.env.run(until=600)
    indices = [etree.fromstring(p.body).findtext(f"{{*}}Header/{MSG}Property/{MSG}Value") for _, p in out.sent
               if etree.fromstring(p.body).tag.endswith("CreatedEndDeviceEvents")]
    k = len(indices)
    assert 1 <= k < 5 and indices[-1] == f"{k}/{k}" and all(i.endswith("/5") for i in indices[:-1])
    (final,) = finals(out)
    assert "6.5" in reply(final)[1]

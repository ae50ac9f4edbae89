"""The relay state machine: transitions, failures, customer closing, and what it does to data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.model.fleet import Fleet, FleetConfig
from simulator.model.readings import Readings
from simulator.model.relay import ARMED, CONNECTED, DISCONNECTED, RelayConfig, RelayModel
from simulator.model.supply import SupplyHistory
from simulator.timeutil import parse_datetime

D15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
DREG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
VOLT = "0.0.0.6.0.1.54.0.0.0.0.0.0.0.128.0.29.0"
T = parse_datetime("2026-04-14T10:00:00Z")
FLEET = Fleet(FleetConfig(seed=5, size=50_000))


def model(**kw: object) -> RelayModel:
    cfg = RelayConfig(**{"failure_probability": 0.0, **kw})  # type: ignore[arg-type]
    return RelayModel(FLEET, cfg, SupplyHistory())


def states(r: RelayModel, idx: list[int]) -> list[int]:
    return r.state[idx].tolist()


def test_state_is_one_byte_per_meter_and_starts_connected() -> None:
    r = model()
    assert r.state.dtype == np.uint8 and r.state.shape == (FLEET.size,)
    assert r.state.nbytes == FLEET.size
    assert not r.state.any()
    assert r.counts() == {"connected": FLEET.size, "disconnected": 0, "armed": 0}


def test_disconnect_then_connect() -> None:
    r = model()
    res = r.operate([3, 7], "disconnect", T, key=1)
    assert res.ok.tolist() == [True, True]
    assert res.state_before.tolist() == [CONNECTED] * 2 and res.state_after.tolist() == [DISCONNECTED] * 2
    assert np.isnan(res.customer_close_at).all()
    assert r.supply.periods(3) == [(T, None)]
    res = r.operate([7], "connect", T + 600, key=2)
    assert res.ok.tolist() == [True] and res.state_after.tolist() == [CONNECTED]
    assert r.supply.periods(7) == [(T, T + 600)] and r.supply.periods(3) == [(T, None)]
    assert states(r, [3, 7, 8]) == [DISCONNECTED, CONNECTED, CONNECTED]


@pytest.mark.parametrize("setting,ok", [("success", True), ("failure", False)])
def test_repeating_an_operation_follows_the_settings(setting: str, ok: bool) -> None:
    r = model(connect_when_connected=setting, disconnect_when_disconnected=setting)
    res = r.operate([1], "connect", T, key=1)
    assert res.ok.tolist() == [ok] and res.state_after.tolist() == [CONNECTED]
    assert r.supply.periods(1) == []
    r.operate([1], "disconnect", T + 10, key=2)
    res = r.operate([1], "disconnect", T + 20, key=3)
    assert res.ok.tolist() == [ok] and res.state_after.tolist() == [DISCONNECTED]
    assert r.supply.periods(1) == [(T + 10, None)]  # still the first period


def test_arming_and_customer_closing() -> None:
    r = model(customer_closes_probability=0.9, customer_delay_median_s=1800.0)
    idx = np.arange(0, 40_000, 2)
    r.operate(idx, "disconnect", T, key=1)
    res = r.operate(idx, "arm", T + 60, key=2)
    assert res.ok.all() and (res.state_after == ARMED).all()
    assert r.supply.is_off(idx, T + 61).all()  # armed: still no supply
    closes = ~np.isnan(res.customer_close_at)
    assert 0.88 < closes.mean() < 0.92
    delay = res.customer_close_at[closes] - (T + 60)
    assert delay.min() > 0
    assert 1700 < np.median(delay) < 1900
    # sigma 0.8: the 84th percentile is median * e^0.8
    assert 1800 * math.exp(0.8) * 0.92 < np.quantile(delay, 0.8413) < 1800 * math.exp(0.8) * 1.08
    # the customer closes some; a meter disconnected again meanwhile is not closed
    who = idx[closes][:10]
    r.operate(who[:2], "disconnect", T + 100, key=3)
    closed = r.customer_close(np.concatenate([who, [1]]), T + 200)
    assert closed.tolist() == [False, False, *([True] * 8), False]
    assert states(r, who.tolist()) == [DISCONNECTED] * 2 + [CONNECTED] * 8
    assert r.supply.periods(int(who[5])) == [(T, T + 200)]
    assert r.supply.periods(int(who[0])) == [(T, None)]


def test_arming_a_closed_or_armed_relay_changes_nothing() -> None:
    r = model(customer_closes_probability=1.0)
    res = r.operate([4], "arm", T, key=1)
    assert res.ok.tolist() == [True] and res.state_after.tolist() == [CONNECTED]
    assert np.isnan(res.customer_close_at).all() and r.supply.periods(4) == []
    r.operate([4], "disconnect", T + 1, key=2)
    first = r.operate([4], "arm", T + 2, key=3)
    assert not np.isnan(first.customer_close_at[0])
    again = r.operate([4], "arm", T + 3, key=4)
    assert again.ok.tolist() == [True] and again.state_after.tolist() == [ARMED]
    assert np.isnan(again.customer_close_at[0])


def test_connect_and_disconnect_of_an_armed_relay() -> None:
    r = model()
    r.operate([9, 10], "disconnect", T, key=1)
    r.operate([9, 10], "arm", T + 5, key=2)
    assert r.operate([9], "connect", T + 10, key=3).state_after.tolist() == [CONNECTED]
    assert r.supply.periods(9) == [(T, T + 10)]
    assert r.operate([10], "disconnect", T + 10, key=4).state_after.tolist() == [DISCONNECTED]
    assert r.supply.periods(10) == [(T, None)]


def test_failures_leave_state_and_supply_alone() -> None:
    cohort = (11, 12, 13)
    r = RelayModel(FLEET, RelayConfig(failure_probability=0.3, failure_meters=cohort), SupplyHistory())
    idx = np.arange(20_000)
    res = r.operate(idx, "disconnect", T, key=77)
    assert 0.28 < (~res.ok).mean() < 0.32
    assert not res.ok[list(cohort)].any()
    failed = idx[~res.ok]
    assert (r.state[failed] == CONNECTED).all() and (res.state_after[~res.ok] == CONNECTED).all()
    assert not r.supply.is_off(failed, T + 1).any()
    assert r.supply.is_off(idx[res.ok], T + 1).all()
    # a cohort fails always, even with no random failures
    sure = RelayModel(FLEET, RelayConfig(failure_probability=0.0, failure_meters=cohort), SupplyHistory())
    assert sure.operate([11, 14], "disconnect", T, key=1).ok.tolist() == [False, True]


def test_draws_depend_only_on_seed_key_action_and_meter() -> None:
    cfg = RelayConfig(failure_probability=0.5, customer_closes_probability=0.5)
    idx = np.arange(1000)

    def run(order: np.ndarray, key: int) -> tuple[np.ndarray, np.ndarray]:
        r = RelayModel(FLEET, cfg, SupplyHistory())
        r.state[:] = DISCONNECTED
        res = r.operate(order, "arm", T, key)
        back = np.argsort(order)
        return res.ok[back], res.customer_close_at[back]

    ok, at = run(idx, 5)
    ok2, at2 = run(idx[::-1].copy(), 5)
    assert np.array_equal(ok, ok2) and np.array_equal(at, at2, equal_nan=True)
    sub = RelayModel(FLEET, cfg, SupplyHistory())
    sub.state[:] = DISCONNECTED
    part = sub.operate(idx[100:110], "arm", T, 5)
    assert np.array_equal(part.ok, ok[100:110])
    other, _ = run(idx, 6)
    assert 0.3 < np.mean(other != ok) < 0.7
    # another action with the same key draws independently
    r = RelayModel(FLEET, cfg, SupplyHistory())
    disc = r.operate(idx, "disconnect", T, 5).ok
    assert 0.3 < np.mean(disc != ok) < 0.7


def test_contract_errors() -> None:
    r = model()
    with pytest.raises(ValueError, match="twice"):
        r.operate([1, 1], "disconnect", T, key=1)
    with pytest.raises(ValueError, match="action"):
        r.operate([1], "open", T, key=1)
    with pytest.raises(IndexError):
        r.operate([FLEET.size], "connect", T, key=1)
    for bad in ({"failure_probability": 1.5}, {"connect_when_connected": "maybe"},
                {"customer_delay_median_s": 0.0}, {"failure_meters": (FLEET.size,)},
                {"customer_closes_probability": -0.1}):
        with pytest.raises(ValueError):
            RelayModel(FLEET, RelayConfig(**bad), SupplyHistory())
    assert len(r.operate(np.zeros(0, dtype=np.int64), "connect", T, key=1)) == 0
    # an operation dated before a meter's last switching changes nothing at all
    r.operate([2], "disconnect", T, key=2)
    with pytest.raises(ValueError, match="append-only"):
        r.operate([5, 2], "connect", T - 1, key=3)
    assert states(r, [5, 2]) == [CONNECTED, DISCONNECTED] and r.supply.periods(2) == [(T, None)]


def test_a_disconnect_shows_in_the_readings() -> None:
    supply = SupplyHistory()
    r = RelayModel(FLEET, RelayConfig(failure_probability=0.0), supply)
    readings = Readings(FLEET, supply)
    plain = Readings(FLEET)
    idx = np.arange(20)
    t_off, t_on = T + 450, T + 4 * 900
    r.operate(idx, "disconnect", t_off, key=1)
    r.operate(idx, "connect", t_on, key=2)
    got = readings.intervals(idx, D15, T, 6)
    raw = plain.intervals(idx, D15, T, 6)
    assert np.array_equal(got[:, 0], plain.register(idx, DREG, t_off) - plain.register(idx, DREG, T))
    assert not got[:, 1:4].any()
    assert np.array_equal(got[:, 4:], raw[:, 4:])
    assert (readings.instant(idx, VOLT, T + 1800) == 0).all()
    assert (readings.instant(idx, VOLT, t_on) > 0).all()
    assert np.array_equal(readings.register(idx, DREG, t_on), readings.register(idx, DREG, t_off))

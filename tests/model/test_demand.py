"""Maximum demand: the highest 15-minute average since the later of the last reset and the month start."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.model.demand import NO_RESET, DemandResets, local_month_start
from simulator.model.fleet import Fleet, FleetConfig
from simulator.model.readings import Readings
from simulator.model.readingtypes import METER_CLASSES, class_reading_types, reading_type
from simulator.model.supply import SupplyHistory
from simulator.timeutil import parse_datetime

MD = "8.8.2.6.1.1.8.0.0.0.0.0.0.0.0.3.38.0"
D15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
MONTH = parse_datetime("2026-03-01T00:00:00Z")
FLEET = Fleet(FleetConfig(seed=21, size=2000))
IDX = np.concatenate([np.flatnonzero(FLEET.class_index == k)[:4] for k in range(3)])


def brute(r: Readings, idx: np.ndarray, start: int, t: int) -> np.ndarray:
    """max over intervals ending in (start, t] of Wh * 4, from the 15-minute readings."""
    first = start - start % 900
    n = (t - first) // 900
    if n <= 0:
        return np.zeros(len(idx), dtype=np.int64)
    v = r.intervals(idx, D15, first, n)
    ends = first + 900 * (np.arange(n) + 1)
    v[:, ends <= start] = 0
    return v.max(axis=1) * 4


def test_the_reading_type_code_and_where_it_is_recorded() -> None:
    spec = reading_type(MD)
    assert spec is not None
    fields = [int(x) for x in MD.split(".")]
    assert len(fields) == 18
    # macroPeriod billingPeriod, aggregate maximum, 15-min, indicating, forward, electricity,
    # demand, multiplier k, unit W
    assert (fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6]) == (8, 8, 2, 6, 1, 1, 8)
    assert (fields[15], fields[16]) == (3, 38) and not any(fields[7:15]) and fields[17] == 0
    assert spec.kind == "register" and spec.decimals == 3 and spec.quantity == "demand"
    assert all(MD in class_reading_types(c) for c in METER_CLASSES)
    assert FLEET.has_reading_type(IDX, MD).all()


@pytest.mark.parametrize("t", [
    MONTH + 3 * 86400 + 5 * 3600,  # aligned
    MONTH + 9 * 86400 + 123,  # mid-interval: only completed intervals count
    MONTH + 30 * 86400 + 86399,  # the month's last second
])
def test_max_demand_is_the_highest_interval_since_the_month_began(t: int) -> None:
    r = Readings(FLEET)
    got = r.register(IDX, MD, t)
    assert np.array_equal(got, brute(r, IDX, MONTH, t))
    assert got.min() > 0 and got.dtype == np.int64


def test_a_new_month_starts_from_zero() -> None:
    r = Readings(FLEET)
    assert not r.register(IDX, MD, MONTH).any()
    assert not r.register(IDX, MD, MONTH + 899).any()
    first = r.intervals(IDX, D15, MONTH, 1)[:, 0] * 4
    assert np.array_equal(r.register(IDX, MD, MONTH + 900), first)
    assert (r.register(IDX, MD, MONTH - 1) >= first).all()


def test_demand_never_falls_within_a_period() -> None:
    r = Readings(FLEET)
    values = np.stack([r.register(IDX, MD, MONTH + k * 7 * 3600) for k in range(1, 100)])
    assert (np.diff(values, axis=0) >= 0).all()


def test_a_reset_starts_a_new_period() -> None:
    resets = DemandResets()
    r = Readings(FLEET, demand=resets)
    reset_at = MONTH + 12 * 86400 + 400  # mid-interval: the running interval counts when it ends
    resets.reset(IDX[:3], reset_at)
    t = MONTH + 14 * 86400
    got = r.register(IDX, MD, t)
    assert np.array_equal(got[:3], brute(r, IDX[:3], reset_at, t))
    assert np.array_equal(got[3:], brute(r, IDX[3:], MONTH, t))
    assert (got[:3] <= Readings(FLEET).register(IDX[:3], MD, t)).all()
    # just after the reset only the interval running at the reset counts, once it has ended
    assert not r.register(IDX[:3], MD, reset_at + 100).any()
    end = reset_at - reset_at % 900 + 900
    assert np.array_equal(r.register(IDX[:3], MD, end), r.intervals(IDX[:3], D15, end - 900, 1)[:, 0] * 4)
    # reads before the reset are unchanged; a later month forgets the reset
    assert np.array_equal(r.register(IDX[:3], MD, reset_at - 1), Readings(FLEET).register(IDX[:3], MD, reset_at - 1))
    april = parse_datetime("2026-04-05T00:00:00Z")
    assert np.array_equal(r.register(IDX, MD, april), Readings(FLEET).register(IDX, MD, april))


def test_time_without_supply_lowers_demand() -> None:
    supply = SupplyHistory()
    r = Readings(FLEET, supply)
    supply.off(IDX[:2], MONTH)
    t = MONTH + 10 * 86400
    assert not r.register(IDX[:2], MD, t).any()
    supply.on(IDX[:2], MONTH + 5 * 86400)
    assert np.array_equal(r.register(IDX, MD, t), brute(r, IDX, MONTH, t))


@pytest.mark.parametrize("offset", [330, -480])
def test_the_month_is_local(offset: int) -> None:
    fleet = Fleet(FleetConfig(seed=21, size=2000, utc_offset_minutes=offset))
    r = Readings(fleet)
    local_start = MONTH - offset * 60
    assert local_month_start(local_start + 5 * 86400, offset * 60) == local_start
    assert local_month_start(local_start - 1, offset * 60) == parse_datetime("2026-02-01T00:00:00Z") - offset * 60
    t = local_start + 2 * 86400 + 1234
    assert np.array_equal(r.register(IDX, MD, t), brute(r, IDX, local_start, t))


def test_a_large_batch_equals_single_meters() -> None:
    resets = DemandResets()
    r = Readings(FLEET, demand=resets)
    idx = np.arange(0, 2000, 3)
    resets.reset(idx[::5], MONTH + 3 * 86400 + 77)
    t = MONTH + 20 * 86400 + 5
    batch = r.register(idx, MD, t)
    for pos in (0, 1, 5, 100, len(idx) - 1):
        assert batch[pos] == r.register(idx[pos:pos + 1], MD, t)[0]


def test_demand_resets_bookkeeping() -> None:
    d = DemandResets()
    d.reset([1, 2], 100)
    d.reset([1], 300)
    d.reset([1], 200)  # out of order is kept sorted
    d.reset([1], 300)  # the same instant twice is one reset
    assert d.resets(1) == [100, 200, 300] and d.resets(2) == [100] and d.resets(3) == []
    assert d.last_reset([1, 2, 3, 1], 250).tolist() == [200, 100, NO_RESET, 200]
    assert d.last_reset([1], 99).tolist() == [NO_RESET]
    assert d.last_reset([1], 300).tolist() == [300]
    assert len(d) == 4

"""Readings with supply interruptions: exact, for any off periods (hypothesis-generated).

The reference is the unswitched reading R (a `Readings` without history): a meter that was off
during periods p meters E(a, b) - sum_p E(max(a, p.start), min(b, p.end)), E(a, b) = R(b) - R(a).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.model.fleet import Fleet, FleetConfig
from simulator.model.readings import Readings
from simulator.model.supply import SupplyHistory
from simulator.timeutil import parse_datetime

D15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
DREG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
R15 = "0.0.2.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0"
RREG = "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.3.72.0"
DDAY = "11.0.0.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
RDAY = "11.0.0.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0"
VOLT = "0.0.0.6.0.1.54.0.0.0.0.0.0.0.128.0.29.0"
DAY = 86_400
OFFSET_S = 90 * 60  # local days differ from UTC days, so daily values are not UTC-aligned
BASE = parse_datetime("2025-12-29T00:00:00Z") - OFFSET_S  # local midnight, near a year end

FLEET = Fleet(FleetConfig(seed=11, size=3000, utc_offset_minutes=90))
PLAIN = Readings(FLEET)
RES = int(np.flatnonzero(FLEET.class_index == 0)[0])
COM = int(np.flatnonzero(FLEET.class_index == 1)[0])
PRO = int(np.flatnonzero(FLEET.class_index == 2)[0])
PRO2 = int(np.flatnonzero(FLEET.class_index == 2)[1])
UNTOUCHED = int(np.flatnonzero(FLEET.class_index == 0)[1])
SWITCHED = (RES, COM, PRO)


def build(periods: dict[int, list[tuple[int, int | None]]]) -> tuple[SupplyHistory, Readings]:
    supply = SupplyHistory()
    events = sorted((t, meter, kind) for meter, ps in periods.items()
                    for s, e in ps for t, kind in ((s, "off"), (e, "on")) if t is not None)
    for t, meter, kind in events:
        (supply.off if kind == "off" else supply.on)([meter], t)
    return supply, Readings(FLEET, supply)


def off_energy(meter: int, reg: str, periods: list[tuple[int, int | None]], a: int, b: int) -> int:
    """sum_p E(max(a, s), min(b, e)) with the unswitched register."""
    lost = 0
    for s, e in periods:
        lo, hi = max(a, s), b if e is None else min(b, e)
        if lo < hi:
            lost += int(PLAIN.register([meter], reg, hi)[0] - PLAIN.register([meter], reg, lo)[0])
    return lost


class Unswitched:
    """R(t) of one meter from the plain model: aligned instants of a range from the prefix sums
    of its intervals (which test_readings proves equal to the register), others by a read."""

    def __init__(self, meter: int, reg: str, interval: str, start: int, count: int) -> None:
        self.meter, self.reg, self.start = meter, reg, start
        raw = PLAIN.intervals([meter], interval, start, count)[0]
        self.raw = raw
        self.at = np.concatenate([[0], np.cumsum(raw)]) + PLAIN.register([meter], reg, start)[0]

    def __call__(self, t: int) -> int:
        k, rest = divmod(t - self.start, 900)
        if not rest and 0 <= k < len(self.at):
            return int(self.at[k])
        return int(PLAIN.register([self.meter], self.reg, t)[0])

    def expected(self, periods: list[tuple[int, int | None]]) -> np.ndarray:
        out = self.raw.copy()
        end = self.start + len(out) * 900
        for s, e in periods:
            lo, hi = max(s, self.start), end if e is None else min(e, end)
            for k in range((lo - self.start) // 900, -(-(hi - self.start) // 900)):
                a, b = self.start + k * 900, self.start + (k + 1) * 900
                out[k] -= self(min(b, hi)) - self(max(a, lo))
        return out


# Instants inside a window: half aligned to 15 minutes, half anywhere, so periods start and end
# on boundaries, mid-interval and in the same interval.
def instants(span: int) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, span), st.integers(0, span // 900).map(lambda k: k * 900))


@st.composite
def histories(draw: st.DrawFn, span: int) -> dict[int, list[tuple[int, int | None]]]:
    out: dict[int, list[tuple[int, int | None]]] = {}
    for meter in SWITCHED:
        cuts = sorted(set(draw(st.lists(instants(span), min_size=0, max_size=6))))
        still_off = draw(st.booleans())
        if len(cuts) % 2 and not still_off:
            cuts = cuts[:-1]
        ps: list[tuple[int, int | None]] = [(BASE + cuts[k], BASE + cuts[k + 1]) for k in range(0, len(cuts) - 1, 2)]
        if len(cuts) % 2:
            ps.append((BASE + cuts[-1], None))
        out[meter] = ps
    return out


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(hist=histories(6 * DAY), first=st.integers(0, 4 * 96), count=st.integers(1, 2 * 96))
def test_intervals_lose_exactly_the_off_energy(hist: dict[int, list[tuple[int, int | None]]], first: int,
                                               count: int) -> None:
    _, r = build(hist)
    start = BASE + first * 900
    idx = np.array([*SWITCHED, UNTOUCHED])
    got = r.intervals(idx, D15, start, count)
    assert got.min() >= 0
    assert np.array_equal(got[-1], PLAIN.intervals([UNTOUCHED], D15, start, count)[0])  # no periods: as before
    for row, meter in enumerate(SWITCHED):
        periods = hist[meter]
        assert np.array_equal(got[row], Unswitched(meter, DREG, D15, start, count).expected(periods))
        for k in range(count):
            a, b = start + k * 900, start + (k + 1) * 900
            if any(s <= a and (e is None or e >= b) for s, e in periods):
                assert got[row, k] == 0
    # the export channel follows the same rule
    rec = r.intervals([PRO], R15, start, count)[0]
    assert np.array_equal(rec, Unswitched(PRO, RREG, R15, start, count).expected(hist[PRO]))


@FAST
@given(hist=histories(8 * DAY), t0=instants(8 * DAY), length=st.integers(0, 3 * DAY))
def test_registers_stop_while_off_and_match_the_intervals(hist: dict[int, list[tuple[int, int | None]]],
                                                          t0: int, length: int) -> None:
    _, r = build(hist)
    idx = np.array(SWITCHED)
    a = BASE + t0
    for t in (a, a + length):
        got = r.register(idx, DREG, t)
        for row, meter in enumerate(SWITCHED):
            expected = PLAIN.register([meter], DREG, t)[0] - off_energy(meter, DREG, hist[meter], -(1 << 40), t)
            assert got[row] == expected
    # aligned range: register difference == sum of the intervals between, on both channels
    lo = r.align_down(D15, a)
    hi = r.align_down(D15, a + length)
    n = (hi - lo) // 900
    total = r.intervals(idx, D15, lo, n).sum(axis=1)
    assert np.array_equal(r.register(idx, DREG, hi) - r.register(idx, DREG, lo), total)
    exported = r.intervals([PRO], R15, lo, n).sum(axis=1)
    assert np.array_equal(r.register([PRO], RREG, hi) - r.register([PRO], RREG, lo), exported)


@FAST
@given(hist=histories(5 * DAY), day=st.integers(0, 3), days=st.integers(1, 3))
def test_daily_values_are_the_sum_of_their_intervals(hist: dict[int, list[tuple[int, int | None]]], day: int,
                                                     days: int) -> None:
    _, r = build(hist)
    idx = np.array(SWITCHED)
    start = BASE + day * DAY
    daily = r.intervals(idx, DDAY, start, days)
    fifteen = r.intervals(idx, D15, start, days * 96).reshape(len(idx), days, 96).sum(axis=2)
    assert np.array_equal(daily, fifteen)
    assert daily.min() >= 0
    rec_daily = r.intervals([PRO], RDAY, start, days)
    rec = r.intervals([PRO], R15, start, days * 96).reshape(1, days, 96).sum(axis=2)
    assert np.array_equal(rec_daily, rec)


@settings(max_examples=15, deadline=None)
@given(hist=histories(500 * DAY))
def test_periods_spanning_months_and_years(hist: dict[int, list[tuple[int, int | None]]]) -> None:
    _, r = build(hist)
    idx = np.array(SWITCHED)
    days = 400
    daily = r.intervals(idx, DDAY, BASE + 30 * DAY, days)
    assert daily.min() >= 0
    raw = PLAIN.intervals(idx, DDAY, BASE + 30 * DAY, days)
    for row, meter in enumerate(SWITCHED):
        for k in range(0, days, 37):
            a = BASE + (30 + k) * DAY
            assert daily[row, k] == raw[row, k] - off_energy(meter, DREG, hist[meter], a, a + DAY)
    t0, t1 = BASE + 30 * DAY, BASE + (30 + days) * DAY
    assert np.array_equal(r.register(idx, DREG, t1) - r.register(idx, DREG, t0), daily.sum(axis=1))


def test_an_interval_inside_an_off_period_reads_zero_and_partial_ones_are_prorated() -> None:
    t = BASE + 2 * DAY + 10 * 900
    _, r = build({RES: [(t + 300, t + 3 * 900 + 600)]})
    got = r.intervals([RES], D15, t, 5)[0]
    raw = PLAIN.intervals([RES], D15, t, 5)[0]
    assert got[0] == PLAIN.register([RES], DREG, t + 300)[0] - PLAIN.register([RES], DREG, t)[0]
    assert got[1] == 0 and got[2] == 0
    assert got[3] == PLAIN.register([RES], DREG, t + 4 * 900)[0] - PLAIN.register([RES], DREG, t + 3 * 900 + 600)[0]
    assert got[4] == raw[4]
    # the register stands still during the period
    assert len({int(r.register([RES], DREG, t + 300 + s)[0]) for s in range(0, 3 * 900 + 301, 450)}) == 1


@pytest.mark.parametrize("cuts", [
    ((100, 700),),  # inside one interval
    ((0, 700),),  # from a boundary to mid-interval
    ((100, 900),),  # from mid-interval to a boundary
    ((0, 900),),  # exactly one interval
    ((100, 300), (500, 800)),  # two periods in one interval
    ((600, 1000), (1700, 2000)),  # each across a boundary, sharing the middle interval
    ((899, 901),),  # two seconds across a boundary
])
def test_period_shapes_around_boundaries(cuts: tuple[tuple[int, int], ...]) -> None:
    t = BASE + DAY + 40 * 900
    periods: list[tuple[int, int | None]] = [(t + a, t + b) for a, b in cuts]
    _, r = build({COM: periods})
    got = r.intervals([COM], D15, t - 900, 5)[0]
    assert np.array_equal(got, Unswitched(COM, DREG, D15, t - 900, 5).expected(periods))
    assert got[0] == PLAIN.intervals([COM], D15, t - 900, 1)[0, 0]


def test_an_open_period_zeroes_everything_after_it_started() -> None:
    t = BASE + DAY + 7 * 900 + 123
    supply, r = build({PRO: [(t, None)]})
    assert supply.is_off([PRO, RES], t + 10 * DAY).tolist() == [True, False]
    after = r.intervals([PRO], D15, t - 123 + 900, 96 * 3)
    assert not after.any()
    assert not r.intervals([PRO], R15, t - 123 + 900, 96 * 3).any()
    assert r.register([PRO], DREG, t + 5 * DAY)[0] == r.register([PRO], DREG, t)[0]
    assert r.register([PRO], DREG, t)[0] == PLAIN.register([PRO], DREG, t)[0]


def test_voltage_reads_zero_exactly_while_off() -> None:
    s, e = BASE + 1000, BASE + 5000
    _, r = build({RES: [(s, e)], PRO: [(s, None)]})
    for t, res_off, pro_off in ((s - 1, False, False), (s, True, True), (e - 1, True, True), (e, False, True)):
        v = r.instant([RES, PRO, UNTOUCHED], VOLT, t)
        assert (v[0] == 0) == res_off and (v[1] == 0) == pro_off
        assert v[2] == PLAIN.instant([UNTOUCHED], VOLT, t)[0] > 0


def test_a_group_switched_together_reads_like_its_members_alone() -> None:
    group = np.flatnonzero(FLEET.class_index == 0)[:60]
    s, e = BASE + DAY + 4321, BASE + DAY + 9876
    supply = SupplyHistory()
    supply.off(group, s)
    supply.on(group, e)
    r = Readings(FLEET, supply)
    together = r.intervals(group, D15, BASE + DAY, 96)
    alone = np.concatenate([r.intervals([m], D15, BASE + DAY, 96) for m in group[::-1]])[::-1]
    assert np.array_equal(together, alone)
    assert np.array_equal(r.register(group, DREG, e + 1), np.concatenate([r.register([m], DREG, e + 1) for m in group]))


def test_readings_follow_later_changes_to_the_history() -> None:
    supply = SupplyHistory()
    r = Readings(FLEET, supply)
    t = BASE + 3 * DAY
    before = r.intervals([COM], D15, t, 4)
    supply.off([COM], t)
    assert not r.intervals([COM], D15, t, 4).any()
    supply.on([COM], t + 1800)
    assert np.array_equal(r.intervals([COM], D15, t, 4)[0, 2:], before[0, 2:])


def test_supply_history_rules() -> None:
    h = SupplyHistory()
    assert h.off([1, 2], 100).tolist() == [True, True]
    assert h.off([1], 150).tolist() == [False]  # already off: same period
    assert h.on([1, 3], 200).tolist() == [True, False]
    assert h.periods(1) == [(100, 200)] and h.periods(2) == [(100, None)] and h.periods(3) == []
    with pytest.raises(ValueError, match="append-only"):
        h.off([1], 199)
    with pytest.raises(ValueError, match="append-only"):
        h.off([7, 1], 150)  # refused as a whole: meter 7 is not switched either
    assert h.periods(7) == [] and 7 not in h.meters().tolist()
    h.off([1], 300)
    h.on([1], 300)  # an empty period is dropped
    assert h.periods(1) == [(100, 200)]
    assert list(h.overlapping(1, 150, 400)) == [(150, 200)]
    assert list(h.overlapping(2, 0, 120)) == [(100, 120)]
    assert h.is_off([1, 2, 3, 1], 150).tolist() == [True, True, False, True]
    assert h.is_off([1], 200).tolist() == [False]
    assert h.meters().tolist() == [1, 2] and len(h) == 2


def test_register_at_per_meter_instants_equals_register() -> None:
    """The per-meter-instant register behind the period corrections gives the same integers."""
    rng = np.random.default_rng(4)
    for k in range(3):
        channel = PLAIN._channels[(k, "delivered")]
        m = np.flatnonzero(FLEET.class_index == k)[:40].astype(np.int64)
        t = rng.integers(parse_datetime("2019-06-01T00:00:00Z"), parse_datetime("2027-01-01T00:00:00Z"), len(m))
        t[::3] -= t[::3] % 900  # boundaries, including a day's first and last slots
        t[1] = BASE + DAY - 1
        t[2] = BASE
        t[4:12] = BASE + rng.integers(0, DAY, 8)  # several meters on one day
        m = np.concatenate([m, m[:12]])  # a meter at two instants, on the same day or not
        t = np.concatenate([t, t[:12] + rng.integers(-DAY, DAY, 12)])
        got = channel.register_at(m, t + OFFSET_S)
        expected = [channel.register(m[i:i + 1], int(t[i]) + OFFSET_S)[0] for i in range(len(m))]
        assert got.tolist() == expected

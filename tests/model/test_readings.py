"""Readings: exact register/interval/daily invariants, determinism, magnitudes and shapes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from simulator.model.fleet import Fleet, FleetConfig
from simulator.model.readings import Readings
from simulator.timeutil import parse_datetime

D15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
DREG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
R15 = "0.0.2.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0"
RREG = "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.3.72.0"
DDAY = "11.0.0.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
RDAY = "11.0.0.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0"
VOLT = "0.0.0.6.0.1.54.0.0.0.0.0.0.0.128.0.29.0"
DAY = 86_400


def ts(text: str) -> int:
    return parse_datetime(text)


def make(seed: int = 1, size: int = 200_000, **kw: object) -> tuple[Fleet, Readings]:
    fleet = Fleet(FleetConfig(seed=seed, size=size, **kw))  # type: ignore[arg-type]
    return fleet, Readings(fleet)


@pytest.fixture(scope="module")
def fr() -> tuple[Fleet, Readings]:
    return make()


def of_class(fleet: Fleet, k: int, n: int) -> np.ndarray:
    return np.flatnonzero(fleet.class_index == k)[:n].astype(np.int64)


def mixed(fleet: Fleet) -> np.ndarray:
    return np.concatenate([of_class(fleet, k, 6) for k in range(3)])


# -- exactness ---------------------------------------------------------------------------------

@pytest.mark.parametrize("start,end", [
    ("2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z"),  # one day
    ("2026-03-10T13:45:00Z", "2026-03-10T14:00:00Z"),  # one interval
    ("2026-01-31T22:00:00Z", "2026-02-01T02:15:00Z"),  # month boundary
    ("2025-12-31T20:30:00Z", "2026-01-01T03:00:00Z"),  # year boundary
    ("2024-02-28T00:00:00Z", "2024-03-01T06:00:00Z"),  # leap day
    ("2019-12-31T23:00:00Z", "2020-01-01T01:00:00Z"),  # the origin
    ("2023-11-15T07:15:00Z", "2026-02-03T11:30:00Z"),  # several years
])
def test_register_advances_by_exactly_the_intervals(fr: tuple[Fleet, Readings], start: str, end: str) -> None:
    fleet, r = fr
    t0, t1 = ts(start), ts(end)
    count = (t1 - t0) // 900
    idx = mixed(fleet)
    total = r.intervals(idx, D15, t0, count).sum(axis=1)
    assert np.array_equal(r.register(idx, DREG, t1), r.register(idx, DREG, t0) + total)
    pro = of_class(fleet, 2, 8)
    exported = r.intervals(pro, R15, t0, count).sum(axis=1)
    assert np.array_equal(r.register(pro, RREG, t1), r.register(pro, RREG, t0) + exported)


def test_register_between_boundaries_is_monotone_and_bracketed(fr: tuple[Fleet, Readings]) -> None:
    fleet, r = fr
    idx = mixed(fleet)
    t0 = ts("2026-07-04T18:00:00Z")
    readings = np.stack([r.register(idx, DREG, t0 + s) for s in range(0, 901, 60)])
    assert np.all(np.diff(readings, axis=0) >= 0)
    interval = r.intervals(idx, D15, t0, 1)[:, 0]
    assert np.array_equal(readings[-1] - readings[0], interval)
    half = r.register(idx, DREG, t0 + 450)
    assert np.array_equal(half - readings[0], interval * 450 // 900)


def test_before_the_origin_registers_read_their_base(fr: tuple[Fleet, Readings]) -> None:
    fleet, r = fr
    idx = mixed(fleet)
    origin = ts("2020-01-01T00:00:00Z")
    base = r.register(idx, DREG, origin)
    assert np.all(base > 0)
    assert np.array_equal(r.register(idx, DREG, origin - 10 * DAY), base)
    assert not r.intervals(idx, D15, origin - DAY, 96).any()
    assert r.intervals(idx, D15, origin, 96).sum(axis=1).min() > 0


def test_a_year_of_intervals_sums_to_the_daily_values(fr: tuple[Fleet, Readings]) -> None:
    fleet, r = fr
    idx = mixed(fleet)
    t0 = ts("2025-01-01T00:00:00Z")
    days = 365
    fifteen = r.intervals(idx, D15, t0, days * 96).reshape(len(idx), days, 96).sum(axis=2)
    assert np.array_equal(fifteen, r.intervals(idx, DDAY, t0, days))
    pro = of_class(fleet, 2, 6)
    exp = r.intervals(pro, R15, t0, days * 96).reshape(len(pro), days, 96).sum(axis=2)
    assert np.array_equal(exp, r.intervals(pro, RDAY, t0, days))


@pytest.mark.parametrize("offset", [330, -300, 60, -720, 840])
def test_daily_values_follow_the_local_day(offset: int) -> None:
    fleet, r = make(seed=4, size=5000, utc_offset_minutes=offset)
    idx = mixed(fleet)
    local_midnight = ts("2026-05-31T00:00:00Z") - offset * 60
    assert r.align_down(DDAY, local_midnight + 5 * 3600) == local_midnight
    assert r.align_down(DDAY, local_midnight) == local_midnight
    daily = r.intervals(idx, DDAY, local_midnight, 3)
    fifteen = r.intervals(idx, D15, local_midnight, 3 * 96).reshape(len(idx), 3, 96).sum(axis=2)
    assert np.array_equal(daily, fifteen)
    with pytest.raises(ValueError, match="aligned"):
        r.intervals(idx, DDAY, ts("2026-05-31T00:00:00Z"), 1)
    # registers across the local new year
    ny = ts("2026-01-01T00:00:00Z") - offset * 60
    day_before = r.intervals(idx, DDAY, ny - DAY, 2)
    assert np.array_equal(r.register(idx, DREG, ny + DAY) - r.register(idx, DREG, ny - DAY),
                          day_before.sum(axis=1))


# -- determinism -------------------------------------------------------------------------------

def test_any_request_order_and_split_gives_the_same_numbers(fr: tuple[Fleet, Readings]) -> None:
    fleet, r = fr
    t0 = ts("2026-02-27T00:00:00Z")
    a = r.intervals(np.array([5, 3, 9]), D15, t0, 400)
    b = r.intervals(np.array([9, 5, 3]), D15, t0, 400)
    assert np.array_equal(a, b[[1, 2, 0]])
    split = np.concatenate([r.intervals(np.array([5, 3, 9]), D15, t0 + k * 900, n)
                            for k, n in ((0, 7), (7, 150), (157, 243))], axis=1)
    assert np.array_equal(a, split)
    alone = np.concatenate([r.intervals(np.array([i]), D15, t0, 400) for i in (5, 3, 9)])
    assert np.array_equal(a, alone)
    # a fresh Readings and a bigger batch (other chunking) agree too
    big = Readings(fleet).intervals(np.arange(6000)[::-1], D15, t0, 400)
    assert np.array_equal(big[[5994, 5996, 5990]], a)
    assert np.array_equal(r.register(np.array([9, 3]), DREG, t0 + 7),
                          r.register(np.array([3, 9]), DREG, t0 + 7)[::-1])


def test_readings_do_not_depend_on_fleet_size() -> None:
    _, small = make(seed=8, size=50)
    _, large = make(seed=8, size=1_000_000)
    t0 = ts("2026-04-01T00:00:00Z")
    idx = np.arange(50)
    assert np.array_equal(small.intervals(idx, D15, t0, 96), large.intervals(idx, D15, t0, 96))
    assert np.array_equal(small.register(idx, DREG, t0), large.register(idx, DREG, t0))


_SNIPPET = """
import hashlib, numpy as np
from simulator.model.fleet import Fleet, FleetConfig
from simulator.model.readings import Readings
f = Fleet(FleetConfig(seed=77, size=10000)); r = Readings(f)
idx = np.arange(0, 10000, 97)
h = hashlib.sha256()
h.update(r.intervals(idx, "{d15}", 1767225600, 200).tobytes())
h.update(r.register(idx, "{dreg}", 1767225600 + 123).tobytes())
h.update(r.instant(idx, "{volt}", 1767225600 + 5).tobytes())
h.update(",".join(f.mrids(idx)).encode())
print(h.hexdigest())
"""


def _digest(r: Readings, fleet: Fleet) -> str:
    idx = np.arange(0, 10000, 97)
    h = hashlib.sha256()
    h.update(r.intervals(idx, D15, 1767225600, 200).tobytes())
    h.update(r.register(idx, DREG, 1767225600 + 123).tobytes())
    h.update(r.instant(idx, VOLT, 1767225600 + 5).tobytes())
    h.update(",".join(fleet.mrids(idx)).encode())
    return h.hexdigest()


def test_a_fresh_process_gives_the_same_values() -> None:
    fleet, r = make(seed=77, size=10000)
    code = textwrap.dedent(_SNIPPET).format(d15=D15, dreg=DREG, volt=VOLT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _digest(r, fleet)


def test_another_seed_gives_other_values() -> None:
    fa, a = make(seed=1, size=1000)
    fb, b = make(seed=2, size=1000)
    t0 = ts("2026-04-01T00:00:00Z")
    both = np.flatnonzero(fa.class_index == fb.class_index)[:50]
    va, vb = a.intervals(both, D15, t0, 96), b.intervals(both, D15, t0, 96)
    assert np.mean(va == vb) < 0.2
    assert not np.array_equal(a.register(both, DREG, t0), b.register(both, DREG, t0))


# -- shapes and magnitudes ---------------------------------------------------------------------

def test_values_are_non_negative_and_daily_means_are_realistic(fr: tuple[Fleet, Readings]) -> None:
    fleet, r = fr
    t0 = ts("2025-01-01T00:00:00Z")
    expected = {0: (8_000, 12_000), 1: (80_000, 300_000), 2: (6_000, 9_000)}
    for k, (lo, hi) in expected.items():
        idx = of_class(fleet, k, 300)
        year = r.intervals(idx, DDAY, t0, 365)
        assert year.min() >= 0
        assert lo <= year.mean() <= hi
    pro = of_class(fleet, 2, 300)
    exp = r.intervals(pro, RDAY, t0, 365)
    assert exp.min() >= 0
    summer = exp[:, 151:243].mean()
    winter = np.concatenate([exp[:, :59], exp[:, 334:]], axis=1).mean()
    assert 8_000 <= summer <= 15_000
    assert winter < summer / 3
    assert r.intervals(mixed(fleet), D15, t0, 96 * 30).min() >= 0


def test_export_is_zero_at_night(fr: tuple[Fleet, Readings]) -> None:
    fleet, r = fr
    pro = of_class(fleet, 2, 50)
    t0 = ts("2026-06-01T00:00:00Z")
    days = 30
    v = r.intervals(pro, R15, t0, days * 96).reshape(len(pro), days, 96)
    night = np.r_[0:16, 84:96]  # 21:00 to 04:00
    assert not v[:, :, night].any()
    assert v[:, :, 48:56].min() > 0  # noon to 14:00 always produces something
    assert v.sum() > 0


def test_commercial_load_follows_business_hours(fr: tuple[Fleet, Readings]) -> None:
    fleet, r = fr
    idx = of_class(fleet, 1, 100)
    monday = ts("2026-03-02T00:00:00Z")
    week = r.intervals(idx, D15, monday, 7 * 96).reshape(len(idx), 7, 96)
    weekday, weekend = week[:, :5].mean(axis=(0, 1)), week[:, 5:].mean(axis=(0, 1))
    assert weekday[40:68].mean() > 2.5 * weekday[0:20].mean()  # 10-17 h vs 0-5 h
    assert weekend.sum() < 0.5 * weekday.sum()
    res = of_class(fleet, 0, 100)
    rw = r.intervals(res, D15, monday, 7 * 96).reshape(len(res), 7, 96).mean(axis=(0, 1))
    assert rw[76:84].mean() > 2 * rw[8:20].mean()  # evening peak vs small hours


def test_voltage_is_plausible_and_deterministic(fr: tuple[Fleet, Readings]) -> None:
    fleet, r = fr
    idx = mixed(fleet)
    t = ts("2026-06-15T12:34:56Z")
    v = r.instant(idx, VOLT, t)
    assert v.dtype == np.int64
    assert np.all((v >= 2070) & (v <= 2530))
    assert np.array_equal(v, r.instant(idx[::-1], VOLT, t)[::-1])
    many = r.instant(np.arange(20000), VOLT, t)
    assert 2250 <= many.mean() <= 2330 and many.std() > 5
    assert not np.array_equal(v, r.instant(idx, VOLT, t + 1))


# -- contract ----------------------------------------------------------------------------------

def test_contract_errors(fr: tuple[Fleet, Readings]) -> None:
    fleet, r = fr
    res = of_class(fleet, 0, 3)
    t0 = ts("2026-03-01T00:00:00Z")
    with pytest.raises(ValueError, match="aligned"):
        r.intervals(res, D15, t0 + 60, 4)
    with pytest.raises(ValueError, match="do not record"):
        r.intervals(res, R15, t0, 4)
    with pytest.raises(ValueError, match="do not record"):
        r.register(res, RREG, t0)
    with pytest.raises(ValueError, match="not interval"):
        r.intervals(res, DREG, t0, 4)
    with pytest.raises(ValueError, match="unknown"):
        r.intervals(res, "1.2.3", t0, 4)
    with pytest.raises(ValueError):
        r.intervals(np.array([fleet.size]), D15, t0, 4)
    assert r.intervals(res, D15, t0, 0).shape == (3, 0)
    assert r.intervals(np.zeros(0, dtype=np.int64), D15, t0, 5).shape == (0, 5)
    assert r.align_down(D15, t0 + 899) == t0 and r.align_down(D15, t0 + 900) == t0 + 900
    assert r.align_down(DREG, t0 + 17) == t0 + 17

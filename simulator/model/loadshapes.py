"""What each meter class looks like: energy per day, seasons, weekdays, daily shapes, noise.

Everything transcendental is evaluated here once, into fixed tables (day of year x 96 slots,
weekday x 96 slots, 4096 quantiles), so per-request code only looks tables up and multiplies.

Magnitudes (means over a year; each meter also has its own seeded scale):
- residential: 10 kWh/day delivered, evening peak, a little more at weekends and in winter;
- commercial: 160 kWh/day delivered, business hours on weekdays, weekends at a third;
- prosumer: 7.5 kWh/day delivered with a midday dip (self-consumption), and 5.6 kWh/day
  received (export) on average: zero at night, ~11 kWh/day in an average summer day and up
  to ~15 on a clear one, ~2 in winter; cloudiness is shared by the whole fleet each day.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from .calendar import SLOTS_PER_DAY

F64 = npt.NDArray[np.float64]

QUANTILES = 4096  # lognormal scale table resolution (indexed by the top 12 bits of a hash)
_HOURS = [(s + 0.5) * 24.0 / SLOTS_PER_DAY for s in range(SLOTS_PER_DAY)]  # slot midpoints


@dataclass(frozen=True)
class ChannelProfile:
    """One energy channel of one class. Noise factors are `1 + amp * (2u - 1)` unless noted."""

    daily_mean_wh: float
    scale_quantiles: F64  # per-meter multiplier of the mean, lognormal, clipped
    year_amp: float
    month_amp: float
    day_amp: float
    interval_low: float  # interval noise factor is low + span * u
    interval_span: float
    season: F64  # (367,) by day of year 1..366
    weekday: tuple[float, ...]  # Monday first
    weather: str  # "temperature" | "business" | "cloud": the fleet-wide factor of a day
    shape_by_doy: bool  # shape rows indexed by day of year (solar) rather than weekday
    shapes: F64  # (7 or 367, 96), relative weights of a day's slots
    base_years: float  # register reading at the origin: up to this many years of energy


def _bump(h: float, mu: float, sigma: float) -> float:
    d = min(abs(h - mu), 24.0 - abs(h - mu))
    return math.exp(-0.5 * (d / sigma) ** 2)


def _plateau(h: float, up0: float, up1: float, down0: float, down1: float) -> float:
    if h <= up0 or h >= down1:
        return 0.0
    if h < up1:
        return (h - up0) / (up1 - up0)
    if h <= down0:
        return 1.0
    return (down1 - h) / (down1 - down0)


def _rows(fn_weekday: list[float], fn_weekend: list[float]) -> F64:
    return np.array([fn_weekday] * 5 + [fn_weekend] * 2, dtype=np.float64)


def _residential_day(h: float) -> float:
    return 0.30 + 0.55 * _bump(h, 7.25, 1.0) + 0.30 * _bump(h, 12.5, 2.0) + 1.00 * _bump(h, 19.25, 1.75)


def _residential_weekend(h: float) -> float:
    return 0.32 + 0.50 * _bump(h, 9.5, 1.5) + 0.45 * _bump(h, 13.0, 2.5) + 0.95 * _bump(h, 19.0, 2.0)


def _self_consumption(h: float) -> float:
    return 1.0 - 0.55 * _bump(h, 13.0, 2.8)


def day_length_hours(doy: int) -> float:
    """About 50 degrees north: 8 h at midwinter, 16 h at midsummer."""
    return 12.0 + 4.0 * math.cos(2.0 * math.pi * (doy - 172) / 365.25)


SOLAR_NOON_H = 12.5


def _solar(h: float, doy: int) -> float:
    length = day_length_hours(doy)
    rise = SOLAR_NOON_H - length / 2.0
    if not rise < h < rise + length:
        return 0.0
    return math.sin(math.pi * (h - rise) / length) ** 1.5


def _by_doy(fn: Callable[[int], float]) -> F64:
    """Row 0 repeats day 1 so the table can be indexed by day of year directly."""
    return np.array([fn(max(doy, 1)) for doy in range(367)], dtype=np.float64)


def _lognormal_quantiles(sigma: float, lo: float = 0.25, hi: float = 3.0) -> F64:
    nd = NormalDist()
    q = [math.exp(sigma * nd.inv_cdf((k + 0.5) / QUANTILES) - 0.5 * sigma * sigma) for k in range(QUANTILES)]
    return np.clip(np.array(q, dtype=np.float64), lo, hi)


def _cos_season(amp: float, peak_doy: int) -> F64:
    return _by_doy(lambda d: 1.0 + amp * math.cos(2.0 * math.pi * (d - peak_doy) / 365.25))


_RES_WEEKDAY = (1.0, 1.0, 1.0, 1.0, 1.02, 1.10, 1.12)


def _build() -> dict[tuple[str, str], ChannelProfile]:
    res_shapes = _rows([_residential_day(h) for h in _HOURS], [_residential_weekend(h) for h in _HOURS])
    pro_shapes = res_shapes * np.array([_self_consumption(h) for h in _HOURS])
    com_shapes = _rows(
        [0.28 + 0.72 * _plateau(h, 6.5, 8.0, 18.0, 20.0) for h in _HOURS],
        [0.28 + 0.20 * _plateau(h, 9.0, 10.0, 14.0, 16.0) for h in _HOURS],
    )
    solar_shapes = np.array([[_solar(h, max(doy, 1)) for h in _HOURS] for doy in range(367)])
    return {
        ("residential", "delivered"): ChannelProfile(
            10_000.0, _lognormal_quantiles(0.15), 0.05, 0.06, 0.20, 0.35, 1.30,
            _cos_season(0.22, 15), _RES_WEEKDAY, "temperature", False, res_shapes, 5.0),
        ("commercial", "delivered"): ChannelProfile(
            160_000.0, _lognormal_quantiles(0.40), 0.05, 0.06, 0.08, 0.85, 0.30,
            _cos_season(0.10, 200), (1.0, 1.0, 1.0, 1.0, 0.97, 0.45, 0.30), "business", False,
            com_shapes, 5.0),
        ("prosumer", "delivered"): ChannelProfile(
            7_500.0, _lognormal_quantiles(0.12), 0.05, 0.06, 0.20, 0.35, 1.30,
            _cos_season(0.30, 15), _RES_WEEKDAY, "temperature", False, pro_shapes, 5.0),
        ("prosumer", "received"): ChannelProfile(
            5_600.0, _lognormal_quantiles(0.20), 0.05, 0.04, 0.08, 0.80, 0.40,
            _by_doy(lambda d: (day_length_hours(d) / 12.0) ** 2.5), (1.0,) * 7, "cloud", True,
            solar_shapes, 2.0),
    }


PROFILES: dict[tuple[str, str], ChannelProfile] = _build()

# For voltage: how loaded the local grid is at a slot (0..1), and how much sun pushes it up.
LOAD_SHAPE_BY_WEEKDAY: F64 = PROFILES[("residential", "delivered")].shapes / float(
    PROFILES[("residential", "delivered")].shapes.max()
)
SOLAR_SHAPE_BY_DOY: F64 = PROFILES[("prosumer", "received")].shapes

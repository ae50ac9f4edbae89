"""Exact top-down allocation of one energy channel: year -> months -> days -> 15-minute slots.

Each level splits its parent's integer total among its children by integer weights with
cumulative rounding: child k gets floor(T*C_k/W) - floor(T*C_{k-1}/W), where C_k is the running
sum of weights and W = C_last. Children are non-negative and add up to the parent exactly, and
the running sum floor(T*C_k/W) is available without summing children, so a register reading
at any instant costs one path down the tree, not a walk through history:

    register(t) = base + sum of whole years since the origin + months before t's month
                  + days before t's day + slots before t's slot + floor(slot * elapsed / 900)

(the last term is 0 at a slot boundary). The month level is ours, not the brief's: it bounds the
work for a day to 12 + ~31 + 96 weights instead of 366 + 96, and changes no invariant.
Weights are quantised to integers so the cumulative arithmetic is exact in int64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .calendar import DAY_S, SLOT_S, SLOTS_PER_DAY, civil, month_starts, weekday
from .hashing import F64, derive_key, hash_cells, hash_u64, unit
from .loadshapes import PROFILES

I64 = npt.NDArray[np.int64]

_K_MONTH = float(2**16)  # month weights are sums of ~30 day factors
_K_DAY = float(2**20)
_K_SLOT = float(2**20)
_SLOT_COUNTERS = np.arange(SLOTS_PER_DAY, dtype=np.int64)
_INT64_LIMIT = 2**63


def cumulative_partition(total: I64, weights: I64) -> I64:
    """Running allocations [0, a_0, a_0+a_1, ..., total] of `total` split by `weights`.

    `total` has the shape of `weights` without its last axis. All-zero weights give nothing
    to every child except that the final entry is still `total`; our weights never are.
    """
    c = np.cumsum(weights, axis=-1)
    w = np.maximum(c[..., -1:], 1)
    if total.size and int(total.max()) * int(w.max()) >= _INT64_LIMIT:
        raise OverflowError("energy partition exceeds int64; a profile magnitude is out of range")
    out = np.empty((*c.shape[:-1], c.shape[-1] + 1), dtype=np.int64)
    out[..., 0] = 0
    np.floor_divide(total[..., None] * c, w, out=out[..., 1:])
    out[..., -1] = total
    return out


def cumulative_range(total: I64, weights: I64, first: int, last: int) -> I64:
    """Entries first..last (inclusive) of cumulative_partition(total, weights), dividing only
    those columns; integer running sums make them the same integers as the full partition."""
    c = np.cumsum(weights, axis=-1)
    w = np.maximum(c[..., -1:], 1)
    if total.size and int(total.max()) * int(w.max()) >= _INT64_LIMIT:
        raise OverflowError("energy partition exceeds int64; a profile magnitude is out of range")
    k = weights.shape[-1]
    out = np.empty((*c.shape[:-1], last - first + 1), dtype=np.int64)
    lo = max(first, 1)
    if first == 0:
        out[..., 0] = 0
    np.floor_divide(total[..., None] * c[..., lo - 1:last], w, out=out[..., lo - first:])
    if last == k:
        out[..., -1] = total
    return out


def cumulative_at(total: I64, weights: I64, rows: I64, cols: I64) -> I64:
    """Entries (rows[i], cols[i]) of cumulative_partition(total, weights), dividing only those."""
    c = np.cumsum(weights, axis=-1)
    w = np.maximum(c[:, -1], 1)
    if total.size and int(total.max()) * int(w.max()) >= _INT64_LIMIT:
        raise OverflowError("energy partition exceeds int64; a profile magnitude is out of range")
    k = weights.shape[-1]
    out = total[rows] * c[rows, np.maximum(cols - 1, 0)] // w[rows]
    out[cols == 0] = 0
    last = cols == k
    out[last] = total[rows[last]]
    return out


def _weight(x: F64) -> I64:
    """Integer weights, at least 1 so that every month and day keeps a share."""
    return np.maximum(x.astype(np.int64), 1)


class EnergyChannel:
    """One channel ("delivered" or "received") of one meter class, for any meters of it."""

    def __init__(self, seed: int, meter_class: str, channel: str, origin_year: int) -> None:
        self.profile = p = PROFILES[(meter_class, channel)]
        self.origin_year = origin_year
        self._k_scale = derive_key(seed, "energy", channel, "scale")
        self._k_base = derive_key(seed, "energy", channel, "base")
        self._k_year = derive_key(seed, "energy", channel, "year")
        self._k_month = derive_key(seed, "energy", channel, "month")
        self._k_day = derive_key(seed, "energy", channel, "day")
        self._k_slot = derive_key(seed, "energy", channel, "slot")
        self._k_weather = derive_key(seed, "weather", p.weather)
        # Slot weight = shape * K * (low + span * u): fold the constants into two tables.
        self._shape_low = p.shapes * (_K_SLOT * p.interval_low)
        self._shape_span = p.shapes * (_K_SLOT * p.interval_span * 2.0**-53)
        self._years: dict[int, tuple[F64, F64]] = {}

    # -- per meter ------------------------------------------------------------------------
    def scale(self, m: I64) -> F64:
        q = (hash_u64(self._k_scale, m) >> np.uint64(52)).astype(np.intp)
        return self.profile.scale_quantiles[q]

    def base(self, m: I64) -> I64:
        """Register reading at the origin: up to `base_years` of this meter's energy."""
        p = self.profile
        span = self.scale(m) * (p.daily_mean_wh * 365.0 * p.base_years)
        return (unit(hash_u64(self._k_base, m)) * span).astype(np.int64)

    def year_totals(self, m: I64, years: Sequence[int]) -> I64:
        """(n, len(years)) Wh; zero for years before the origin (the meter was not there)."""
        p = self.profile
        ys = np.asarray(years, dtype=np.int64)
        lengths = np.array([month_starts(y)[12] - month_starts(y)[0] for y in years], dtype=np.float64)
        u = unit(hash_cells(hash_u64(self._k_year, m), ys.astype(np.uint64)))
        noise = (1.0 - p.year_amp) + (2.0 * p.year_amp) * u
        totals = ((self.scale(m)[:, None] * (lengths * p.daily_mean_wh)[None, :]) * noise).astype(np.int64)
        totals[:, ys < self.origin_year] = 0
        return totals

    # -- the tree -------------------------------------------------------------------------
    def _year_table(self, year: int) -> tuple[F64, F64]:
        """Fleet-wide factor of each day of the year and their sums per month."""
        cached = self._years.get(year)
        if cached is not None:
            return cached
        p = self.profile
        starts = month_starts(year)
        days = np.arange(starts[0], starts[12], dtype=np.int64)
        doy = days - starts[0] + 1
        u = unit(hash_u64(self._k_weather, days))
        if p.weather == "cloud":
            weather = 1.05 - 0.85 * (u * u)
        elif p.weather == "business":
            weather = 0.95 + 0.10 * u
        else:
            weather = 0.92 + 0.16 * u
        weekdays = np.asarray(p.weekday, dtype=np.float64)[(days + 3) % 7]
        factors = p.season[doy] * weekdays * weather
        sums = np.add.reduceat(factors, np.asarray(starts[:12], dtype=np.int64) - starts[0])
        if len(self._years) >= 64:
            self._years.clear()
        self._years[year] = (factors, sums)
        return factors, sums

    def month_cumulative(self, m: I64, year: int, year_total: I64) -> I64:
        """(n, 13): energy of the year before each month's start, then the year total."""
        return cumulative_partition(year_total, self._month_weights(m, year))

    def _month_weights(self, m: I64, year: int) -> I64:
        amp = self.profile.month_amp
        _, sums = self._year_table(year)
        counters = np.arange(12, dtype=np.int64) + year * 12
        u = unit(hash_cells(hash_u64(self._k_month, m), counters.astype(np.uint64)))
        return _weight((sums * _K_MONTH)[None, :] * ((1.0 - amp) + (2.0 * amp) * u))

    def _day_weights(self, m: I64, year: int, month: int) -> I64:
        amp = self.profile.day_amp
        factors, _ = self._year_table(year)
        starts = month_starts(year)
        d0, d1 = starts[month - 1], starts[month]
        f = factors[d0 - starts[0]:d1 - starts[0]]
        days = np.arange(d0, d1, dtype=np.int64)
        u = unit(hash_cells(hash_u64(self._k_day, m), days.astype(np.uint64)))
        return _weight((f * _K_DAY)[None, :] * ((1.0 - amp) + (2.0 * amp) * u))

    def slot_cumulative(self, m: I64, days: Sequence[int], day_totals: I64) -> I64:
        """(n, len(days), 97): energy of each day before each slot's start, then the day total."""
        return cumulative_partition(day_totals, self._slot_weights(m, days))

    def _slot_weights(self, m: I64, days: Sequence[int]) -> I64:
        if self.profile.shape_by_doy:
            rows = [d - month_starts(civil(d)[0])[0] + 1 for d in days]
        else:
            rows = [weekday(d) for d in days]
        counters = (np.asarray(days, dtype=np.int64)[:, None] * SLOTS_PER_DAY + _SLOT_COUNTERS[None, :])
        h = hash_cells(hash_u64(self._k_slot, m), counters.astype(np.uint64))
        w = (self._shape_low[rows] + self._shape_span[rows] * (h >> np.uint64(11)).astype(np.float64))
        return w.astype(np.int64)

    # -- what readings ask for ------------------------------------------------------------
    def day_totals(self, m: I64, first_day: int, n_days: int) -> I64:
        """(n, n_days) Wh per local day, walking the months the range touches."""
        out = np.zeros((len(m), n_days), dtype=np.int64)
        months: dict[int, I64] = {}
        d, end = first_day, first_day + n_days
        while d < end:
            y, mo, _ = civil(d)
            starts = month_starts(y)
            seg_end = min(end, starts[mo])
            if y >= self.origin_year:
                mc = months.get(y)
                if mc is None:
                    mc = months[y] = self.month_cumulative(m, y, self.year_totals(m, [y])[:, 0])
                a, b = d - starts[mo - 1], seg_end - starts[mo - 1]
                dc = cumulative_range(mc[:, mo] - mc[:, mo - 1], self._day_weights(m, y, mo), a, b)
                out[:, d - first_day:seg_end - first_day] = np.diff(dc, axis=1)
            d = seg_end
        return out

    def slot_values(self, m: I64, first_day: int, n_days: int) -> I64:
        """(n, n_days * 96) Wh per 15-minute slot of whole local days."""
        days = list(range(first_day, first_day + n_days))
        sc = self.slot_cumulative(m, days, self.day_totals(m, first_day, n_days))
        return np.diff(sc, axis=-1).reshape(len(m), n_days * SLOTS_PER_DAY)

    def register(self, m: I64, local_t: int) -> I64:
        """Wh counted up to local time `local_t` (seconds since local 1970-01-01).

        Uses only the prefix entries on t's path down the tree (cumulative_range), which are the
        same integers the full partitions give to intervals.
        """
        local_t = int(local_t)
        d = local_t // DAY_S
        prefix, day_total, weights = self._day_start(m, d)
        if day_total is None or weights is None:
            return prefix
        s, elapsed = divmod(local_t - d * DAY_S, SLOT_S)
        sp = cumulative_range(day_total, weights, s, s + 1)
        prefix += sp[:, 0]
        if elapsed:
            prefix += (sp[:, 1] - sp[:, 0]) * elapsed // SLOT_S
        return prefix

    def register_at(self, m: I64, local_t: I64) -> I64:
        """register() with an instant per meter (a meter may appear more than once).

        Supply periods need the register at each meter's own switching instants. The work is one
        pass per distinct local day, over the distinct meters of that day, so a group switched
        off and on within a day costs what one register read of the group does.
        """
        out = np.empty(len(m), dtype=np.int64)
        if not len(m):
            return out
        days = local_t // DAY_S
        order = np.argsort(days, kind="stable")
        cuts = np.flatnonzero(np.diff(days[order])) + 1
        for sel in np.split(order, cuts):
            d = int(days[sel[0]])
            meters, rows = np.unique(m[sel], return_inverse=True)
            prefix, day_total, weights = self._day_start(meters, d)
            if day_total is None or weights is None:
                out[sel] = prefix[rows]
                continue
            slot, elapsed = np.divmod(local_t[sel] - d * DAY_S, SLOT_S)
            before = cumulative_at(day_total, weights, rows, slot)
            after = cumulative_at(day_total, weights, rows, slot + 1)
            out[sel] = prefix[rows] + before + (after - before) * elapsed // SLOT_S
        return out

    def _day_start(self, m: I64, d: int) -> tuple[I64, I64 | None, I64 | None]:
        """Register at the start of local day d, the day's energy and its slot weights
        (None, None before the origin year, when registers read their base)."""
        total = self.base(m)
        y, mo, dom = civil(d)
        if y < self.origin_year:
            return total, None, None
        if y > self.origin_year:
            total += self.year_totals(m, range(self.origin_year, y)).sum(axis=1)
        mp = cumulative_range(self.year_totals(m, [y])[:, 0], self._month_weights(m, y), mo - 1, mo)
        dp = cumulative_range(mp[:, 1] - mp[:, 0], self._day_weights(m, y, mo), dom - 1, dom)
        total += mp[:, 0] + dp[:, 0]
        return total, dp[:, 1] - dp[:, 0], self._slot_weights(m, [d])[:, 0, :]

"""Readings as a pure function of (seed, meter, ReadingType, time) and what happened to the meter.

Nothing is stored per meter or per interval: every call recomputes its values from counter-
based hashes and the exact allocation tree in `energy.py`, so any order of requests, any split
of a range and any process give the same numbers, and for aligned t0 <= t1

    register(t1) == register(t0) + sum(intervals in [t0, t1))          exactly, and
    daily value of a local day == sum of that day's 96 fifteen-minute values.

Units: energy in whole Wh (int64), voltage in whole decivolts (int64), demand in whole W.
Energy before Jan 1 of `register_origin_year` (local) is zero and registers read their base.
The caller filters meters by reading type (`Fleet.has_reading_type`): asking a meter for a
code its class does not record raises ValueError rather than inventing zeros.

Supply interruptions (`SupplyHistory`): with E(a, b) = R(b) - R(a) the unswitched register
difference above (floor proration inside an interval included), a meter meters

    E(a, b) - sum over its off periods p of E(max(a, p.start), min(b, p.end))

on both channels, so every invariant above still holds exactly, intervals wholly inside an
off period read 0, partial ones lose exactly their off part, and nothing goes negative (R is
non-decreasing and the periods are disjoint). Only the rows of meters that have periods are
adjusted, each with work per period touching the range: an interval wholly inside a period is
zeroed without computing anything, and at most two partial intervals per period need the
register inside them: for 15-minute intervals that is the interval's own value prorated, for
daily ones and for registers it is looked up per meter class in one pass per distinct local day
(`EnergyChannel.register_at`), so a group switched at once costs about what one meter does and
meters switched at scattered instants cost little more. Voltage reads 0 while off.
The history and the demand resets are held by reference: later changes show in later reads.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .calendar import DAY_S, SLOT_S, SLOTS_PER_DAY
from .demand import NO_RESET, DemandResets, local_month_start, max_demand_w
from .energy import EnergyChannel
from .fleet import Fleet
from .readingtypes import METER_CLASSES, ReadingTypeSpec, class_has_channel, reading_type
from .supply import SupplyHistory
from .voltage import VoltageChannel

I64 = npt.NDArray[np.int64]

# Meters synthesised together: big enough to amortise numpy call overhead, small enough that
# the (meters x days x 96) temporaries stay in cache (~4 MB each).
_CELLS_PER_CHUNK = 1 << 19
_BEFORE_ALL = -(1 << 62)  # an instant before any supply period


class Readings:
    def __init__(self, fleet: Fleet, supply: SupplyHistory | None = None,
                 demand: DemandResets | None = None) -> None:
        """`supply` and `demand` are optional so a fleet without relays reads as before."""
        self.fleet = fleet
        self.supply = supply
        self.demand = demand
        cfg = fleet.config
        self._offset_s = cfg.utc_offset_minutes * 60
        self._channels: dict[tuple[int, str], EnergyChannel] = {}
        for k, name in enumerate(METER_CLASSES):
            for channel in ("delivered", "received"):
                if class_has_channel(name, channel):
                    self._channels[(k, channel)] = EnergyChannel(
                        fleet.seed, name, channel, cfg.register_origin_year)
        self._voltage = VoltageChannel(fleet.seed)

    # -- helpers ----------------------------------------------------------------------------
    def _spec(self, code: str, kind: str) -> ReadingTypeSpec:
        spec = reading_type(code)
        if spec is None:
            raise ValueError(f"unknown ReadingType {code!r}")
        if spec.kind != kind:
            raise ValueError(f"ReadingType {code} is a {spec.kind} type, not {kind}")
        return spec

    def _meters(self, idx: npt.ArrayLike, spec: ReadingTypeSpec) -> tuple[I64, npt.NDArray[np.uint8]]:
        m = np.asarray(idx, dtype=np.int64).ravel()
        if len(m) and (int(m.min()) < 0 or int(m.max()) >= self.fleet.size):
            raise ValueError(f"meter indices must lie in [0, {self.fleet.size})")
        classes = self.fleet.class_index[m]
        for k in np.unique(classes).tolist():
            if not class_has_channel(METER_CLASSES[k], spec.channel):
                raise ValueError(f"{METER_CLASSES[k]} meters do not record {spec.description} ({spec.code}); "
                                 "filter them out with Fleet.has_reading_type")
        return m, classes

    def align_down(self, code: str, t: int) -> int:
        """Latest interval boundary <= t for the code's period (local midnight for daily codes);
        t itself for register and instant codes, which have no period."""
        spec = reading_type(code)
        if spec is None:
            raise ValueError(f"unknown ReadingType {code!r}")
        t = int(t)
        if spec.period_s == 0:
            return t
        return t - (t + self._offset_s) % spec.period_s

    # -- the three kinds --------------------------------------------------------------------
    def intervals(self, idx: npt.ArrayLike, code: str, start: int, count: int) -> I64:
        """(len(idx), count) Wh; value k covers [start + k*p, start + (k+1)*p), p = period_s.

        `start` must be aligned (to 900 s, or to local midnight for daily codes): ValueError
        otherwise, so that a misaligned request is a bug and not a silently shifted answer.
        """
        spec = self._spec(code, "interval")
        start, count = int(start), int(count)
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if self.align_down(code, start) != start:
            raise ValueError(f"start {start} is not aligned to the {spec.period_s}-second period of {code}")
        m, classes = self._meters(idx, spec)
        return self._values(m, classes, spec.channel, spec.period_s, start, count)

    def _values(self, m: I64, classes: npt.NDArray[np.uint8], channel_name: str, period_s: int,
                start: int, count: int) -> I64:
        """Metered interval values (after supply periods) of validated meters."""
        out = np.zeros((len(m), count), dtype=np.int64)
        if not len(m) or not count:
            return out
        local = start + self._offset_s
        first_day = local // DAY_S
        if period_s == DAY_S:
            n_days, first_slot, per_day = count, 0, 1
        else:
            first_slot = (local - first_day * DAY_S) // SLOT_S
            n_days = (first_slot + count + SLOTS_PER_DAY - 1) // SLOTS_PER_DAY
            per_day = SLOTS_PER_DAY
        # Long ranges shrink the meter chunk (down to one meter), so memory stays bounded by
        # the output itself.
        chunk = max(1, _CELLS_PER_CHUNK // (n_days * per_day))
        for k in np.unique(classes).tolist():
            channel = self._channels[(k, channel_name)]
            rows = np.flatnonzero(classes == k)
            for lo in range(0, len(rows), chunk):
                part = rows[lo:lo + chunk]
                if per_day == 1:
                    out[part] = channel.day_totals(m[part], first_day, n_days)
                else:
                    values = channel.slot_values(m[part], first_day, n_days)
                    out[part] = values[:, first_slot:first_slot + count]
        if self.supply is not None:
            self._cut_intervals(out, m, classes, channel_name, period_s, start)
        return out

    def register(self, idx: npt.ArrayLike, code: str, t: int) -> I64:
        """Wh on the register at instant t (any t; between boundaries the current interval
        contributes floor(its energy * elapsed / period)); W for the maximum-demand code."""
        spec = self._spec(code, "register")
        m, classes = self._meters(idx, spec)
        t = int(t)
        if spec.quantity == "demand":
            return self._max_demand(m, classes, spec.channel, t)
        out = np.zeros(len(m), dtype=np.int64)
        local = t + self._offset_s
        chunk = _CELLS_PER_CHUNK // SLOTS_PER_DAY
        for k in np.unique(classes).tolist():
            channel = self._channels[(k, spec.channel)]
            rows = np.flatnonzero(classes == k)
            for lo in range(0, len(rows), chunk):
                part = rows[lo:lo + chunk]
                out[part] = channel.register(m[part], local)
        if self.supply is not None:
            self._cut_register(out, m, classes, spec.channel, t)
        return out

    def _max_demand(self, m: I64, classes: npt.NDArray[np.uint8], channel_name: str, t: int) -> I64:
        """W: see demand.py. The period starts at the later of the month start and the last reset."""
        start = np.full(len(m), local_month_start(t, self._offset_s), dtype=np.int64)
        if self.demand is not None:
            last = self.demand.last_reset(m, t)
            np.maximum(start, np.where(last == NO_RESET, start, last), out=start)

        def interval_wh(pos: I64, first: int, count: int) -> I64:
            return self._values(m[pos], classes[pos], channel_name, SLOT_S, first, count)

        return max_demand_w(interval_wh, start, t)

    def instant(self, idx: npt.ArrayLike, code: str, t: int) -> I64:
        """Decivolts at instant t (whole seconds)."""
        spec = self._spec(code, "instant")
        m, classes = self._meters(idx, spec)
        if not len(m):
            return np.zeros(0, dtype=np.int64)
        prosumer = classes == METER_CLASSES.index("prosumer")
        v = self._voltage.at(m, self.fleet.feeders_of(m), prosumer, int(t) + self._offset_s, int(t))
        if self.supply is not None:
            v[self.supply.is_off(m, int(t))] = 0  # the load side is dead while the relay is open
        return v

    # -- supply periods -----------------------------------------------------------------------
    def _cut_intervals(self, out: I64, m: I64, classes: npt.NDArray[np.uint8], channel_name: str,
                       p: int, start: int) -> None:
        """Remove from `out` the energy of every off period, in place (see the module docstring)."""
        assert self.supply is not None
        count = out.shape[1]
        rows, s, e = self.supply.spans(m, start, start + count * p)
        if not len(rows):
            return
        lo = -(-(s - start) // p)  # first interval starting at or after s
        hi = (e - start) // p  # intervals before this one end by e
        # Intervals wholly inside a period: their value was exactly R(end) - R(start), so 0.
        width = np.maximum(hi - lo, 0)
        run_rows = np.repeat(rows, width)
        run_first = np.repeat(lo - (np.cumsum(width) - width), width)
        out[run_rows, run_first + np.arange(len(run_rows))] = 0
        # At most two partial intervals per period: the one holding s and the one holding e.
        ks = (s - start) // p
        s_inside = ks < lo
        e_inside = (start + hi * p < e) & ~(s_inside & (hi == ks))
        part_rows = np.concatenate([rows[s_inside], rows[e_inside]])
        part_k = np.concatenate([ks[s_inside], hi[e_inside]])
        part_a = np.concatenate([s[s_inside], np.maximum(start + hi * p, s)[e_inside]])
        part_b = np.concatenate([np.minimum(start + (ks + 1) * p, e)[s_inside], e[e_inside]])
        if not len(part_rows):
            return
        if p == SLOT_S:
            # Inside one slot the register grows by floor(slot energy * elapsed / 900), and the
            # slot energy is the interval's own value: no register look-up is needed.
            first = start + part_k * p
            value = out[part_rows, part_k]
            lost = value * (part_b - first) // p - value * (part_a - first) // p
        else:
            n = len(part_rows)
            at = self._registers_at(m, classes, channel_name, np.concatenate([part_rows, part_rows]),
                                    np.concatenate([part_a, part_b]))
            lost = at[n:] - at[:n]
        np.subtract.at(out, (part_rows, part_k), lost)  # two periods may share an interval

    def _registers_at(self, m: I64, classes: npt.NDArray[np.uint8], channel_name: str,
                      rows: I64, t: I64) -> I64:
        """Unswitched register R of the meters at `rows` of m, each at its own instant."""
        out = np.empty(len(rows), dtype=np.int64)
        cls = classes[rows]
        for k in np.unique(cls).tolist():
            sel = np.flatnonzero(cls == k)
            out[sel] = self._channels[(k, channel_name)].register_at(m[rows[sel]], t[sel] + self._offset_s)
        return out

    def _cut_register(self, out: I64, m: I64, classes: npt.NDArray[np.uint8], channel_name: str, t: int) -> None:
        """Registers stop while off: subtract E(p.start, min(p.end, t)) of every period before t."""
        assert self.supply is not None
        rows, s, e = self.supply.spans(m, _BEFORE_ALL, t)
        if not len(rows):
            return
        at = self._registers_at(m, classes, channel_name, np.concatenate([rows, rows]), np.concatenate([s, e]))
        n = len(rows)
        np.subtract.at(out, rows, at[n:] - at[:n])

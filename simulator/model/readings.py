"""Readings as a pure function of (seed, meter, ReadingType, time).

Nothing is stored per meter or per interval: every call recomputes its values from counter-
based hashes and the exact allocation tree in `energy.py`, so any order of requests, any split
of a range and any process give the same numbers, and for aligned t0 <= t1

    register(t1) == register(t0) + sum(intervals in [t0, t1))          exactly, and
    daily value of a local day == sum of that day's 96 fifteen-minute values.

Units: energy in whole Wh (int64), voltage in whole decivolts (int64).
Energy before Jan 1 of `register_origin_year` (local) is zero and registers read their base.
The caller filters meters by reading type (`Fleet.has_reading_type`): asking a meter for a
code its class does not record raises ValueError rather than inventing zeros.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .calendar import DAY_S, SLOT_S, SLOTS_PER_DAY
from .energy import EnergyChannel
from .fleet import Fleet
from .readingtypes import METER_CLASSES, ReadingTypeSpec, class_has_channel, reading_type
from .voltage import VoltageChannel

I64 = npt.NDArray[np.int64]

# Meters synthesised together: big enough to amortise numpy call overhead, small enough that
# the (meters x days x 96) temporaries stay in cache (~4 MB each).
_CELLS_PER_CHUNK = 1 << 19


class Readings:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
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
        out = np.zeros((len(m), count), dtype=np.int64)
        if not len(m) or not count:
            return out
        local = start + self._offset_s
        first_day = local // DAY_S
        if spec.period_s == DAY_S:
            n_days, first_slot, per_day = count, 0, 1
        else:
            first_slot = (local - first_day * DAY_S) // SLOT_S
            n_days = (first_slot + count + SLOTS_PER_DAY - 1) // SLOTS_PER_DAY
            per_day = SLOTS_PER_DAY
        # Long ranges shrink the meter chunk (down to one meter), so memory stays bounded by
        # the output itself.
        chunk = max(1, _CELLS_PER_CHUNK // (n_days * per_day))
        for k in np.unique(classes).tolist():
            channel = self._channels[(k, spec.channel)]
            rows = np.flatnonzero(classes == k)
            for lo in range(0, len(rows), chunk):
                part = rows[lo:lo + chunk]
                if per_day == 1:
                    out[part] = channel.day_totals(m[part], first_day, n_days)
                else:
                    values = channel.slot_values(m[part], first_day, n_days)
                    out[part] = values[:, first_slot:first_slot + count]
        return out

    def register(self, idx: npt.ArrayLike, code: str, t: int) -> I64:
        """Wh on the register at instant t (any t; between boundaries the current interval
        contributes floor(its energy * elapsed / period))."""
        spec = self._spec(code, "register")
        m, classes = self._meters(idx, spec)
        out = np.zeros(len(m), dtype=np.int64)
        local = int(t) + self._offset_s
        chunk = _CELLS_PER_CHUNK // SLOTS_PER_DAY
        for k in np.unique(classes).tolist():
            channel = self._channels[(k, spec.channel)]
            rows = np.flatnonzero(classes == k)
            for lo in range(0, len(rows), chunk):
                part = rows[lo:lo + chunk]
                out[part] = channel.register(m[part], local)
        return out

    def instant(self, idx: npt.ArrayLike, code: str, t: int) -> I64:
        """Decivolts at instant t (whole seconds)."""
        spec = self._spec(code, "instant")
        m, classes = self._meters(idx, spec)
        if not len(m):
            return np.zeros(0, dtype=np.int64)
        prosumer = classes == METER_CLASSES.index("prosumer")
        return self._voltage.at(m, self.fleet.feeders_of(m), prosumer, int(t) + self._offset_s, int(t))

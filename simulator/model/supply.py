"""When each meter had no supply: the only history the relay leaves on readings.

A meter's history is a sorted list of half-open periods [start, end) in unix seconds, the last
one possibly still open (end None). Only meters that were ever switched off have an entry, so
memory grows with the periods that happened, never with the fleet; a million connected meters
cost nothing here. Readings subtract the energy of these periods from what the meter would
have measured (see `readings.py`), so nothing about a period is stored but its two instants.

History is append-only per meter: a change earlier than that meter's last change is refused,
because it would rewrite readings already given out.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

Period = tuple[int, int | None]  # [start, end); end None while the supply is still off


def _start(p: Period) -> int:
    return p[0]


def _clipped(periods: list[Period], a: int, b: int) -> Iterator[tuple[int, int]]:
    """Parts of sorted disjoint periods inside [a, b), non-empty."""
    if a >= b:
        return
    # Only the period before the first start >= a can reach back into the range; most meters
    # have one or two periods, where a scan beats the bisection.
    k = max(bisect_left(periods, a, key=_start) - 1, 0) if len(periods) > 4 else 0
    for i in range(k, len(periods)):
        start, end = periods[i]
        if start >= b:
            break
        lo = start if start > a else a
        hi = b if end is None or end > b else end
        if lo < hi:
            yield lo, hi


def _meters(idx: npt.ArrayLike) -> I64:
    return np.asarray(idx, dtype=np.int64).ravel()


class SupplyHistory:
    """Per-meter periods without supply [start, end) in unix seconds; memory only per period."""

    def __init__(self) -> None:
        self._periods: dict[int, list[Period]] = {}
        self._keys: I64 | None = None  # sorted meters with any period, rebuilt when one is added

    # -- changes ------------------------------------------------------------------------------
    def _check_order(self, meters: list[int], t: int) -> None:
        """Refuse the whole change before touching anything, so a bad call changes no meter."""
        for meter in meters:
            periods = self._periods.get(meter)
            if periods:
                start, end = periods[-1]
                last = start if end is None else end
                if t < last:
                    raise ValueError(f"meter {meter}: supply change at {t} is before its last change at {last}; "
                                     "history is append-only")

    def off(self, idx: npt.ArrayLike, t: int) -> BOOL:
        """Supply goes off at t for these meters; returns which of them were on until now.

        A meter already off stays in its open period (no new period, no error).
        """
        t = int(t)
        meters = _meters(idx).tolist()
        self._check_order(meters, t)
        changed = np.zeros(len(meters), dtype=bool)
        for pos, meter in enumerate(meters):
            periods = self._periods.get(meter)
            if periods is None:
                self._periods[meter] = [(t, None)]
                self._keys = None
            elif periods[-1][1] is not None:
                periods.append((t, None))
            else:
                continue
            changed[pos] = True
        return changed

    def on(self, idx: npt.ArrayLike, t: int) -> BOOL:
        """Supply comes back at t; returns which of these meters were off until now.

        An off period that would end where it began is dropped: it took no energy.
        """
        t = int(t)
        meters = _meters(idx).tolist()
        self._check_order(meters, t)
        changed = np.zeros(len(meters), dtype=bool)
        for pos, meter in enumerate(meters):
            periods = self._periods.get(meter)
            if periods is None or periods[-1][1] is not None:
                continue
            changed[pos] = True
            start = periods[-1][0]
            if t == start:
                periods.pop()
                if not periods:
                    del self._periods[meter]
                    self._keys = None
            else:
                periods[-1] = (start, t)
        return changed

    # -- questions ----------------------------------------------------------------------------
    def periods(self, meter: int) -> list[Period]:
        """A copy of one meter's periods, oldest first."""
        return list(self._periods.get(int(meter), ()))

    def meters(self) -> I64:
        """Sorted meters that have at least one period."""
        if self._keys is None:
            self._keys = np.array(sorted(self._periods), dtype=np.int64)
        return self._keys

    def positions_with_periods(self, m: I64) -> I64:
        """Positions in `m` of meters that have any period: the only rows readings must adjust.

        Costs a binary search per requested meter and nothing when no meter ever lost supply.
        """
        keys = self.meters()
        if not len(keys) or not len(m):
            return np.zeros(0, dtype=np.int64)
        at = np.minimum(np.searchsorted(keys, m), len(keys) - 1)
        return np.flatnonzero(keys[at] == m)

    def overlapping(self, meter: int, a: int, b: int) -> Iterator[tuple[int, int]]:
        """The parts of this meter's periods inside [a, b), clipped and non-empty, oldest first."""
        periods = self._periods.get(int(meter))
        if periods:
            yield from _clipped(periods, a, b)

    def spans(self, m: I64, a: int, b: int) -> tuple[I64, I64, I64]:
        """Every period part inside [a, b) of the meters in `m`, as (position in m, start, end)
        arrays: work per meter that has periods, none for the others."""
        rows: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        pos = self.positions_with_periods(m)
        for row, meter in zip(pos.tolist(), m[pos].tolist(), strict=True):
            for lo, hi in _clipped(self._periods[meter], a, b):
                rows.append(row)
                starts.append(lo)
                ends.append(hi)
        return (np.array(rows, dtype=np.int64), np.array(starts, dtype=np.int64),
                np.array(ends, dtype=np.int64))

    def is_off(self, idx: npt.ArrayLike, t: int) -> BOOL:
        """Which meters had no supply at instant t (a period covers its start, not its end)."""
        m = _meters(idx)
        out = np.zeros(len(m), dtype=bool)
        rows, _, _ = self.spans(m, int(t), int(t) + 1)
        out[rows] = True
        return out

    def __len__(self) -> int:
        """Number of periods recorded (open ones included)."""
        return sum(len(p) for p in self._periods.values())

"""Maximum demand: the highest 15-minute average power since the billing period began.

A billing period begins at the later of the meter's last demand reset and the start of the
local calendar month (meters reset themselves at month start). The value at t is

    max over 15-minute intervals whose end lies in (period start, t] of interval Wh * 4   [W]

(0 when no interval has ended yet). An interval in progress at a reset counts when it ends,
as on a real register, whose running interval is compared with the cleared maximum when it
completes. The interval energies are the metered ones, so time without supply lowers demand.
Nothing is stored but the resets: memory per reset, never per meter or per interval.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from .calendar import DAY_S, civil, epoch_day

I64 = npt.NDArray[np.int64]

DEMAND_INTERVAL_S = 900
NO_RESET = np.iinfo(np.int64).min  # last_reset() of a meter never reset
_CELLS_PER_CHUNK = 1 << 19  # (meters x intervals) per step; a month is ~3,000 intervals


class DemandResets:
    """Demand resets per meter (sorted instants); memory only per reset that happened."""

    def __init__(self) -> None:
        self._resets: dict[int, list[int]] = {}
        self._keys: I64 | None = None

    def reset(self, idx: npt.ArrayLike, t: int) -> None:
        """A demand reset at t starts a new maximum-demand period for these meters."""
        t = int(t)
        for meter in np.asarray(idx, dtype=np.int64).ravel().tolist():
            resets = self._resets.get(meter)
            if resets is None:
                self._resets[meter] = [t]
                self._keys = None
            elif resets[-1] <= t:
                if resets[-1] != t:
                    resets.append(t)
            elif t not in resets:  # out of order is harmless for a max: keep the list sorted
                insort(resets, t)

    def resets(self, meter: int) -> list[int]:
        return list(self._resets.get(int(meter), ()))

    def last_reset(self, idx: npt.ArrayLike, t: int) -> I64:
        """Latest reset at or before t per meter, NO_RESET where there is none."""
        m = np.asarray(idx, dtype=np.int64).ravel()
        out = np.full(len(m), NO_RESET, dtype=np.int64)
        if self._keys is None:
            self._keys = np.array(sorted(self._resets), dtype=np.int64)
        keys = self._keys
        if not len(keys) or not len(m):
            return out
        at = np.minimum(np.searchsorted(keys, m), len(keys) - 1)
        t = int(t)
        for pos in np.flatnonzero(keys[at] == m).tolist():
            resets = self._resets[int(m[pos])]
            k = np.searchsorted(resets, t, side="right")
            if k:
                out[pos] = resets[k - 1]
        return out

    def __len__(self) -> int:
        return sum(len(r) for r in self._resets.values())


def local_month_start(t: int, offset_s: int) -> int:
    """Unix time of local midnight on the 1st of the month holding instant t."""
    y, mo, _ = civil((int(t) + offset_s) // DAY_S)
    return epoch_day(y, mo, 1) * DAY_S - offset_s


def max_demand_w(
    interval_wh: Callable[[I64, int, int], I64],
    period_start: I64,
    t: int,
) -> I64:
    """Maximum 15-minute demand in W per meter over intervals ending in (period_start, t].

    `interval_wh(positions, first, count)` returns metered Wh of the 15-minute intervals from
    the aligned instant `first` for the meters at those positions of `period_start`. A period
    start may lie anywhere (a reset mid-interval); the 15-minute grid is the same in UTC and
    local time because UTC offsets are whole quarter hours.
    """
    n = len(period_start)
    out = np.zeros(n, dtype=np.int64)
    if not n:
        return out
    t = int(t)
    order = np.argsort(period_start, kind="stable")  # meters with close starts share a window
    p = DEMAND_INTERVAL_S
    lo = 0
    while lo < n:
        # Chunk by cells, sized by the longest window in the chunk (its earliest start).
        first_start = int(period_start[order[lo]])
        span = max(1, (t - first_start) // p + 1)
        step = max(1, _CELLS_PER_CHUNK // span)
        pos = order[lo:lo + step]
        lo += step
        starts = period_start[pos]
        first = first_start - (first_start % p)  # global alignment: 15-min grid in unix time
        count = (t - first) // p  # intervals that have ended by t
        if count <= 0:
            continue
        values = interval_wh(pos, first, count)
        # Interval k ends at first + (k + 1) * p; it counts when that end is after the start.
        skip = (starts - first) // p
        live = np.arange(count)[None, :] >= skip[:, None]
        out[pos] = np.where(live, values, 0).max(axis=1) * 4
    return out

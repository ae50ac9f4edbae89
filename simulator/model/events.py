"""Every end-device event that happened, queryable by meter, type and time.

Memory is per event: four packed columns (meter, time, type number, context number: 24 bytes
an event) plus a per-meter index (16 bytes an event) built on the first query by meters. What
many events share is stored once: event types as a table of strings, and the issuer tracking
ID, correlation ID and details of an append as one context entry (a group disconnect of 10,000
meters stores one context, not 10,000). Nothing is kept per meter that has no event.

Events are numbered in append order (`seq`, from 0); queries answer sorted by (t, seq), so two
events at the same instant keep the order they happened in. The per-meter index covers the
events present when it was built; newer ones are scanned directly until there are enough of
them to make rebuilding worth it, so appending between queries never costs a full re-sort.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]

_MIN_TAIL = 1 << 16  # events scanned directly before the index is rebuilt ...
_TAIL_SHARE = 8  # ... or 1/8 of the indexed events, whichever is larger

Details = tuple[tuple[str, str], ...]
_Context = tuple[str | None, str | None, Details]


class Event(NamedTuple):
    """Immutable; a named tuple because building a million of them is 5x faster than a dataclass."""

    seq: int  # append order, from 0
    meter: int
    t: int  # unix seconds (sim time) when it happened
    event_type: str  # EndDeviceEventType code, e.g. "3.31.0.68"
    issuer_tracking_id: str | None
    correlation_id: str | None
    details: Details  # EndDeviceEventDetails (name, value) pairs


class EventLog:
    """Every event that happened, in append order; memory per event; query by meters/types/time."""

    def __init__(self) -> None:
        self._meter = array("q")
        self._t = array("q")
        self._type = array("i")
        self._ctx = array("i")
        self._types: list[str] = []
        self._type_ids: dict[str, int] = {}
        self._contexts: list[_Context] = []
        self._context_ids: dict[_Context, int] = {}
        self._order: I64 = np.zeros(0, dtype=np.int64)  # seqs sorted by meter (stable)
        self._sorted_meters: I64 = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._meter)

    def _intern_type(self, event_type: str) -> int:
        k = self._type_ids.get(event_type)
        if k is None:
            k = self._type_ids[event_type] = len(self._types)
            self._types.append(event_type)
        return k

    def _intern_context(self, ctx: _Context) -> int:
        k = self._context_ids.get(ctx)
        if k is None:
            k = self._context_ids[ctx] = len(self._contexts)
            self._contexts.append(ctx)
        return k

    def append(
        self,
        meters: npt.ArrayLike,
        t: int | npt.ArrayLike,
        event_type: str,
        issuer_tracking_id: str | None = None,
        correlation_id: str | None = None,
        details: Sequence[tuple[str, str]] = (),
    ) -> list[Event]:
        """Record one event per meter (in the given order) and return them.

        `t` is one instant for all, or one per meter (customers close armed relays at their own
        times); fractions of a second are dropped.
        """
        m = np.asarray(meters, dtype=np.int64).ravel()
        n = len(m)
        times = np.broadcast_to(np.asarray(t, dtype=np.float64), (n,)).astype(np.int64)
        if not n:
            return []
        type_id = self._intern_type(str(event_type))
        ctx = (issuer_tracking_id, correlation_id, tuple((str(a), str(b)) for a, b in details))
        ctx_id = self._intern_context(ctx)
        seq0 = len(self._meter)
        self._meter.frombytes(m.tobytes())
        self._t.frombytes(times.tobytes())
        self._type.frombytes(np.full(n, type_id, dtype=np.int32).tobytes())
        self._ctx.frombytes(np.full(n, ctx_id, dtype=np.int32).tobytes())
        tid, cid, det = ctx
        return [Event(seq0 + k, meter, when, event_type, tid, cid, det)
                for k, (meter, when) in enumerate(zip(m.tolist(), times.tolist(), strict=True))]

    def event(self, seq: int) -> Event:
        tid, cid, det = self._contexts[self._ctx[seq]]
        return Event(int(seq), self._meter[seq], self._t[seq], self._types[self._type[seq]], tid, cid, det)

    # -- queries ------------------------------------------------------------------------------
    # Numpy views of the columns are dropped as soon as they are used: a live view pins the
    # array's buffer, and the next append could not grow it.
    def _positions_of(self, meters: I64) -> I64:
        """Seqs of these meters' events (unsorted); the index is refreshed when the tail is long."""
        n = len(self._meter)
        indexed = len(self._order)
        if n - indexed > max(_MIN_TAIL, indexed // _TAIL_SHARE):
            all_meters = np.frombuffer(self._meter, dtype=np.int64).copy()
            self._order = np.argsort(all_meters, kind="stable").astype(np.int64)
            self._sorted_meters = all_meters[self._order]
            indexed = n
        q = np.unique(meters)
        lo = np.searchsorted(self._sorted_meters, q, side="left")
        hi = np.searchsorted(self._sorted_meters, q, side="right")
        lengths = hi - lo
        total = int(lengths.sum())
        # order[lo_i:hi_i] for every i in one gather.
        run_start = np.repeat(lo - (np.cumsum(lengths) - lengths), lengths)
        found = self._order[run_start + np.arange(total)]
        if indexed < n:
            tail = np.frombuffer(self._meter, dtype=np.int64)[indexed:]
            hits = indexed + np.flatnonzero(np.isin(tail, q)).astype(np.int64)
            del tail
            found = np.concatenate([found, hits])
        return found

    def query(
        self,
        meters: npt.ArrayLike | None,
        types: Sequence[str] | None,
        start: int | None,
        end: int | None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events of these meters (None: all), of these types (None: all), with start <= t <= end
        (None: open), sorted by (t, seq); the first `limit` of them when given."""
        n = len(self._meter)
        if meters is None:
            pos = np.arange(n, dtype=np.int64)
        else:
            pos = self._positions_of(np.asarray(meters, dtype=np.int64).ravel())
        if not len(pos):
            return []
        t_view = np.frombuffer(self._t, dtype=np.int64)
        times = t_view[pos]
        del t_view
        keep = np.ones(len(pos), dtype=bool)
        if start is not None:
            keep &= times >= int(start)
        if end is not None:
            keep &= times <= int(end)
        if types is not None:
            ids = [self._type_ids[c] for c in dict.fromkeys(types) if c in self._type_ids]
            if not ids:
                return []
            type_view = np.frombuffer(self._type, dtype=np.int32)
            keep &= np.isin(type_view[pos], np.asarray(ids, dtype=np.int32))
            del type_view
        pos, times = pos[keep], times[keep]
        order = np.lexsort((pos, times))
        if limit is not None:
            order = order[:max(0, int(limit))]
        return [self.event(s) for s in pos[order].tolist()]

    def types_seen(self) -> tuple[str, ...]:
        """Event types recorded so far, in first-seen order."""
        return tuple(self._types)

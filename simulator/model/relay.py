"""The service relay of every meter: connected, disconnected or armed for closure.

State is one byte per meter. An operation's outcome is drawn from counter-based hashes of
(fleet seed, action, request key, meter), so the same request gives the same successes and
customer delays in any process, for any subset or order of meters, with no random state
carried between requests. What the relay does to the data is recorded in `SupplyHistory`
(supply off at a disconnect, on at a connect or when the customer closes an armed relay),
which is all readings need.

Rules, in order, for each meter of `operate(idx, action, t, key)`:
1. the operation fails (ok False, nothing changes) with `failure_probability`, and always for
   meters in `failure_meters` — whatever the state, as the head-end cannot tell a relay that
   would not move from one that did not need to;
2. disconnect: CONNECTED or ARMED -> DISCONNECTED (supply off at t; an ARMED meter was already
   off); on DISCONNECTED it succeeds or fails per `disconnect_when_disconnected`;
3. connect: DISCONNECTED or ARMED -> CONNECTED (supply on at t); on CONNECTED per
   `connect_when_connected`;
4. arm: DISCONNECTED -> ARMED (supply stays off). The customer closes it with
   `customer_closes_probability` after a lognormal delay (median `customer_delay_median_s`,
   sigma 0.8), returned as `customer_close_at` for the caller to schedule `customer_close`.
   On CONNECTED, arming is reported ok with nothing to do (the relay is already closed, which is
   what arming leads to); on ARMED it is ok and changes nothing, and draws no new delay (the
   pending customer action from the first arming still stands). customer_close_at is nan for
   both.

Outages (`outage_begins` / `outage_ends`, driven by `incidents.py`) cut the grid side, not the
relay: supply is on exactly when the relay is CONNECTED and no outage covers the meter. The
outages covering each meter are counted (2 bytes a meter), so overlapping outages need no
bookkeeping of their own: power returns when the last one ends. While a meter is under an
outage, relay moves change its state only; the supply follows when the outage ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .comms import LatencySpec, _Latency  # one lognormal sampler (IEEE-exact table) for the model
from .fleet import Fleet
from .hashing import GOLDEN, MASK64, U64, derive_key, hash_u64, mix_inplace, unit
from .supply import SupplyHistory

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]
U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]

CONNECTED, DISCONNECTED, ARMED = 0, 1, 2
STATE_NAMES: tuple[str, ...] = ("connected", "disconnected", "armed")  # indexed by state
ACTIONS = ("disconnect", "connect", "arm")
WHEN_ALREADY = ("success", "failure")
CUSTOMER_DELAY_SIGMA = 0.8

_FAIL_DRAW, _CLOSES_DRAW, _DELAY_DRAW = 0, 1, 2


@dataclass(frozen=True)
class RelayConfig:
    failure_probability: float = 0.01  # a relay operation fails (seeded per (key, meter))
    failure_meters: tuple[int, ...] = ()  # always fail (a cohort resolved to indices by the app)
    connect_when_connected: str = "success"  # "success" (idempotent) | "failure"
    disconnect_when_disconnected: str = "success"
    customer_closes_probability: float = 0.9  # an armed meter is closed by the customer ...
    customer_delay_median_s: float = 1800.0  # ... after a lognormal delay (sigma 0.8)


@dataclass
class RelayResult:
    """Per-meter outcome of one operation, arrays aligned with `idx`."""

    idx: I64
    ok: BOOL
    state_before: U8
    state_after: U8
    customer_close_at: F64  # unix s when the customer closes an armed relay; nan: never / not armed now

    def __len__(self) -> int:
        return len(self.idx)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(f"relay: {message}")


def _draw(rows: U64, counter: int) -> F64:
    """Uniform draw number `counter` of each (request, meter) row."""
    return unit(mix_inplace(rows + np.uint64((counter * GOLDEN) & MASK64)))


class RelayModel:
    def __init__(self, fleet: Fleet, config: RelayConfig, supply: SupplyHistory) -> None:
        _check(0 <= config.failure_probability <= 1,
               f"failure_probability must lie in [0, 1], got {config.failure_probability}")
        _check(0 <= config.customer_closes_probability <= 1,
               f"customer_closes_probability must lie in [0, 1], got {config.customer_closes_probability}")
        _check(math.isfinite(config.customer_delay_median_s) and config.customer_delay_median_s > 0,
               f"customer_delay_median_s must be > 0, got {config.customer_delay_median_s}")
        for name in ("connect_when_connected", "disconnect_when_disconnected"):
            value = getattr(config, name)
            _check(value in WHEN_ALREADY, f"{name} must be one of {', '.join(WHEN_ALREADY)}, got {value!r}")
        fail = np.unique(np.asarray(config.failure_meters, dtype=np.int64))
        _check(not len(fail) or (int(fail[0]) >= 0 and int(fail[-1]) < fleet.size),
               f"failure_meters must lie in [0, {fleet.size})")
        self.fleet = fleet
        self.config = config
        self.supply = supply
        self.state: U8 = np.zeros(fleet.size, dtype=np.uint8)  # CONNECTED
        self.outages: U16 = np.zeros(fleet.size, dtype=np.uint16)  # outages covering each meter now
        self._fail_meters = fail
        self._delay = _Latency(LatencySpec("lognormal", median_s=config.customer_delay_median_s,
                                           sigma=CUSTOMER_DELAY_SIGMA), "relay customer delay")

    def _indices(self, idx: npt.ArrayLike) -> I64:
        ind = np.asarray(idx, dtype=np.int64).ravel()
        if len(ind) and (int(ind.min()) < 0 or int(ind.max()) >= self.fleet.size):
            raise IndexError(f"meter indices must lie in [0, {self.fleet.size})")
        return ind

    def _in_failure_cohort(self, ind: I64) -> BOOL:
        fail = self._fail_meters
        if not len(fail):
            return np.zeros(len(ind), dtype=bool)
        at = np.minimum(np.searchsorted(fail, ind), len(fail) - 1)
        return fail[at] == ind

    def operate(self, idx: npt.ArrayLike, action: str, t: int, key: int) -> RelayResult:
        """Apply one control to these meters at unix time t; `key` identifies the request.

        The meters must be distinct (ValueError otherwise): one operation moves a relay once.
        Operations must come in time order per meter: one that would switch a meter before its
        last switching raises ValueError from SupplyHistory and changes no meter.
        """
        _check(action in ACTIONS, f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        ind = self._indices(idx)
        _check(len(np.unique(ind)) == len(ind), "a meter appears twice in one operation")
        t = int(t)
        cfg = self.config
        n = len(ind)
        before = self.state[ind]
        rows = hash_u64(derive_key(self.fleet.seed, "relay", action, int(key)), ind)
        failed = (_draw(rows, _FAIL_DRAW) < cfg.failure_probability) | self._in_failure_cohort(ind)
        after = before.copy()
        close_at = np.full(n, np.nan)
        if action == "disconnect":
            moves = before != DISCONNECTED
            ok = ~failed & (moves | (cfg.disconnect_when_disconnected == "success"))
            go = ok & moves
            after[go] = DISCONNECTED
            # A no-op for ARMED meters and meters under an outage, whose supply is already off;
            # skipping the latter keeps a control dated before the outage from being refused.
            self.supply.off(ind[go & (self.outages[ind] == 0)], t)
        elif action == "connect":
            moves = before != CONNECTED
            ok = ~failed & (moves | (cfg.connect_when_connected == "success"))
            go = ok & moves
            after[go] = CONNECTED
            self.supply.on(ind[go & (self.outages[ind] == 0)], t)
        else:
            ok = ~failed
            go = ok & (before == DISCONNECTED)
            after[go] = ARMED
            if go.any():
                closes = go & (_draw(rows, _CLOSES_DRAW) < cfg.customer_closes_probability)
                close_at[closes] = t + self._delay.sample(_draw(rows[closes], _DELAY_DRAW))
        self.state[ind] = after
        return RelayResult(ind.copy(), ok, before, after, close_at)

    def customer_close(self, idx: npt.ArrayLike, t: int) -> BOOL:
        """The customer closes armed relays at t: ARMED -> CONNECTED, supply on. Returns which closed
        (meters no longer armed, e.g. disconnected again meanwhile, are left alone)."""
        ind = self._indices(idx)
        closed = self.state[ind] == ARMED
        go = ind[closed]
        self.state[go] = CONNECTED
        self.supply.on(go[self.outages[go] == 0], int(t))
        return closed

    def _distinct(self, idx: npt.ArrayLike) -> I64:
        ind = self._indices(idx)
        _check(len(np.unique(ind)) == len(ind), "a meter appears twice in one outage")
        return ind

    def outage_begins(self, idx: npt.ArrayLike, t: int) -> BOOL:
        """One more outage covers these distinct meters from unix time t; returns which lost grid
        power now (no other outage covered them), whatever their relay state: the meter itself
        is fed from the grid side, so those are the meters that can send a last gasp."""
        ind = self._distinct(idx)
        count = self.outages[ind]
        _check(bool((count < np.iinfo(np.uint16).max).all()), "too many overlapping outages on one meter")
        lost = count == 0
        self.supply.off(ind[lost & (self.state[ind] == CONNECTED)], int(t))
        self.outages[ind] = count + 1
        return lost

    def outage_ends(self, idx: npt.ArrayLike, t: int) -> BOOL:
        """One outage covering these distinct meters ends at t; returns which have grid power back
        (no other outage still covers them). Supply returns only where the relay is CONNECTED."""
        ind = self._distinct(idx)
        count = self.outages[ind]
        _check(bool((count > 0).all()), "an outage ends on a meter no outage covers")
        back = count == 1
        self.outages[ind] = count - 1
        self.supply.on(ind[back & (self.state[ind] == CONNECTED)], int(t))
        return back

    def counts(self) -> dict[str, int]:
        """Meters per state, for dashboards and logs."""
        c = np.bincount(self.state, minlength=len(STATE_NAMES))
        return {name: int(c[k]) for k, name in enumerate(STATE_NAMES)}

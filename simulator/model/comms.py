"""Communications: when and how each meter of a request answers, as a pure function.

A request's outcome per meter is computed, not simulated step by step: `plan()` draws every try
of every meter at once from counter-based hashes of (fleet seed, request key, meter, try), so
the same request gives the same latencies and outcomes in any process, for any subset or order
of meters, and no random state is carried from one request to the next. The scheduler then
only wakes when a batch of answers is due, so simulated cost grows with batches, not meters.

Every latency distribution is a piecewise-linear inverse CDF sampled with `np.interp` on a
uniform from the hash (IEEE-exact arithmetic only); the lognormal's transcendental functions are
evaluated once into a table, because SIMD and scalar `exp` may round differently by position.
The only per-meter memory is the comm class (1 byte per meter), drawn once from the class mix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from itertools import pairwise
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from .fleet import Fleet
from .hashing import GOLDEN, MASK64, U64, derive_key, hash_cells, hash_u64, mix_inplace, unit

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]

OUTCOME_OK, OUTCOME_FAILED, OUTCOME_TIMEOUT, OUTCOME_NO_DATA = 0, 1, 2, 3
OUTCOME_CODES: tuple[str, ...] = ("0.0", "5.3", "4.1", "5.7")  # indexed by OUTCOME_*

LATENCY_KINDS = ("fixed", "uniform", "lognormal", "empirical")
COHORT_MODES = ("unreachable", "slow", "flaky")
MAX_RETRIES = 254  # attempts are counted in a uint8

_UNIT_BITS = 53
_CLASS_CHUNK = 1 << 16
_LOGNORMAL_NODES = 8192  # inverse-CDF nodes; the extreme node sits ~4 sigma out
_NO_DATA_STREAM = 1 << 20  # hash counter of the "no data" draw; tries use 2t and 2t+1
_ONE_PASS_CELLS = 4096  # below this, one pass over all tries beats two passes
_CELLS_PER_CHUNK = 1 << 18  # (meter x try) cells planned at once: bounds temporaries at ~2 MB each


@dataclass(frozen=True)
class LatencySpec:
    kind: str  # "fixed" | "uniform" | "lognormal" | "empirical"
    value_s: float = 0.0  # fixed
    low_s: float = 0.0  # uniform
    high_s: float = 0.0
    median_s: float = 0.0  # lognormal (median = exp(mu))
    sigma: float = 0.0
    # empirical (p, seconds) points, inverse-CDF linear interpolation; p=0 -> 0 s unless given,
    # beyond the last p the last value holds.
    percentiles: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class CommClassSpec:
    name: str  # e.g. "rf_mesh", "cellular"
    latency: LatencySpec
    success: float = 0.98  # probability one attempt succeeds
    retries: int = 2  # extra attempts after a failed one
    retry_delay_s: float = 30.0  # wait before each retry (added to the failed attempt's latency)


@dataclass(frozen=True)
class CohortSpec:
    mode: str  # "unreachable" | "slow" | "flaky"
    fraction: float | None = None  # a seeded subset of the whole fleet of this share
    group: str | None = None  # a fleet group name: FEEDER-01, COLLECTOR-0003, CLASS-PROSUMER
    meters: tuple[int, ...] = ()  # explicit meter indices
    factor: float = 1.0  # slow: latency multiplier
    success: float | None = None  # flaky: per-attempt success probability replacing the class's
    start_s: float | None = None  # active from this sim time (None: from the start)
    end_s: float | None = None  # until this sim time, exclusive (None: forever)
    name: str = ""  # for logs/timeline; also seeds the fraction's subset (see _cohort_identity)


@dataclass(frozen=True)
class CommConfig:
    classes: tuple[CommClassSpec, ...]  # at least one
    class_mix: tuple[tuple[str, float], ...]  # share of meters per comm class, seeded per meter
    attempt_timeout_s: float = 120.0  # a meter with no answer by then (all tries) is "timed out"
    data_unavailable: float = 0.0  # probability a meter that answered has no data (5.7)
    cohorts: tuple[CohortSpec, ...] = ()


@dataclass
class AttemptPlan:
    """Per-meter results of one request, arrays aligned with `idx`."""

    idx: I64  # int64 meter indices
    done_at: F64  # sim seconds when the outcome is known (timeouts at start + attempt_timeout_s)
    outcome: npt.NDArray[np.uint8]  # OUTCOME_*
    attempts: npt.NDArray[np.uint8]  # tries made (started before the timeout)
    rtt_s: F64  # latency of the successful try (nan otherwise), for ping

    def __len__(self) -> int:
        return len(self.idx)

    def select(self, which: slice | npt.NDArray[np.integer]) -> AttemptPlan:
        """The same fields for a slice (views) or an index array (copies)."""
        return AttemptPlan(self.idx[which], self.done_at[which], self.outcome[which],
                           self.attempts[which], self.rtt_s[which])


# -- latency ------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _standard_normal_nodes() -> tuple[F64, F64]:
    """(p, z) nodes of the standard normal's inverse CDF; the open ends are clamped."""
    n = _LOGNORMAL_NODES
    nd = NormalDist()
    p = np.arange(n + 1, dtype=np.float64) / n
    z = [nd.inv_cdf(0.5 / n)] + [nd.inv_cdf(k / n) for k in range(1, n)] + [nd.inv_cdf(1 - 0.5 / n)]
    return p, np.array(z, dtype=np.float64)


def _check(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise ValueError(f"{where}: {message}")


def _latency_nodes(spec: LatencySpec, where: str) -> tuple[F64, F64]:
    """Inverse-CDF nodes (p ascending over [0, 1], seconds non-decreasing) of one distribution."""
    kind = spec.kind
    _check(kind in LATENCY_KINDS, where, f"latency kind must be one of {', '.join(LATENCY_KINDS)}, got {kind!r}")
    if kind == "fixed":
        _check(math.isfinite(spec.value_s) and spec.value_s >= 0, where, "fixed latency must be >= 0")
        return np.array([0.0, 1.0]), np.array([spec.value_s, spec.value_s], dtype=np.float64)
    if kind == "uniform":
        _check(math.isfinite(spec.high_s) and 0 <= spec.low_s <= spec.high_s, where,
               f"uniform latency needs 0 <= low_s <= high_s, got {spec.low_s}, {spec.high_s}")
        return np.array([0.0, 1.0]), np.array([spec.low_s, spec.high_s], dtype=np.float64)
    if kind == "lognormal":
        _check(math.isfinite(spec.median_s) and spec.median_s > 0, where, "lognormal median_s must be > 0")
        _check(math.isfinite(spec.sigma) and spec.sigma >= 0, where, "lognormal sigma must be >= 0")
        p, z = _standard_normal_nodes()
        values = [spec.median_s * math.exp(spec.sigma * v) for v in z.tolist()]
        return p, np.array(values, dtype=np.float64)
    points = [(float(p), float(s)) for p, s in spec.percentiles]
    _check(bool(points), where, "empirical latency needs at least one (p, seconds) point")
    ps = [p for p, _ in points]
    secs = [s for _, s in points]
    _check(all(0 <= p <= 1 for p in ps), where, "empirical percentiles must lie in [0, 1]")
    _check(all(a < b for a, b in pairwise(ps)), where, "empirical percentiles must increase")
    _check(all(math.isfinite(s) and s >= 0 for s in secs), where, "empirical seconds must be finite and >= 0")
    _check(all(a <= b for a, b in pairwise(secs)), where,
           "empirical seconds must not decrease as p grows")
    if ps[0] > 0:
        ps.insert(0, 0.0)
        secs.insert(0, 0.0)
    if ps[-1] < 1:
        ps.append(1.0)
        secs.append(secs[-1])
    return np.array(ps, dtype=np.float64), np.array(secs, dtype=np.float64)


class _Latency:
    """Samples one distribution: inverse-CDF nodes, linear between them.

    Nodes on the uniform grid k/N (the lognormal table) are found by arithmetic rather than a
    binary search: u*N is exact for N a power of two, so the cell and its fraction are exact.
    """

    def __init__(self, spec: LatencySpec, where: str) -> None:
        self._p, self._s = _latency_nodes(spec, where)
        self._grid = spec.kind == "lognormal"
        if self._grid:
            self._base = self._s[:-1].copy()
            self._slope = np.diff(self._s)

    def sample(self, u: F64) -> F64:
        if not self._grid:
            return np.interp(u, self._p, self._s)
        x = u * float(_LOGNORMAL_NODES)
        j = x.astype(np.int64)
        x -= j
        x *= self._slope[j]
        x += self._base[j]
        return x


def _stream(rows: U64, counter: int) -> U64:
    """One more hash per row: the draw number `counter` of each meter in this request."""
    z = rows + np.uint64((counter * GOLDEN) & MASK64)
    return mix_inplace(z)


# -- cohorts ------------------------------------------------------------------------------------

def _cohort_identity(spec: CohortSpec) -> str:
    """What seeds a fraction's subset: the name, or else every setting.

    Unnamed cohorts with identical settings pick the same meters; different settings (or
    different names) pick independent subsets, and one name nests: 10 % of "storm" lies in 20 %.
    """
    if spec.name:
        return "name:" + spec.name
    return "spec:" + repr(tuple(getattr(spec, f.name) for f in fields(spec) if f.name != "name"))


class _Cohort:
    """A cohort compiled against the fleet: membership by predicate, never a per-meter table."""

    def __init__(self, spec: CohortSpec, fleet: Fleet) -> None:
        where = f"cohort {spec.name or spec.mode!r}"
        _check(spec.mode in COHORT_MODES, where, f"mode must be one of {', '.join(COHORT_MODES)}, got {spec.mode!r}")
        _check(spec.fraction is not None or spec.group is not None or bool(spec.meters), where,
               "needs a fraction, a group or meters")
        if spec.fraction is not None:
            _check(0 <= spec.fraction <= 1, where, f"fraction must lie in [0, 1], got {spec.fraction}")
        if spec.mode == "slow":
            _check(math.isfinite(spec.factor) and spec.factor > 0, where, f"slow factor must be > 0, got {spec.factor}")
        if spec.mode == "flaky":
            _check(spec.success is not None and 0 <= spec.success <= 1, where,
                   f"flaky cohorts need success in [0, 1], got {spec.success}")
        if spec.start_s is not None and spec.end_s is not None:
            _check(spec.end_s > spec.start_s, where, "end_s must be after start_s")
        self.spec = spec
        self._fleet = fleet
        self._key = derive_key(fleet.seed, "comm-cohort", _cohort_identity(spec))
        self._range: tuple[int, int] | None = None
        self._class: int | None = None
        if spec.group is not None:
            group = fleet.group_by_name(spec.group)
            if group is None:
                raise ValueError(f"{where}: unknown group {spec.group!r} (e.g. FEEDER-01, COLLECTOR-0001, "
                                 "CLASS-RESIDENTIAL)")
            if group.kind == "class":
                self._class = fleet.classes.index(group.name.partition("-")[2].lower())
            else:  # feeders and collectors are runs of consecutive meters
                members = fleet.group_members(group)
                self._range = (int(members[0]), int(members[-1]) + 1)
        meters = np.unique(np.asarray(spec.meters, dtype=np.int64))
        if len(meters):
            _check(int(meters[0]) >= 0 and int(meters[-1]) < fleet.size, where,
                   f"meters must lie in [0, {fleet.size})")
        self._meters = meters

    def active_at(self, t: float) -> bool:
        s = self.spec
        return (s.start_s is None or t >= s.start_s) and (s.end_s is None or t < s.end_s)

    def contains(self, idx: I64) -> BOOL:
        s = self.spec
        inside = np.zeros(len(idx), dtype=bool)
        if s.fraction:
            inside |= (hash_u64(self._key, idx) >> np.uint64(64 - _UNIT_BITS)) < np.uint64(
                int(s.fraction * 2.0**_UNIT_BITS))
        if self._range is not None:
            inside |= (idx >= self._range[0]) & (idx < self._range[1])
        if self._class is not None:
            inside |= self._fleet.class_index[idx] == self._class
        if len(self._meters):
            at = np.minimum(np.searchsorted(self._meters, idx), len(self._meters) - 1)
            inside |= self._meters[at] == idx
        return inside

    def members(self) -> I64:
        parts = []
        for lo in range(0, self._fleet.size, _CLASS_CHUNK):
            chunk = np.arange(lo, min(lo + _CLASS_CHUNK, self._fleet.size), dtype=np.int64)
            parts.append(chunk[self.contains(chunk)])
        return np.concatenate(parts)


@dataclass
class _Draws:
    """One plan's per-meter inputs and outputs, by position in the request."""

    rows: U64  # hash of (request, meter): the root of every draw
    cls: npt.NDArray[np.uint8]
    success: F64  # per try; -1 for unreachable meters, so no draw passes
    factor: F64 | None  # slow cohorts' latency multiplier
    tries: I64
    at: F64  # when the next try starts (relative to the request's start)
    done_rel: F64
    outcome: npt.NDArray[np.uint8]
    attempts: npt.NDArray[np.uint8]
    rtt: F64


# -- the model ----------------------------------------------------------------------------------

class CommModel:
    def __init__(self, fleet: Fleet, config: CommConfig) -> None:
        _check(len(config.classes) >= 1, "comms", "at least one comm class is needed")
        _check(len(config.classes) <= 255, "comms", "at most 255 comm classes")
        names = tuple(c.name for c in config.classes)
        _check(len(set(names)) == len(names), "comms", "comm class names must be unique")
        _check(math.isfinite(config.attempt_timeout_s) and config.attempt_timeout_s > 0, "comms",
               f"attempt_timeout_s must be finite and > 0, got {config.attempt_timeout_s}")
        _check(0 <= config.data_unavailable <= 1, "comms", "data_unavailable must lie in [0, 1]")
        self.fleet = fleet
        self.config = config
        self.seed = fleet.seed
        self.class_names: tuple[str, ...] = names
        self._latencies: list[_Latency] = []
        for c in config.classes:
            where = f"comm class {c.name!r}"
            _check(0 <= c.success <= 1, where, f"success must lie in [0, 1], got {c.success}")
            _check(isinstance(c.retries, int) and 0 <= c.retries <= MAX_RETRIES, where,
                   f"retries must be an integer in [0, {MAX_RETRIES}], got {c.retries!r}")
            _check(math.isfinite(c.retry_delay_s) and c.retry_delay_s >= 0, where, "retry_delay_s must be >= 0")
            self._latencies.append(_Latency(c.latency, where))
        self._success = np.array([c.success for c in config.classes], dtype=np.float64)
        self._tries = np.array([c.retries + 1 for c in config.classes], dtype=np.int64)
        self._delay = np.array([c.retry_delay_s for c in config.classes], dtype=np.float64)
        self._timeout = float(config.attempt_timeout_s)
        self.comm_class = self._assign_classes()
        self._cohorts: list[_Cohort] = [_Cohort(c, fleet) for c in config.cohorts]

    def _assign_classes(self) -> npt.NDArray[np.uint8]:
        """Class per meter by comparing a 53-bit hash with cumulative shares in `classes` order."""
        share = dict(self.config.class_mix)
        _check(len(share) == len(self.config.class_mix), "comms", "class_mix names a class twice")
        for name, value in share.items():
            _check(name in self.class_names, "comms",
                   f"class_mix names unknown comm class {name!r}; known: {', '.join(self.class_names)}")
            _check(math.isfinite(value) and value >= 0, "comms", f"class_mix share of {name!r} must be >= 0")
        p = [float(share.get(name, 0.0)) for name in self.class_names]
        total = sum(p)
        _check(total > 0 or len(p) == 1, "comms", "class_mix shares must add up to more than 0")
        size = self.fleet.size
        used = [k for k, v in enumerate(p) if v > 0] or [0]
        if len(used) == 1:
            return np.full(size, used[0], dtype=np.uint8)
        full = 1 << _UNIT_BITS
        bounds, acc = [], 0.0
        for k in range(len(p) - 1):
            acc += p[k]
            bounds.append(full if sum(p[k + 1:]) == 0 else min(int(acc / total * 2.0**_UNIT_BITS), full))
        edges = np.array(bounds, dtype=np.uint64)
        key = derive_key(self.seed, "comm-class")
        shift = np.uint64(64 - _UNIT_BITS)
        out = np.empty(size, dtype=np.uint8)
        for lo in range(0, size, _CLASS_CHUNK):
            hi = min(lo + _CLASS_CHUNK, size)
            out[lo:hi] = np.searchsorted(edges, hash_u64(key, np.arange(lo, hi, dtype=np.uint64)) >> shift,
                                         side="right")
        return out

    @property
    def cohorts(self) -> tuple[CohortSpec, ...]:
        return tuple(c.spec for c in self._cohorts)

    def add_cohort(self, cohort: CohortSpec) -> None:
        """Affects plans made from now on; plans already made (jobs running) keep their outcomes.

        Cohorts whose window ended before the new one starts are dropped: plans are made at the
        current sim time, so they can never apply again, and a long run adds one per outage.
        """
        if cohort.start_s is not None:
            self._cohorts = [c for c in self._cohorts if c.spec.end_s is None or c.spec.end_s > cohort.start_s]
        self._cohorts.append(_Cohort(cohort, self.fleet))

    def cohort_members(self, cohort: CohortSpec) -> I64:
        return _Cohort(cohort, self.fleet).members()

    def _indices(self, idx: npt.ArrayLike) -> I64:
        ind = np.asarray(idx, dtype=np.int64).ravel()
        if len(ind) and (int(ind.min()) < 0 or int(ind.max()) >= self.fleet.size):
            raise IndexError(f"meter indices must lie in [0, {self.fleet.size})")
        return ind

    def comm_class_of(self, idx: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        return self.comm_class[self._indices(idx)]

    def _latency(self, u: F64, cls: npt.NDArray[np.uint8]) -> F64:
        """Latency of each (meter, try) cell: rows follow `cls`, columns are tries."""
        if len(self._latencies) == 1:
            return self._latencies[0].sample(u)
        out = np.empty(u.shape, dtype=np.float64)
        for k, latency in enumerate(self._latencies):
            m = cls == k
            if m.any():
                out[m] = latency.sample(u[m])
        return out

    def plan(self, idx: npt.ArrayLike, start_s: float, key: int) -> AttemptPlan:
        """Every meter's tries for request `key` starting at `start_s`.

        Draws are hash(seed, key, meter, draw number): a meter's result does not depend on the
        other meters asked. Cohorts apply if active at `start_s` (a window opening mid-request
        does not change it). Overlaps: unreachable wins, slow factors multiply, the lowest flaky
        success applies.
        """
        ind = self._indices(idx)
        n = len(ind)
        start = float(start_s)
        cls = self.comm_class[ind]
        success = self._success[cls]
        factor: F64 | None = None
        unreachable: BOOL | None = None
        flaky: F64 | None = None
        for cohort in self._cohorts:
            if not n or not cohort.active_at(start):
                continue
            inside = cohort.contains(ind)
            mode = cohort.spec.mode
            if mode == "unreachable":
                unreachable = inside if unreachable is None else unreachable | inside
            elif mode == "slow":
                factor = np.ones(n) if factor is None else factor
                factor[inside] *= cohort.spec.factor
            else:
                flaky = np.full(n, np.inf) if flaky is None else flaky
                flaky[inside] = np.minimum(flaky[inside], float(cohort.spec.success))  # type: ignore[arg-type]
        if flaky is not None:
            success = np.where(flaky <= 1.0, flaky, success)
        if unreachable is not None:
            success[unreachable] = -1.0  # no draw passes: every try fails, silently (see below)

        rows = hash_u64(derive_key(self.seed, "comm-plan", int(key)), ind)
        tries = self._tries[cls]
        d = _Draws(rows, cls, success, factor, tries, at=np.zeros(n), done_rel=np.empty(n),
                   outcome=np.empty(n, dtype=np.uint8), attempts=np.empty(n, dtype=np.uint8), rtt=np.empty(n))
        # A (meter x try) matrix per pass keeps the numpy call count independent of the tries.
        # Small requests take every try in one pass; large ones take first tries for everyone,
        # then the remaining tries for the few that failed. The passes give identical results.
        pos = np.arange(n)
        t0, n_tries = 0, int(tries.max()) if n else 1
        one_pass = n * n_tries <= _ONE_PASS_CELLS
        while len(pos) and t0 < n_tries:
            t1 = n_tries if t0 or one_pass else 1
            step = max(1, _CELLS_PER_CHUNK // (t1 - t0))
            pos = np.concatenate([self._play(d, pos[lo:lo + step], t0, t1) for lo in range(0, len(pos), step)])
            t0 = t1
        p_none = self.config.data_unavailable
        if p_none > 0:
            answered = np.flatnonzero(d.outcome == OUTCOME_OK)
            d.outcome[answered[unit(_stream(rows[answered], _NO_DATA_STREAM)) < p_none]] = OUTCOME_NO_DATA
        return AttemptPlan(ind.copy(), start + d.done_rel, d.outcome, d.attempts, d.rtt)

    def _play(self, d: _Draws, pos: I64, t0: int, t1: int) -> I64:
        """Tries t0..t1-1 of the meters at `pos` (whose earlier tries all failed in time).

        Try t starts when try t-1 failed plus the retry delay, and happens if it is within the
        meter's tries and starts by the timeout. The first try that succeeds and answers by the
        timeout is the answer. Without one, the meter failed (at its last try's end) if all its
        tries were made and heard in time, stays open if tries remain beyond t1, and otherwise
        timed out. Writes the outcome of every meter; returns the positions still open.
        """
        timeout = self._timeout
        width = t1 - t0
        rows, cls, success = d.rows[pos], d.cls[pos], d.success[pos]
        u = unit(hash_cells(rows, np.arange(2 * t0, 2 * t1, dtype=np.uint64)))  # draws 2t and 2t+1
        lat = self._latency(u[:, 0::2], cls)
        if d.factor is not None:
            lat *= d.factor[pos][:, None]
        passed = u[:, 1::2] < success[:, None]
        delay = self._delay[cls]
        begin = np.empty_like(lat)
        end = np.empty_like(lat)
        at = d.at[pos]
        for t in range(width):
            begin[:, t] = at
            end[:, t] = at + lat[:, t]
            at = end[:, t] + delay
        tries = d.tries[pos]
        made = (begin <= timeout) & (np.arange(t0, t1) < tries[:, None])  # a prefix of each row
        heard = end <= timeout
        won = passed & made & heard
        has_won = won.any(axis=1)
        first = won.argmax(axis=1)
        made_count = made.sum(axis=1)
        last = np.maximum(made_count - 1, 0)
        r = np.arange(len(pos))

        def pick(m: npt.NDArray[np.generic], k: I64) -> npt.NDArray[np.generic]:
            return m[:, 0] if width == 1 else m[r, k]

        last_heard = pick(heard, last) & (made_count > 0)
        failed = ~has_won & (t0 + made_count == tries) & last_heard & (success >= 0.0)
        still_open = ~has_won & (made_count == width) & last_heard & (tries > t1)
        d.outcome[pos] = np.where(has_won, OUTCOME_OK, np.where(failed, OUTCOME_FAILED, OUTCOME_TIMEOUT))
        d.attempts[pos] = np.where(has_won, t0 + first + 1, t0 + made_count)
        d.done_rel[pos] = np.where(has_won, pick(end, first), np.where(failed, pick(end, last), timeout))
        d.rtt[pos] = np.where(has_won, pick(lat, first), np.nan)
        d.at[pos] = at
        return pos[still_open]

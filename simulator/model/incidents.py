"""Incidents: outages, rated end-device events and event storms, one simpy process per kind.

Nothing here waits per meter. Unplanned outages are one Poisson stream over all feeders (or
collectors) together: the next arrival is drawn for the combined rate and the group it hits is
picked by a hash; rated events are one stream per `EventRate` over the whole fleet, the meter
picked by class weight. Every draw is `hash(seed, stream, sequence number, draw)`, so the same
seed gives the same incidents at the same instants, whatever requests the run served.

What an outage does is split by owner: the relay model counts the outages covering each meter
and keeps "supply on <=> CONNECTED and no outage" (`RelayModel.outage_begins/ends`); readings
then show zero consumption through `SupplyHistory`; comms gets an unreachable cohort for the
outage's window; the event log and `on_events` get the last gasps that arrive (3.26.0.85) and
the restorations (3.26.0.216). Overlapping outages on a meter count as one loss of power: a
meter already dark sends no second last gasp, and its restoration comes when the last ends.

Event batches passed to `on_events` are the events of one sim second (a storm or a rated
stream reports a second's events once its last one has happened).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np
import numpy.typing as npt
import simpy

from .clock import SimClock
from .comms import CohortSpec, CommModel, LatencySpec, _Latency
from .events import Event, EventLog
from .fleet import Fleet, Group
from .hashing import derive_key, hash_int, hash_u64, unit, unit_int
from .readingtypes import METER_CLASSES
from .relay import RelayModel
from .supply import SupplyHistory

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

LAST_GASP = "3.26.0.85"
POWER_RESTORED = "3.26.0.216"
SCOPES = ("feeder", "collector")
DAY_S = 86_400.0

_GAP, _PICK, _DURATION, _MEMBER = 0, 1, 2, 3  # draw numbers within one arrival
_DRAWS_PER_ARRIVAL = 4

EventSink = Callable[[list[Event]], None]


@dataclass(frozen=True)
class OutageConfig:
    rate_per_group_per_day: float = 0.0  # Poisson arrivals per feeder (or collector) per day; 0 = none
    scope: str = "feeder"  # "feeder" | "collector"
    duration_median_s: float = 3600.0  # lognormal duration
    duration_sigma: float = 1.0
    last_gasp_fraction: float = 0.8  # share of meters losing power whose last gasp arrives (per meter, per outage)


@dataclass(frozen=True)
class EventRate:
    event_type: str  # e.g. "3.12.43.257"
    per_meter_per_day: dict[str, float]  # by meter class name ("residential", ...); missing class = 0


@dataclass(frozen=True)
class IncidentConfig:
    outages: OutageConfig = OutageConfig()
    rates: tuple[EventRate, ...] = ()


@dataclass
class OutageRecord:
    """One outage as it happened, for summaries and tests (a few dozen bytes an outage)."""

    origin: str  # "unplanned" (Poisson stream) | "commanded" (timeline / control API)
    seq: int  # sequence number within its origin
    group: str | None  # the feeder or collector of an unplanned outage
    start_s: float  # sim seconds
    end_s: float
    meters: int  # meters covered
    lost_power: int  # of which had power until then
    last_gasps: int  # last gasps that arrived
    restored: int = field(default=0)  # meters whose power came back when it ended


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(f"incidents: {message}")


def _finite_nonneg(x: float) -> bool:
    return math.isfinite(x) and x >= 0


def _validate(config: IncidentConfig) -> None:
    o = config.outages
    _check(_finite_nonneg(o.rate_per_group_per_day), f"outage rate must be >= 0, got {o.rate_per_group_per_day}")
    _check(o.scope in SCOPES, f"outage scope must be one of {', '.join(SCOPES)}, got {o.scope!r}")
    _check(math.isfinite(o.duration_median_s) and o.duration_median_s > 0,
           f"outage duration_median_s must be > 0, got {o.duration_median_s}")
    _check(_finite_nonneg(o.duration_sigma), f"outage duration_sigma must be >= 0, got {o.duration_sigma}")
    _check(0 <= o.last_gasp_fraction <= 1, f"last_gasp_fraction must lie in [0, 1], got {o.last_gasp_fraction}")
    for r in config.rates:
        _check(bool(r.event_type), "an event rate needs an event_type")
        for name, value in r.per_meter_per_day.items():
            _check(name in METER_CLASSES, f"event rate {r.event_type}: unknown meter class {name!r}; "
                   f"known: {', '.join(METER_CLASSES)}")
            _check(_finite_nonneg(value), f"event rate {r.event_type} for {name} must be >= 0, got {value}")


def _exponential(u: float, rate_per_s: float) -> float:
    """Inverse CDF of the gap between Poisson arrivals; u in [0, 1)."""
    return -math.log1p(-u) / rate_per_s


class IncidentModel:
    def __init__(self, env: simpy.Environment, fleet: Fleet, clock: SimClock, supply: SupplyHistory,
                 relay: RelayModel, comms: CommModel, events: EventLog, config: IncidentConfig,
                 on_events: EventSink) -> None:
        """`supply` must be the history the relay writes to: outages reach it through the relay."""
        _validate(config)
        _check(relay.supply is supply, "the relay must record into the same SupplyHistory")
        self.env = env
        self.fleet = fleet
        self.clock = clock
        self.supply = supply
        self.relay = relay
        self.comms = comms
        self.events = events
        self.config = config
        self.on_events = on_events
        self.outages: list[OutageRecord] = []
        self._seed = fleet.seed
        self._commanded = 0
        self._storms = 0
        self._started = False
        self._members: dict[int, I64] = {}
        o = config.outages
        self._duration = _Latency(LatencySpec("lognormal", median_s=o.duration_median_s, sigma=o.duration_sigma),
                                  "outage duration")

    # -- public ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the outage stream and one stream per event rate (those with a rate above 0)."""
        _check(not self._started, "already started")
        self._started = True
        if self.config.outages.rate_per_group_per_day > 0:
            self.env.process(self._outage_stream())
        seen: dict[str, int] = {}
        for rate in self.config.rates:
            # Keyed by type and its repeat number, so reordering the list keeps each stream.
            nth = seen[rate.event_type] = seen.get(rate.event_type, -1) + 1
            if self._class_weights(rate)[-1] > 0:
                self.env.process(self._batched(rate.event_type, self._rated_arrivals(rate, nth), powered_only=True))

    def outage(self, meters: npt.ArrayLike, duration_s: float, reason: str = "") -> None:
        """A commanded outage from now for `duration_s` sim seconds (duplicates count once)."""
        _check(math.isfinite(duration_s) and duration_s > 0, f"outage duration must be > 0, got {duration_s}")
        seq = self._commanded
        self._commanded += 1
        self._begin(np.unique(np.asarray(meters, dtype=np.int64)), float(duration_s), reason, "commanded", seq, None)

    def storm(self, meters: npt.ArrayLike, event_type: str, within_s: float) -> None:
        """One event of `event_type` per meter at a seeded instant in [now, now + within_s)."""
        _check(bool(event_type), "a storm needs an event type")
        _check(_finite_nonneg(within_s), f"storm window must be >= 0, got {within_s}")
        m = np.unique(np.asarray(meters, dtype=np.int64))
        _check(not len(m) or (int(m[0]) >= 0 and int(m[-1]) < self.fleet.size),
               f"meters must lie in [0, {self.fleet.size})")
        seq = self._storms
        self._storms += 1
        u = unit(hash_u64(derive_key(self._seed, "incident", "storm", seq), m))
        times = self.env.now + u * float(within_s)
        order = np.argsort(times, kind="stable")
        arrivals = zip(times[order].tolist(), m[order].tolist(), strict=True)
        self.env.process(self._batched(event_type, arrivals))

    @property
    def under_outage(self) -> BOOL:
        """Which meters an outage covers now (a fresh bool array; the counts are `relay.outages`)."""
        return self.relay.outages > 0

    # -- outages --------------------------------------------------------------------------------
    def _group(self, k: int) -> Group:
        scope = self.config.outages.scope
        return self.fleet._feeder_group(k) if scope == "feeder" else self.fleet._collector_group(k)

    def _outage_stream(self) -> Generator[simpy.Event, object, None]:
        o = self.config.outages
        n_groups = self.fleet.n_feeders if o.scope == "feeder" else self.fleet.n_collectors
        rate_per_s = o.rate_per_group_per_day * n_groups / DAY_S
        key = derive_key(self._seed, "incident", "outage-arrivals")
        t = self.env.now
        seq = 0
        while True:
            base = seq * _DRAWS_PER_ARRIVAL
            t += _exponential(unit_int(hash_int(key, base + _GAP)), rate_per_s)
            yield self.env.timeout(t - self.env.now)
            group = self._group(min(int(unit_int(hash_int(key, base + _PICK)) * n_groups), n_groups - 1))
            u = np.array([unit_int(hash_int(key, base + _DURATION))])
            duration = float(self._duration.sample(u)[0])
            self._begin(self.fleet.group_members(group), duration, f"unplanned outage on {group.name}",
                        "unplanned", seq, group.name)
            seq += 1

    def _begin(self, meters: I64, duration: float, reason: str, origin: str, seq: int, group: str | None) -> None:
        now = self.env.now
        t = self.clock.now_unix()
        lost = self.relay.outage_begins(meters, t)  # validates the indices before anything changes
        if group is not None or len(meters):  # a cohort must name someone
            cohort_meters = () if group is not None else tuple(meters.tolist())
            self.comms.add_cohort(CohortSpec("unreachable", group=group, meters=cohort_meters, start_s=now,
                                             end_s=now + duration, name=f"outage {origin} {seq}"))
        u = unit(hash_u64(derive_key(self._seed, "incident", "last-gasp", origin, seq), meters))
        gasp = lost & (u < self.config.outages.last_gasp_fraction)
        details = (("Reason", reason),) if reason else ()
        record = OutageRecord(origin, seq, group, now, now + duration, len(meters), int(lost.sum()), int(gasp.sum()))
        self.outages.append(record)
        self._report(self.events.append(meters[gasp], t, LAST_GASP, details=details))
        ends = self.env.timeout(duration)
        ends.callbacks.append(lambda _: self._end(meters, details, record))

    def _end(self, meters: I64, details: tuple[tuple[str, str], ...], record: OutageRecord) -> None:
        t = self.clock.now_unix()
        back = self.relay.outage_ends(meters, t)
        record.restored = int(back.sum())
        self._report(self.events.append(meters[back], t, POWER_RESTORED, details=details))

    # -- rated events and storms ----------------------------------------------------------------
    def _class_weights(self, rate: EventRate) -> list[float]:
        """Cumulative events per day by class, in METER_CLASSES order."""
        counts = self.fleet.class_counts
        return list(accumulate(rate.per_meter_per_day.get(name, 0.0) * counts[k]
                               for k, name in enumerate(METER_CLASSES)))

    def _class_members(self, k: int) -> I64:
        members = self._members.get(k)
        if members is None:
            members = self._members[k] = np.flatnonzero(self.fleet.class_index == k).astype(np.int64)
        return members

    def _rated_arrivals(self, rate: EventRate, nth: int) -> Iterator[tuple[float, int]]:
        """(sim time, meter) of every event of this rate, forever, in time order."""
        cumulative = self._class_weights(rate)
        total = cumulative[-1]
        rate_per_s = total / DAY_S
        key = derive_key(self._seed, "incident", "rate", rate.event_type, nth)
        t = self.env.now
        seq = 0
        while True:
            base = seq * _DRAWS_PER_ARRIVAL
            t += _exponential(unit_int(hash_int(key, base + _GAP)), rate_per_s)
            # Classes with zero weight occupy no width, so bisect never lands on them.
            k = min(bisect_right(cumulative, unit_int(hash_int(key, base + _PICK)) * total), len(cumulative) - 1)
            members = self._class_members(k)
            j = min(int(unit_int(hash_int(key, base + _MEMBER)) * len(members)), len(members) - 1)
            yield t, int(members[j])
            seq += 1

    def _batched(self, event_type: str, arrivals: Iterator[tuple[float, int]],
                 powered_only: bool = False) -> Generator[simpy.Event, object, None]:
        """Report arrivals a sim second at a time, once the second's last one has happened."""
        pending = next(arrivals, None)
        while pending is not None:
            second = math.floor(pending[0])
            last = pending[0]
            meters: list[int] = []
            while pending is not None and math.floor(pending[0]) == second:
                last = pending[0]
                meters.append(pending[1])
                pending = next(arrivals, None)
            if last > self.env.now:
                yield self.env.timeout(last - self.env.now)
            who = np.array(meters, dtype=np.int64)
            if powered_only:
                who = who[self.relay.outages[who] == 0]  # a meter without power raises no alarm
            self._report(self.events.append(who, self.clock.to_unix(second), event_type))

    def _report(self, batch: list[Event]) -> None:
        if batch:
            self.on_events(batch)

"""Scheduled pushes: `Created MeterReadings` sent unasked to the MDMS, daily or hourly.

A daily push sends the previous local day (interval types over the day, registers and
instantaneous values at its end); an hourly push the previous local hour. The meters (a group or
the whole fleet, in index order, keeping those that record at least one of the push's reading
types) are cut into batches of `batch_meters`; message k of n (MessageIndex "k/n") leaves at
push time + (k-1) * window_s / n, so a big fleet's push is spread over the delivery window. Every
destination gets every message; all messages of one push share a CorrelationID.

Imperfections, each decided by counter-based hashes so a seed always gives the same run:
- missing meters, per (push, meter): left out of their batch and delivered later in backfill
  messages (batched the same way, spread over the same window, `backfill_after_s` after the
  push). A backfill message has its own CorrelationID and MessageIndex sequence and carries
  Properties `Backfill` = "true" and `BackfillOf` = the push's CorrelationID, so a receiver that
  assembles "k/n" per CorrelationID never sees one sequence with two "1/1"s.
- gaps, per (meter, ReadingType, interval start), independent of which push carries them:
  intervals the head-end did not collect. By default written with no value and quality 2.5.259
  (system 2 = the head-end, category 5 reasonability, 259 known missing); with `estimate_gaps`
  the head-end's estimate (the model value) flagged 2.8.0 (estimated). Registers have no gaps.
- duplicates, per message: the same bytes handed over twice in a row.
A meter whose supply was off simply reads 0: that is measured data and carries no flag.

One simpy process per PushSpec keeps an agenda (the next scheduled push, then the messages and
backfills due), so the number of processes does not grow with the fleet or the batches.
Message bodies are built when they leave, one batch at a time; values come from `Readings`.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import simpy

from ..cim.messages import build_event
from ..cim.meterreadings import build_meter_readings
from ..errors import SimulatorError
from ..model.calendar import DAY_S
from ..model.hashing import as_u64, derive_key, hash_cells, hash_int, hash_u64, unit, unit_int
from ..model.readingtypes import reading_type
from ..timeutil import format_datetime
from .meterreadings import Channel, FlagIntervals, IntervalFlags, ReadPlan, build_payload
from .readjob import CREATED_WRAPPER, SOAP_ACTION_CREATED, OutboundPart

if TYPE_CHECKING:
    from .dispatch import HeadEnd

HOUR_S = 3600
QUALITY_KNOWN_MISSING = "2.5.259"  # head-end (MDC): reasonability, known missing read
QUALITY_ESTIMATED = "2.8.0"        # head-end (MDC): estimated, generic
DEFAULT_READING_TYPES = ("0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0",)


@dataclass(frozen=True)
class PushSpec:
    name: str
    every: str = "daily"              # "daily" (at `at`, local time) | "hourly" (at minute `at_minute`)
    at: str = "02:00"                 # daily: local HH:MM (fleet utc_offset_minutes)
    at_minute: int = 5                # hourly
    reading_types: tuple[str, ...] = DEFAULT_READING_TYPES
    group: str | None = None          # None: the whole fleet
    batch_meters: int = 1000          # meters per message
    window_s: float = 3600.0          # spread the messages of one push evenly over this many sim seconds
    missing_fraction: float = 0.0     # seeded share of meters left out of a push ...
    backfill_after_s: float = 7200.0  # ... and delivered in a backfill message this long after the push
    gap_fraction: float = 0.0         # seeded share of intervals the head-end did not collect
    estimate_gaps: bool = False       # False: no value, 2.5.259; True: the model value, 2.8.0
    duplicate_fraction: float = 0.0   # seeded share of messages sent twice

    def __post_init__(self) -> None:
        if self.every not in ("daily", "hourly"):
            raise ValueError(f"push {self.name!r}: every must be 'daily' or 'hourly', got {self.every!r}")
        daily_offset(self.at, self.name)
        if not 0 <= self.at_minute < 60:
            raise ValueError(f"push {self.name!r}: at_minute must lie in 0..59, got {self.at_minute}")
        if not self.reading_types:
            raise ValueError(f"push {self.name!r}: name at least one reading type")
        for code in self.reading_types:
            if reading_type(code) is None:
                raise ValueError(f"push {self.name!r}: unknown ReadingType {code!r}")
        if self.batch_meters < 1:
            raise ValueError(f"push {self.name!r}: batch_meters must be >= 1, got {self.batch_meters}")
        if self.window_s < 0 or self.backfill_after_s < 0:
            raise ValueError(f"push {self.name!r}: window_s and backfill_after_s must be >= 0")
        for key in ("missing_fraction", "gap_fraction", "duplicate_fraction"):
            value = getattr(self, key)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"push {self.name!r}: {key} must lie in [0, 1], got {value}")


def daily_offset(at: str, name: str = "") -> int:
    """Seconds after local midnight of "HH:MM"."""
    hh, sep, mm = at.partition(":")
    if not (sep and hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60 and len(mm) == 2):
        raise ValueError(f"push {name!r}: at must be local time HH:MM, got {at!r}")
    return int(hh) * HOUR_S + int(mm) * 60


def next_push_time(spec: PushSpec, after: int, utc_offset_s: int) -> int:
    """The first scheduled push instant >= `after` (Unix seconds)."""
    period, target = (DAY_S, daily_offset(spec.at)) if spec.every == "daily" else (HOUR_S, spec.at_minute * 60)
    t = after - (after + utc_offset_s) % period + target
    return t if t >= after else t + period


def push_span(spec: PushSpec, t: int, utc_offset_s: int) -> tuple[int, int]:
    """The local day (or hour) that ended last at or before `t`: what a push at `t` sends."""
    period = DAY_S if spec.every == "daily" else HOUR_S
    end = t - (t + utc_offset_s) % period
    return end - period, end


@dataclass
class _Push:
    """One push: its plan (meters x channels) and what is decided about it."""

    spec: PushSpec
    t: int
    plan: ReadPlan
    correlation_id: str
    dup_key: int


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    push: _Push = field(compare=False)
    positions: np.ndarray = field(compare=False)
    properties: tuple[tuple[str, str | None], ...] = field(compare=False)
    correlation_id: str = field(compare=False)
    dup_counter: int = field(compare=False)


@dataclass
class _SpecState:
    spec: PushSpec
    meters: np.ndarray                      # the spec's meters, index order
    agenda: list[_Due] = field(default_factory=list)
    scheduled: bool = False
    next_push: int | None = None            # Unix seconds
    process: simpy.Process | None = None
    wake: simpy.Event | None = None


class PushScheduler:
    def __init__(self, headend: HeadEnd, specs: Sequence[PushSpec], destinations: Sequence[str],
                 ack_required: bool = False) -> None:
        self.he = headend
        self.destinations = tuple(destinations)
        self.ack_required = ack_required
        self._offset_s = headend.fleet.config.utc_offset_minutes * 60
        self._seq = itertools.count()
        self._pushes_begun = 0
        self._gap_keys: dict[str, int] = {}
        self._states: dict[str, _SpecState] = {}
        for spec in specs:
            if spec.name in self._states:
                raise ValueError(f"two pushes are named {spec.name!r}")
            self._states[spec.name] = _SpecState(spec, self._meters_of(spec))
        self.messages_sent = 0   # messages handed to the outbound (per destination, duplicates included)

    # -- public --------------------------------------------------------------------------
    def start(self) -> None:
        """Schedule every push from the current sim time on (one simpy process per spec)."""
        now = self.he.clock.now_unix()
        for state in self._states.values():
            if state.scheduled:
                continue
            state.scheduled = True
            state.next_push = next_push_time(state.spec, now, self._offset_s)
            self._ensure_running(state)

    def push_now(self, spec_name: str) -> None:
        """Run one push of `spec_name` at the current sim time (its first message leaves now)."""
        state = self._states.get(spec_name)
        if state is None:
            raise SimulatorError(f"no push named {spec_name!r}; known: {', '.join(self._states) or 'none'}")
        self._begin(state, self.he.clock.now_unix())
        self._ensure_running(state)

    # -- the process -----------------------------------------------------------------------
    def _ensure_running(self, state: _SpecState) -> None:
        if state.process is None:
            state.process = self.he.env.process(self._loop(state))
        elif state.wake is not None and not state.wake.triggered:
            state.wake.succeed()

    def _loop(self, state: _SpecState) -> Generator[simpy.Event, object, None]:
        env = self.he.env
        clock = self.he.clock
        while True:
            due = [d.at for d in state.agenda[:1]]
            if state.scheduled and state.next_push is not None:
                due.append(clock.to_sim(state.next_push))
            state.wake = env.event()
            if due:
                yield env.timeout(max(0.0, min(due) - env.now)) | state.wake
            else:
                yield state.wake
            state.wake = None
            if state.scheduled and state.next_push is not None and clock.to_sim(state.next_push) <= env.now:
                t = state.next_push
                state.next_push = next_push_time(state.spec, t + 1, self._offset_s)
                self._begin(state, t)
            while state.agenda and state.agenda[0].at <= env.now:
                self._send(heapq.heappop(state.agenda))

    # -- building a push -------------------------------------------------------------------
    def _meters_of(self, spec: PushSpec) -> np.ndarray:
        fleet = self.he.fleet
        if spec.group is None:
            idx = np.arange(fleet.size, dtype=np.int64)
        else:
            group = fleet.group_by_name(spec.group) or fleet.group_by_mrid(spec.group)
            if group is None:
                raise ValueError(f"push {spec.name!r}: unknown group {spec.group!r}")
            idx = fleet.group_members(group)
        records = np.zeros(len(idx), dtype=bool)
        for code in spec.reading_types:
            records |= fleet.has_reading_type(idx, code)
        return idx[records]

    def _plan(self, spec: PushSpec, meters: np.ndarray, t: int) -> ReadPlan:
        start, end = push_span(spec, t, self._offset_s)
        readings, fleet = self.he.readings, self.he.fleet
        plan = ReadPlan(idx=meters, values_interval=(format_datetime(start), format_datetime(end)))
        for code in dict.fromkeys(spec.reading_types):
            rt = reading_type(code)
            assert rt is not None  # checked by PushSpec
            has = fleet.has_reading_type(meters, code)
            if rt.kind == "interval":
                first = readings.align_down(code, start)
                count = (readings.align_down(code, end) - first) // rt.period_s
                if count <= 0:
                    continue  # e.g. a daily type in an hourly push that does not end the day
            else:
                first, count = end, 1
            plan.channels.append(Channel(rt, has, first, count))
            plan.total_readings += int(has.sum()) * count
        return plan

    def _begin(self, state: _SpecState, t: int) -> None:
        """Decide everything about a push at `t` and put its messages on the agenda."""
        spec, seed = state.spec, self.he.fleet.seed
        self._pushes_begun += 1  # two pushes in one sim second still get distinct CorrelationIDs
        correlation = self.he.uid("push", spec.name, t, self._pushes_begun)
        push = _Push(spec, t, self._plan(spec, state.meters, t), correlation,
                     derive_key(seed, "push-duplicate", spec.name, t))
        n_meters = len(state.meters)
        if spec.missing_fraction > 0 and n_meters:
            missing = unit(hash_u64(derive_key(seed, "push-missing", spec.name, t), state.meters)) \
                < spec.missing_fraction
        else:
            missing = np.zeros(n_meters, dtype=bool)
        t_sim = self.he.clock.to_sim(t)
        n = max(1, math.ceil(n_meters / spec.batch_meters))
        for k in range(n):
            positions = np.arange(k * spec.batch_meters, min((k + 1) * spec.batch_meters, n_meters), dtype=np.int64)
            self._enqueue(state, _Due(t_sim + k * spec.window_s / n, next(self._seq), push,
                                      positions[~missing[positions]], (("MessageIndex", f"{k + 1}/{n}"),),
                                      push.correlation_id, k + 1))
        late = np.flatnonzero(missing)
        if not len(late):
            return
        m = math.ceil(len(late) / spec.batch_meters)
        backfill_id = self.he.uid("push-backfill", spec.name, t)
        for j in range(m):
            props = (("MessageIndex", f"{j + 1}/{m}"), ("Backfill", "true"), ("BackfillOf", push.correlation_id))
            self._enqueue(state, _Due(t_sim + spec.backfill_after_s + j * spec.window_s / m, next(self._seq), push,
                                      late[j * spec.batch_meters:(j + 1) * spec.batch_meters], props,
                                      backfill_id, n + j + 1))

    def _enqueue(self, state: _SpecState, due: _Due) -> None:
        heapq.heappush(state.agenda, due)

    # -- sending -------------------------------------------------------------------------
    def gap_draws(self, code: str, meters: np.ndarray, first: int, count: int) -> np.ndarray:
        """Uniform draws in [0, 1) per (meter, interval) of `code`; an interval is a gap when its draw < gap_fraction.

        Keyed on the meter, the ReadingType and the interval start only, so a push, its backfill
        and any later push covering the same interval agree on which intervals are gaps.
        """
        key = self._gap_keys.get(code)
        if key is None:
            key = self._gap_keys[code] = derive_key(self.he.fleet.seed, "push-gap", code)
        rt = reading_type(code)
        assert rt is not None and rt.period_s > 0
        starts = as_u64(first + np.arange(count, dtype=np.int64) * rt.period_s)
        return unit(hash_cells(hash_u64(key, meters), starts))

    def _gaps(self, spec: PushSpec) -> FlagIntervals | None:
        """The interval marks of `spec` for build_payload, or None when it has no gaps."""
        if spec.gap_fraction <= 0:
            return None
        codes = (QUALITY_ESTIMATED,) if spec.estimate_gaps else (QUALITY_KNOWN_MISSING,)

        def flag(ch: Channel, meters: np.ndarray) -> IntervalFlags | None:
            mask = self.gap_draws(ch.spec.code, meters, ch.first, ch.count) < spec.gap_fraction
            return IntervalFlags(mask, codes, drop_value=not spec.estimate_gaps) if mask.any() else None

        return flag

    def _send(self, due: _Due) -> None:
        push = due.push
        payload, _ = build_payload(self.he.fleet, self.he.readings, push.plan, due.positions, self._gaps(push.spec))
        if payload is None:
            payload = build_meter_readings([])  # every meter of this batch is late: the index stays whole
        head = self.he.header(None, "created", "MeterReadings", due.properties, due.correlation_id,
                              self.ack_required or None)
        body = build_event(CREATED_WRAPPER, head, payload)
        twice = push.spec.duplicate_fraction > 0 and \
            unit_int(hash_int(push.dup_key, due.dup_counter)) < push.spec.duplicate_fraction
        parts: list[OutboundPart] = []
        for destination in self.destinations:
            part = OutboundPart(destination, SOAP_ACTION_CREATED, body, due.correlation_id, self.ack_required)
            parts.extend((part, part) if twice else (part,))
        if parts:
            self.he.outbound.put_parts(parts)
            self.messages_sent += len(parts)


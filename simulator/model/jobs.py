"""Jobs: a request's comm attempts played out in sim time, within the head-end's capacity.

A job plans all its meters when it gets a slot (`CommModel.plan`), then one simpy process wakes
only when a batch of answers is due, so the event count grows with batches, not meters. Slots
are counted here rather than with a simpy Resource: taking and freeing a slot is synchronous,
so `in_flight` and `queued` are exact at every instant (an admission decision never sees a job
that is "about to start"), and a queued job is a deque entry, not an idle process.

Callbacks run inside the simpy step that delivers them (the job's process), or inside `cancel()`
for the cancellation batch, and may submit or cancel jobs, including their own.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import simpy

from .comms import OUTCOME_TIMEOUT, AttemptPlan, CommModel


class Overloaded(Exception):
    """The head-end refuses a request instead of growing its queue without bound."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code, reason)  # all fields: simpy re-raises as type(e)(*e.args)
        self.code = code  # "3.2": too many pending requests
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.code} {self.reason}"


@dataclass
class JobBatch:
    plan: AttemptPlan  # meters whose outcome became known, in completion order
    final: bool  # True for the job's last batch (all meters reported)


def _timeout_at(env: simpy.Environment, t: float) -> simpy.Timeout:
    """A timeout firing with env.now == t exactly, so batch times equal their meters' done_at.

    `now + (t - now)` can miss `t` by an ulp; nudge the delay until the sum lands on it.
    """
    now = env.now
    delay = t - now
    for _ in range(4):
        if now + delay < t:
            delay = math.nextafter(delay, math.inf)
        elif now + delay > t:
            delay = math.nextafter(delay, 0.0)
        else:
            break
    return env.timeout(max(delay, 0.0))


class Job:
    def __init__(self, scheduler: JobScheduler, job_id: int, idx: npt.NDArray[np.int64], key: int,
                 on_batch: Callable[[JobBatch], None], batch_size: int | None, per_second: bool = False) -> None:
        self.id = job_id
        self.key = key
        self.idx = idx
        self.size = len(idx)
        self.batch_size = batch_size
        self.per_second = per_second
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.cancelled = False
        self.reported = 0  # meters reported so far
        self.done: simpy.Event = scheduler.env.event()
        self._scheduler = scheduler
        self._on_batch = on_batch
        self._sorted: AttemptPlan | None = None  # the plan in completion order, once started

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def cancel(self) -> None:
        """Stop now and report every meter not yet reported in one final batch.

        Meters whose outcome was already known (done_at <= now, but waiting for their batch)
        keep it; the others are reported as timed out with done_at = now. No-op once the job
        has finished. Frees the slot (or the queue place) at once.
        """
        if self.finished:
            return
        sched = self._scheduler
        now = float(sched.env.now)
        self.cancelled = True
        if self._sorted is not None:  # tries in progress: keep the plan's count of tries
            rest = self._sorted.select(slice(self.reported, None))
            known = rest.done_at <= now
            batch = AttemptPlan(
                rest.idx,
                np.where(known, rest.done_at, now),
                np.where(known, rest.outcome, OUTCOME_TIMEOUT).astype(np.uint8),
                rest.attempts.copy(),
                np.where(known, rest.rtt_s, np.nan),
            )
        else:  # queued, or started but not yet planned: nothing was tried
            n = self.size
            batch = AttemptPlan(self.idx, np.full(n, now), np.full(n, OUTCOME_TIMEOUT, dtype=np.uint8),
                                np.zeros(n, dtype=np.uint8), np.full(n, np.nan))
        sched._release(self)
        self._finish(batch)

    def _finish(self, batch: AttemptPlan) -> None:
        self.finished_at = float(self._scheduler.env.now)
        self.reported = self.size
        self._on_batch(JobBatch(batch, True))
        self.done.succeed(self)

    def _run(self) -> Generator[simpy.Event, Any, None]:
        env = self._scheduler.env
        if self.finished:  # cancelled before this first step
            return
        plan = self._scheduler.comms.plan(self.idx, env.now, self.key)
        order = np.argsort(plan.done_at, kind="stable")
        done = plan.done_at[order]
        self._sorted = sorted_plan = plan.select(order)
        n = self.size
        if self.per_second and n:
            # A batch per sim second in which meters completed: callers act "now" at the second
            # each meter was reached, so time never runs backwards for any meter.
            second = np.floor(done)
            ends = [*(np.flatnonzero(np.diff(second)) + 1).tolist(), n]
        else:
            step = n if self.batch_size is None else self.batch_size
            ends = [*range(step, n, step), n] if n else [0]
        for end in ends:
            due = float(done[end - 1]) if end else float(env.now)
            if due > env.now:
                yield _timeout_at(env, due)
                if self.finished:  # cancelled while waiting
                    return
            batch = sorted_plan.select(slice(self.reported, end))
            if end == n:
                self._scheduler._release(self)
                self._finish(batch)
                return
            self.reported = end
            self._on_batch(JobBatch(batch, False))
            if self.finished:  # the callback cancelled this job
                return


class JobScheduler:
    def __init__(self, env: simpy.Environment, comms: CommModel, max_in_flight: int = 8,
                 max_queued: int = 100) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        if max_queued < 0:
            raise ValueError(f"max_queued must be >= 0, got {max_queued}")
        self.env = env
        self.comms = comms
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self.in_flight = 0
        self._waiting: deque[Job] = deque()
        self._running: dict[int, Job] = {}
        self._next_id = 1

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def submit(self, idx: npt.ArrayLike, key: int, on_batch: Callable[[JobBatch], None],
               batch_size: int | None = None, per_second: bool = False) -> Job:
        """Start the job now if a slot is free, else queue it (FIFO); Overloaded 3.2 if the queue is full.

        Batches: one final batch (batch_size None) or one per `batch_size` completions with the
        remainder final, each delivered at the sim time its last meter completed.
        """
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        ind = self.comms._indices(idx).copy()
        if self.in_flight >= self.max_in_flight and len(self._waiting) >= self.max_queued:
            raise Overloaded("3.2", f"too many pending requests: {self.in_flight} in progress, "
                                    f"{len(self._waiting)} queued (limit {self.max_queued})")
        job = Job(self, self._next_id, ind, int(key), on_batch, batch_size, per_second)
        self._next_id += 1
        if self.in_flight < self.max_in_flight:
            self._start(job)
        else:
            self._waiting.append(job)
        return job

    def _start(self, job: Job) -> None:
        self.in_flight += 1
        self._running[job.id] = job
        job.started_at = float(self.env.now)
        self.env.process(job._run())

    def cancel_all(self) -> int:
        """Cancel every queued and running job (shutdown): each reports its meters now. Returns how many."""
        jobs = [*self._waiting, *self._running.values()]  # queued first, so no freed slot starts one
        for job in jobs:
            job.cancel()
        return len(jobs)

    def _release(self, job: Job) -> None:
        """Give back the job's slot (or queue place) and hand free slots to waiting jobs in order."""
        if job.started_at is None:
            self._waiting.remove(job)
            return
        self.in_flight -= 1
        self._running.pop(job.id, None)
        while self._waiting and self.in_flight < self.max_in_flight:
            self._start(self._waiting.popleft())

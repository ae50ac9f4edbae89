"""Things that happen at a sim time: the scenario's timeline and the run-time control API.

Both use the same actions: an outage on a group for a while, a group unreachable or slow, a
disconnect or connect, an event storm, a push run now.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import simpy

from ..cim.enddevicecontrols import ControlItem
from ..cim.getmeterreadings import ObjRef
from ..errors import CimError
from ..model.comms import CohortSpec
from .selection import select_meters

if TYPE_CHECKING:
    from .dispatch import HeadEnd

ACTIONS = ("outage", "unreachable", "slow", "disconnect", "connect", "storm", "push")
CONTROL_CODES = {"disconnect": "3.31.0.23", "connect": "3.31.0.18"}
TIMELINE_KEYS = 1 << 48  # job keys of timeline controls: far from the request counter's


@dataclass(frozen=True)
class Action:
    action: str
    group: str | None = None
    meters: tuple[str, ...] = ()   # mRIDs or serial names
    comm_class: str | None = None  # every meter of this comm class
    duration_s: float = 1200.0
    factor: float = 5.0
    event_type: str = "3.12.43.257"
    within_s: float = 60.0
    push: str | None = None


class Timeline:
    def __init__(self, headend: HeadEnd, outage: Callable[[np.ndarray, float, str], None],
                 storm: Callable[[np.ndarray, str, float], None], push_now: Callable[[str], None],
                 destination: str | None) -> None:
        self.he = headend
        self._outage = outage
        self._storm = storm
        self._push_now = push_now
        self.destination = destination
        self.done: list[tuple[float, str]] = []   # (sim time, what happened), for summaries and tests
        self._n = 0
        self._keys = itertools.count()

    def schedule(self, at_s: float, action: Action) -> None:
        def later(env: simpy.Environment):
            if at_s > env.now:
                yield env.timeout(at_s - env.now)
            self.run(action)

        self.he.env.process(later(self.he.env))

    def meters(self, action: Action) -> np.ndarray:
        groups = (ObjRef(None, (action.group,)),) if action.group else ()
        sel = select_meters(self.he.fleet, self.he.fleet.size, [ObjRef(m, (m,)) for m in action.meters], (), groups)
        if sel.errors:
            raise CimError("2.4", f"{action.action}: unknown meters or group: "
                           + ", ".join(e.id.value for e in sel.errors if e.id is not None))
        if action.comm_class is None:
            return sel.indices
        comms = self.he.scheduler.comms
        if action.comm_class not in comms.class_names:
            raise CimError("2.4", f"{action.action}: no comm class {action.comm_class!r}; "
                           f"known: {', '.join(comms.class_names)}")
        members = np.flatnonzero(comms.comm_class == comms.class_names.index(action.comm_class)).astype(np.int64)
        return np.union1d(sel.indices, members) if len(sel.indices) else members

    def run(self, action: Action) -> str:
        """Do it now; returns a one-line description."""
        he = self.he
        self._n += 1
        if action.action == "push":
            assert action.push
            self._push_now(action.push)
            what = f"push {action.push}"
        else:
            idx = self.meters(action)
            target = action.group or (f"comm class {action.comm_class}" if action.comm_class else f"{len(idx)} meters")
            now = he.env.now
            if action.action == "outage":
                self._outage(idx, action.duration_s, f"timeline outage {self._n}")
                what = f"outage on {target} for {action.duration_s:g} s"
            elif action.action in ("unreachable", "slow"):
                he.scheduler.comms.add_cohort(CohortSpec(
                    mode=action.action, meters=tuple(int(i) for i in idx), factor=action.factor,
                    start_s=now, end_s=now + action.duration_s, name=f"timeline-{self._n}"))
                what = f"{target} {action.action} for {action.duration_s:g} s"
            elif action.action in CONTROL_CODES:
                item = ControlItem(
                    index=0, mrid=None, control_type=CONTROL_CODES[action.action], issuer_id=None,
                    issuer_tracking_id=f"timeline-{self._n}", reason="timeline",
                    end_devices=tuple(ObjRef(m, (m,)) for m in action.meters),
                    end_device_groups=(ObjRef(None, (action.group,)),) if action.group else (),
                    usage_points=(), usage_point_groups=(), start_time=None, end_time=None, duration_s=None)
                # Keys of their own, so MDMS requests in between do not change what the timeline does.
                he.controls.create((item,), he.uid("timeline", self._n), self.destination,
                                   lambda: TIMELINE_KEYS + next(self._keys))
                what = f"{action.action} {target}"
            elif action.action == "storm":
                self._storm(idx, action.event_type, action.within_s)
                what = f"storm of {action.event_type} on {target} within {action.within_s:g} s"
            else:
                raise CimError("2.9", f"unknown action {action.action!r}; one of {', '.join(ACTIONS)}")
        self.done.append((he.env.now, what))
        return what

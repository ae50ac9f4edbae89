"""The run-time control API: `POST /control` with a timeline action as JSON.

The body has the same keys as a scenario's `timeline:` entry (without `at_s`): e.g.
`{"action": "outage", "group": "FEEDER-07", "duration_s": 1200}`. The action runs at the
current sim time; the answer is `{"ok": true, "done": "..."}` or `{"ok": false, "error": "..."}`.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from .cim.enddevicecontrols import normalise_control_type
from .errors import SimulatorError
from .headend.timeline import Action, Timeline
from .ports import HttpAnswer
from .scenario.schema import TimelineEntry

_JSON = "application/json"


def action_of(entry: TimelineEntry) -> Action:
    # Event codes are stored in the electric-meter form (3.x) so type filters find them.
    event_type = normalise_control_type(entry.event_type) or entry.event_type
    return Action(action=entry.action, group=entry.group, meters=tuple(entry.meters), comm_class=entry.comm_class,
                  duration_s=entry.duration_s,
                  factor=entry.factor, event_type=event_type, within_s=entry.within_s, push=entry.push)


class ControlApi:
    def __init__(self, timeline: Timeline, catch_up: object = None) -> None:
        self.timeline = timeline
        self.catch_up = catch_up

    async def control(self, body: bytes) -> HttpAnswer:
        try:
            entry = TimelineEntry.model_validate_json(body or b"{}")
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ())) or "body"
            return _answer(400, {"ok": False, "error": f"{where}: {err.get('msg')}"})
        try:
            if callable(self.catch_up):
                self.catch_up()
            done = self.timeline.run(action_of(entry))
        except (SimulatorError, ValueError) as exc:
            return _answer(400, {"ok": False, "error": str(exc)})
        return _answer(200, {"ok": True, "done": done, "sim_time_s": self.timeline.he.env.now})


def _answer(status: int, payload: dict[str, object]) -> HttpAnswer:
    return HttpAnswer(status, _JSON, json.dumps(payload).encode())

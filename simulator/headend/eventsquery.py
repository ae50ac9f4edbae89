"""get EndDeviceEvents: the events meters have had, from the head-end's event log.

A head-end database lookup, not a meter read: answered at once, no comm job. Filters: meters
(Meter, by mRID or serial name), EndDeviceGroups, UsagePoints, event types (any leading type
digit matches), and a time range from `TimeSchedule/scheduleInterval`, else Request/StartTime and
EndTime. No meter filter means the whole fleet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cim import codes
from ..cim.enddevicecontrols import normalise_control_type
from ..cim.enddeviceevents import build_end_device_events
from ..cim.getenddeviceevents import EventsQuery
from ..cim.messages import ErrorItem, IdRef, Reply
from ..errors import CimError
from .selection import select_meters


@dataclass
class EventsAnswer:
    reply: Reply
    payload: bytes | None


def get_end_device_events(headend, query: EventsQuery, request_start: int | None,
                          request_end: int | None, max_events: int) -> EventsAnswer:
    he = headend
    errors: list[ErrorItem] = []
    meters: np.ndarray | None = None
    if query.meters or query.end_device_groups or query.usage_points:
        sel = select_meters(he.fleet, max(he.settings.max_meters_per_request, he.fleet.size), query.meters,
                            query.usage_points, query.end_device_groups)
        errors.extend(sel.errors)
        meters = sel.indices
    for name in query.unsupported_filters:
        errors.append(ErrorItem(codes.NOT_ATTEMPTED, codes.LEVEL_WARNING,
                                f"the {name} filter is not supported and was ignored"))
    types: list[str] | None = None
    if query.event_types:
        types = []
        for t in query.event_types:
            norm = normalise_control_type(t)
            if norm is None:
                errors.append(ErrorItem(codes.INVALID_REQUEST_ID, codes.level_for(codes.INVALID_REQUEST_ID),
                                        "not an EndDeviceEventType code (type.domain.subDomain.eventOrAction)",
                                        id=IdRef(t, kind="name", object_type="EndDeviceEventType")))
            else:
                types.append(norm)
    start, end = query.periods[0] if query.periods else (request_start, request_end)
    if meters is not None and not len(meters):
        return EventsAnswer(Reply(codes.RESULT_FAILED, tuple(errors)), None)
    found = he.events.query(meters, types, start, end, limit=max_events + 1)
    if len(found) > max_events:
        raise CimError(codes.TOO_MANY_ITEMS, f"more than {max_events} events match; narrow the meters, types or "
                       "time range (setting headend.max_events_per_reply)")
    payload = build_end_device_events(he.controls.events_out(found)) if found else None
    result = codes.RESULT_PARTIAL if errors else codes.RESULT_OK
    return EventsAnswer(Reply(result, tuple(errors)), payload)

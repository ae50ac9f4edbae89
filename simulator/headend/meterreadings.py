"""get MeterReadings: select meters, pick reading types and a time range, synthesise, encode.

Time range precedence (first present wins): GetMeterReadings/Reading/timePeriod, then
GetMeterReadings/TimeSchedule/scheduleInterval, then Request/StartTime and Request/EndTime.
A range with no start is an on-demand read at its end. No range at all is an on-demand read
"now": registers and instantaneous values at the current sim time and, for interval reading
types, the latest complete interval. Ends later than "now" are cut to "now": the fleet has
no future.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..cim import codes
from ..cim.getmeterreadings import MeterReadingsQuery
from ..cim.messages import ErrorItem, Reply, reading_type_error
from ..cim.meterreadings import IntervalBlockData, MeterReadingData, ReadingData, build_meter_readings
from ..errors import CimError
from ..model.fleet import Fleet
from ..model.readings import Readings
from ..model.readingtypes import ReadingTypeSpec, class_reading_types, reading_type
from ..timeutil import format_datetime
from .selection import select_meters


@dataclass(frozen=True)
class ReadLimits:
    max_meters: int
    max_readings: int


@dataclass(frozen=True)
class TimeRange:
    start: int | None  # None: on-demand read at `end`
    end: int


def choose_range(
    query: MeterReadingsQuery, request_start: int | None, request_end: int | None, now: int
) -> TimeRange:
    candidates: Sequence[tuple[int | None, int | None]] = (
        query.reading_periods or query.schedule_periods or ((request_start, request_end),)
    )
    start, end = candidates[0]
    end = now if end is None else min(end, now)
    if start is not None and start >= end:
        raise _EmptyRange(start, end)
    return TimeRange(start=start, end=end)


class _EmptyRange(Exception):
    def __init__(self, start: int, end: int) -> None:
        super().__init__(f"{format_datetime(start)} .. {format_datetime(end)}")


@dataclass
class ReadingsAnswer:
    reply: Reply
    payload: bytes | None
    meters: int
    readings: int


def _no_data(reason: str) -> ErrorItem:
    return ErrorItem(code=codes.DATA_UNAVAILABLE, level=codes.level_for(codes.DATA_UNAVAILABLE), reason=reason)


def _requested_types(
    fleet: Fleet, idx: np.ndarray, requested: Sequence[str]
) -> tuple[list[ReadingTypeSpec], list[ErrorItem]]:
    """The reading types to produce, in a stable order, and errors for those we cannot."""
    classes_present = [fleet.classes[c] for c in np.unique(fleet.class_index[idx])] if len(idx) else []
    offered: list[str] = []
    for cls in classes_present:
        for code in class_reading_types(cls):
            if code not in offered:
                offered.append(code)
    if not requested:
        # Order by the registry so every reply lists types the same way.
        return [s for s in (reading_type(c) for c in offered) if s is not None], []
    specs: list[ReadingTypeSpec] = []
    errors: list[ErrorItem] = []
    for code in dict.fromkeys(c.strip() for c in requested):
        spec = reading_type(code)
        if spec is None:
            errors.append(reading_type_error(codes.INVALID_READING_TYPE, code, "unknown ReadingType"))
        elif code not in offered:
            errors.append(reading_type_error(codes.UNSUPPORTED_READING_TYPE, code,
                                              "no selected meter records this ReadingType"))
        else:
            specs.append(spec)
    return specs, errors


def get_meter_readings(
    fleet: Fleet,
    readings: Readings,
    query: MeterReadingsQuery,
    request_start: int | None,
    request_end: int | None,
    now: int,
    limits: ReadLimits,
) -> ReadingsAnswer:
    if not (query.end_devices or query.usage_points or query.end_device_groups or query.usage_point_groups):
        raise CimError(codes.MANDATORY_FIELD_MISSING,
                       "name at least one EndDevice, UsagePoint, EndDeviceGroup or UsagePointGroup")
    sel = select_meters(
        fleet, limits.max_meters, query.end_devices, query.usage_points,
        (*query.end_device_groups, *query.usage_point_groups),
    )
    errors = list(sel.errors)
    idx = sel.indices
    specs, rt_errors = _requested_types(fleet, idx, query.reading_types)
    errors.extend(rt_errors)
    try:
        span = choose_range(query, request_start, request_end, now)
    except _EmptyRange as exc:
        errors.append(_no_data(f"no data in the requested time range {exc} (now is {format_datetime(now)})"))
        return ReadingsAnswer(Reply("FAILED", tuple(errors)), None, 0, 0)

    # Which meters carry which reading type: one boolean row per type over the selection.
    class_has = {
        spec.code: np.array([spec.code in class_reading_types(c) for c in fleet.classes], dtype=bool)
        for spec in specs
    }
    cls = fleet.class_index[idx] if len(idx) else np.zeros(0, dtype=np.uint8)

    blocks: dict[str, tuple[np.ndarray, tuple[str, ...], np.ndarray, ReadingTypeSpec]] = {}
    points: dict[str, tuple[np.ndarray, int, np.ndarray, ReadingTypeSpec]] = {}
    total = 0
    plan: list[tuple[ReadingTypeSpec, np.ndarray, int, int]] = []
    for spec in specs:
        members = np.nonzero(class_has[spec.code][cls])[0]
        if not len(members):
            continue
        if spec.kind == "interval":
            if span.start is None:
                last_end = readings.align_down(spec.code, span.end)
                first = last_end - spec.period_s
                count = 1
            else:
                first = readings.align_down(spec.code, span.start)
                count = (readings.align_down(spec.code, span.end) - first) // spec.period_s
            if count <= 0:
                continue
            plan.append((spec, members, first, count))
            total += len(members) * count
        else:
            plan.append((spec, members, span.end, 1))
            total += len(members)
    if total > limits.max_readings:
        raise CimError(codes.TOO_MANY_ITEMS,
                       f"the reply would carry {total} readings; the limit is {limits.max_readings} "
                       f"(setting headend.max_readings_per_reply): ask for fewer meters or a shorter range")

    for spec, members, first, count in plan:
        sub = idx[members]
        if spec.kind == "interval":
            values = readings.intervals(sub, spec.code, first, count)
            # One tuple per block, shared by every meter, so the builder compiles its fragments once.
            stamps = tuple(format_datetime(first + (k + 1) * spec.period_s) for k in range(count))
            blocks[spec.code] = (members, stamps, values, spec)
        elif spec.kind == "register":
            points[spec.code] = (members, first, readings.register(sub, spec.code, first), spec)
        else:
            points[spec.code] = (members, first, readings.instant(sub, spec.code, first), spec)

    # Row of each selected meter inside each block, so assembling per meter is a lookup.
    rows: dict[str, np.ndarray] = {}
    for code, (members, *_rest) in (*blocks.items(), *points.items()):
        r = np.full(len(idx), -1, dtype=np.int64)
        r[members] = np.arange(len(members))
        rows[code] = r

    values_interval = None
    if span.start is not None:
        values_interval = (format_datetime(span.start), format_datetime(span.end))
    mrids = fleet.mrids(idx)
    docs: list[MeterReadingData] = []
    for pos, meter in enumerate(idx.tolist()):
        ib = []
        rd = []
        for code, (_m, stamps, values, spec) in blocks.items():
            row = rows[code][pos]
            if row >= 0:
                ib.append(IntervalBlockData(reading_type=code, timestamps=stamps, values=values[row],
                                            decimals=spec.decimals))
        for code, (_m, t, values, spec) in points.items():
            row = rows[code][pos]
            if row >= 0:
                rd.append(ReadingData(reading_type=code, timestamp=format_datetime(t),
                                      value=int(values[row]), decimals=spec.decimals))
        if not ib and not rd:
            continue  # this meter records none of the asked-for types (e.g. export on a non-prosumer)
        docs.append(MeterReadingData(
            meter_mrid=mrids[pos], meter_name=fleet.serial(meter),
            usage_point_mrid=fleet.usage_point_mrid(meter), usage_point_name=fleet.usage_point_name(meter),
            values_interval=values_interval, readings=rd, interval_blocks=ib,
        ))
    if not docs:
        if not errors:
            errors.append(_no_data("no readings in the requested time range"))
        return ReadingsAnswer(Reply("FAILED", tuple(errors)), None, 0, 0)
    payload = build_meter_readings(docs)
    result = "PARTIAL" if errors else "OK"
    return ReadingsAnswer(Reply(result, tuple(errors)), payload, len(docs), total)

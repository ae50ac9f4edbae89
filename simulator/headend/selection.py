"""Turn the objects a request names (meters, usage points, groups) into fleet indices.

Order is the request's order, duplicates dropped, so a reply lists meters the way the MDMS
asked for them. Every name that matches nothing becomes a per-item error, not a failure of
the whole request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..cim import codes
from ..cim.envelope import ErrorItem, IdRef
from ..cim.getmeterreadings import ObjRef
from ..errors import CimError
from ..model.fleet import Fleet


@dataclass
class Selection:
    indices: np.ndarray
    errors: list[ErrorItem] = field(default_factory=list)


def _unknown(code: str, reason: str, ref: ObjRef, object_type: str) -> ErrorItem:
    return ErrorItem(code=code, level=codes.level_for(code), reason=reason, id=_id_of(ref, object_type))


def _id_of(ref: ObjRef, object_type: str) -> IdRef:
    if ref.mrid:
        return IdRef(value=ref.mrid, kind="uuid", object_type=object_type)
    return IdRef(value=ref.names[0] if ref.names else "", kind="name", object_type=object_type)


def _lookup(ref: ObjRef, by_mrid: Callable[[str], int | None], by_name: Callable[[str], int | None]) -> int | None:
    if ref.mrid:
        found = by_mrid(ref.mrid.strip())
        if found is not None:
            return int(found)
    for name in ref.names:
        found = by_name(name.strip())
        if found is not None:
            return int(found)
    return None


class _Collector:
    """Accumulates index arrays in request order and counts them against the request limit."""

    def __init__(self, limit: int) -> None:
        self.parts: list[np.ndarray] = []
        self.count = 0
        self.limit = limit

    def add(self, idx: np.ndarray) -> None:
        self.parts.append(idx)
        self.count += len(idx)
        # Counting with repeats first is cheap; only when that passes the limit do the distinct
        # meters (a group plus some of its own members, say) decide.
        if self.count > self.limit and len(self.result()) > self.limit:
            raise CimError(
                codes.TOO_MANY_ITEMS,
                f"the request names more than {self.limit} meters "
                f"(setting headend.max_meters_per_request)",
            )

    def result(self) -> np.ndarray:
        if not self.parts:
            return np.zeros(0, dtype=np.int64)
        allidx = np.concatenate(self.parts).astype(np.int64, copy=False)
        _, first = np.unique(allidx, return_index=True)
        return allidx[np.sort(first)]


def select_meters(
    fleet: Fleet,
    limit: int,
    end_devices: Sequence[ObjRef] = (),
    usage_points: Sequence[ObjRef] = (),
    groups: Iterable[ObjRef] = (),
) -> Selection:
    """Resolve meters by EndDevice (mRID or serial name), UsagePoint (mRID or name) and group."""
    out = _Collector(limit)
    errors: list[ErrorItem] = []
    for ref in end_devices:
        i = _lookup(ref, fleet.index_of_mrid, fleet.index_of_serial)
        if i is None:
            errors.append(_unknown(codes.INVALID_METER, "unknown meter", ref, "EndDevice"))
        else:
            out.add(np.array([i], dtype=np.int64))
    for ref in usage_points:
        i = _lookup(ref, fleet.index_of_usage_point_mrid, fleet.index_of_usage_point_name)
        if i is None:
            errors.append(_unknown(codes.INVALID_USAGE_POINT, "unknown usage point", ref, "UsagePoint"))
        else:
            out.add(np.array([i], dtype=np.int64))
    for ref in groups:
        group = None
        if ref.mrid:
            group = fleet.group_by_mrid(ref.mrid.strip())
        for name in ref.names:
            if group is None:
                group = fleet.group_by_name(name.strip())
        if group is None:
            errors.append(_unknown(codes.INVALID_METER, "unknown group", ref, "EndDeviceGroup"))
        else:
            out.add(fleet.group_members(group))
    return Selection(indices=out.result(), errors=errors)

"""The fleet: meters as rows whose identity is computed from (seed, index), never stored.

The only per-meter array is `class_index` (1 byte per meter), filled at start by a
counter-based hash compared with the class mix. Everything else is arithmetic:
- mRIDs and usage-point mRIDs are invertible UUIDs, serials and usage-point names are
  invertible decimal permutations, so look-ups by any identifier are O(1) with no table;
- feeders (the electrical network) split the fleet into `feeders` near-equal runs of
  consecutive meters, and collectors (the communication network) are runs of
  `meters_per_collector` consecutive meters; both are ranges, computed, never stored. The two
  networks are independent, as in the field: a collector may hear meters of two feeders.
A meter's class and readings do not depend on the fleet size, so growing a fleet keeps the
existing meters' data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..ids import derive_uuid
from .customers import CustomerDirectory
from .hashing import derive_key, hash_u64
from .identifiers import DecimalPermutation, InvertibleUuid
from .readingtypes import METER_CLASSES, class_reading_types

MAX_FLEET = 10**8
_CLASS_CHUNK = 1 << 16  # meters hashed per step at start; keeps temporaries out of the RSS
_UNIT_BITS = 53


@dataclass(frozen=True)
class FleetConfig:
    seed: int
    size: int
    class_mix: tuple[tuple[str, float], ...] = (
        ("residential", 0.85), ("commercial", 0.10), ("prosumer", 0.05))
    feeders: int = 10
    meters_per_collector: int = 250
    serial_prefix: str = "HES"
    utc_offset_minutes: int = 0  # local day boundary for daily values and load shapes
    register_origin_year: int = 2020  # registers count from local Jan 1 of this year
    locale: str = "en_US"  # faker locale for customer names/addresses


@dataclass(frozen=True)
class Group:
    name: str  # e.g. "FEEDER-01", "COLLECTOR-0001", "CLASS-RESIDENTIAL"
    mrid: str  # seeded UUID
    kind: str  # "feeder" | "collector" | "class"


def _validate(c: FleetConfig) -> None:
    if not isinstance(c.size, int) or c.size <= 0 or c.size > MAX_FLEET:
        raise ValueError(f"fleet size must be between 1 and {MAX_FLEET:,}, got {c.size!r}")
    if c.feeders < 1:
        raise ValueError(f"feeders must be at least 1, got {c.feeders}")
    if c.meters_per_collector < 1:
        raise ValueError(f"meters_per_collector must be at least 1, got {c.meters_per_collector}")
    if c.utc_offset_minutes % 15 or abs(c.utc_offset_minutes) > 14 * 60:
        raise ValueError("utc_offset_minutes must be a multiple of 15 within +-14 h (local days must hold "
                         f"96 whole 15-minute intervals), got {c.utc_offset_minutes}")
    if not 1971 <= c.register_origin_year <= 9000:
        raise ValueError(f"register_origin_year must be between 1971 and 9000, got {c.register_origin_year}")
    names = [name for name, _ in c.class_mix]
    for name, share in c.class_mix:
        if name not in METER_CLASSES:
            raise ValueError(f"unknown meter class {name!r} in class_mix; known: {', '.join(METER_CLASSES)}")
        if not share >= 0:
            raise ValueError(f"class_mix share of {name!r} must be >= 0, got {share}")
    if len(set(names)) != len(names):
        raise ValueError("class_mix names a class twice")
    if sum(share for _, share in c.class_mix) <= 0:
        raise ValueError("class_mix shares must add up to more than 0")


def _class_thresholds(mix: tuple[tuple[str, float], ...]) -> npt.NDArray[np.uint64]:
    """Boundaries on 53-bit hashes between consecutive classes, in METER_CLASSES order.

    Canonical order makes the assignment independent of how the mix was written down.
    """
    share = dict(mix)
    p = [float(share.get(name, 0.0)) for name in METER_CLASSES]
    total = sum(p)
    bounds = []
    acc = 0.0
    for k in range(len(p) - 1):
        acc += p[k]
        rest = sum(p[k + 1:])
        full = 1 << _UNIT_BITS
        bounds.append(full if rest == 0 else min(int(acc / total * 2.0**_UNIT_BITS), full))
    return np.array(bounds, dtype=np.uint64)


class Fleet:
    classes: tuple[str, ...] = METER_CLASSES  # class_index values index this tuple

    def __init__(self, config: FleetConfig) -> None:
        _validate(config)
        self.config = config
        self.size = size = config.size
        self.seed = seed = config.seed
        self.n_collectors = -(-size // config.meters_per_collector)
        # A fleet smaller than the feeder count cannot fill every feeder; empty groups would
        # only confuse requests.
        self.n_feeders = min(config.feeders, size)
        self._feeder_width = max(2, len(str(self.n_feeders)))
        self._collector_width = max(4, len(str(self.n_collectors)))
        self.class_index, self.class_counts = self._assign_classes()
        # Only classes that have meters get a group: an empty group could not answer a request.
        self._present_classes = tuple(k for k, n in enumerate(self.class_counts) if n)
        self._meter_uuid = InvertibleUuid(seed, "end-device", size)
        self._usage_point_uuid = InvertibleUuid(seed, "usage-point", size)
        self._serial = DecimalPermutation(seed, "serial", 8, size)
        self._usage_point_number = DecimalPermutation(seed, "usage-point-name", 10, size)
        self._customers = CustomerDirectory(seed, config.locale)
        self._groups_by_mrid: dict[str, Group] | None = None

    def _assign_classes(self) -> tuple[npt.NDArray[np.uint8], tuple[int, ...]]:
        key = derive_key(self.seed, "meter-class")
        bounds = _class_thresholds(self.config.class_mix)
        out = np.empty(self.size, dtype=np.uint8)
        counts = np.zeros(len(METER_CLASSES), dtype=np.int64)
        shift = np.uint64(64 - _UNIT_BITS)
        for lo in range(0, self.size, _CLASS_CHUNK):
            hi = min(lo + _CLASS_CHUNK, self.size)
            h = hash_u64(key, np.arange(lo, hi, dtype=np.uint64)) >> shift
            chunk = np.searchsorted(bounds, h, side="right")
            out[lo:hi] = chunk
            counts += np.bincount(chunk, minlength=len(METER_CLASSES))
        return out, tuple(int(n) for n in counts.tolist())

    def _check(self, i: int) -> int:
        if not 0 <= i < self.size:
            raise IndexError(f"meter index {i} is outside the fleet of {self.size}")
        return int(i)

    # -- class and reading types ------------------------------------------------------------
    def meter_class(self, i: int) -> str:
        return METER_CLASSES[self.class_index[self._check(i)]]

    def reading_types(self, i: int) -> tuple[str, ...]:
        return class_reading_types(self.meter_class(i))

    def has_reading_type(self, idx: npt.ArrayLike, code: str) -> npt.NDArray[np.bool_]:
        """Which of these meters record `code`, so callers can filter before asking Readings."""
        table = np.array([code in class_reading_types(name) for name in METER_CLASSES], dtype=bool)
        return table[self.class_index[np.asarray(idx, dtype=np.int64)]]

    # -- identifiers ------------------------------------------------------------------------
    def mrid(self, i: int) -> str:
        return self._meter_uuid.encode(self._check(i))

    def mrids(self, idx: npt.ArrayLike) -> list[str]:
        return self._meter_uuid.encode_many(self._checked_many(idx))

    def index_of_mrid(self, mrid: str) -> int | None:
        return self._meter_uuid.decode(mrid)

    def serial(self, i: int) -> str:
        return f"{self.config.serial_prefix}{self._serial.encode(self._check(i)):08d}"

    def serials(self, idx: npt.ArrayLike) -> list[str]:
        prefix = self.config.serial_prefix
        return [f"{prefix}{v:08d}" for v in self._serial.encode_many(self._checked_many(idx)).tolist()]

    def index_of_serial(self, name: str) -> int | None:
        prefix = self.config.serial_prefix
        if not isinstance(name, str) or not name.startswith(prefix):
            return None
        return self._serial.decode_text(name[len(prefix):])

    def usage_point_mrid(self, i: int) -> str:
        return self._usage_point_uuid.encode(self._check(i))

    def usage_point_mrids(self, idx: npt.ArrayLike) -> list[str]:
        return self._usage_point_uuid.encode_many(self._checked_many(idx))

    def index_of_usage_point_mrid(self, s: str) -> int | None:
        return self._usage_point_uuid.decode(s)

    def usage_point_name(self, i: int) -> str:
        return f"UP-{self._usage_point_number.encode(self._check(i)):010d}"

    def usage_point_names(self, idx: npt.ArrayLike) -> list[str]:
        return [f"UP-{v:010d}" for v in self._usage_point_number.encode_many(self._checked_many(idx)).tolist()]

    def index_of_usage_point_name(self, s: str) -> int | None:
        if not isinstance(s, str) or not s.startswith("UP-"):
            return None
        return self._usage_point_number.decode_text(s[3:])

    def _checked_many(self, idx: npt.ArrayLike) -> npt.NDArray[np.int64]:
        ind = np.asarray(idx, dtype=np.int64).ravel()
        if len(ind) and (int(ind.min()) < 0 or int(ind.max()) >= self.size):
            raise IndexError(f"meter indices must lie in [0, {self.size})")
        return ind

    # -- grid topology ----------------------------------------------------------------------
    def collector_of(self, i: int) -> int:
        """0-based collector number; the group name counts from 1."""
        return self._check(i) // self.config.meters_per_collector

    def feeder_of(self, i: int) -> int:
        """0-based feeder number; the group name counts from 1."""
        return self._check(i) * self.n_feeders // self.size

    def feeders_of(self, idx: npt.ArrayLike) -> npt.NDArray[np.int64]:
        return self._checked_many(idx) * self.n_feeders // self.size

    def _feeder_range(self, f: int) -> tuple[int, int]:
        """Meters i with i * F // N == f: from ceil(f*N/F) to ceil((f+1)*N/F)."""
        n, k = self.size, self.n_feeders
        return -(-f * n // k), -(-(f + 1) * n // k)

    # -- groups -----------------------------------------------------------------------------
    def _feeder_group(self, f: int) -> Group:
        name = f"FEEDER-{f + 1:0{self._feeder_width}d}"
        return Group(name, derive_uuid(self.seed, "group", "feeder", f), "feeder")

    def _collector_group(self, c: int) -> Group:
        name = f"COLLECTOR-{c + 1:0{self._collector_width}d}"
        return Group(name, derive_uuid(self.seed, "group", "collector", c), "collector")

    def _class_group(self, k: int) -> Group:
        name = METER_CLASSES[k]
        return Group(f"CLASS-{name.upper()}", derive_uuid(self.seed, "group", "class", name), "class")

    def groups(self) -> list[Group]:
        """Feeders, then collectors, then classes that have meters; built on demand."""
        return [
            *(self._feeder_group(f) for f in range(self.n_feeders)),
            *(self._collector_group(c) for c in range(self.n_collectors)),
            *(self._class_group(k) for k in self._present_classes),
        ]

    def group_by_name(self, name: str) -> Group | None:
        """Parsed, not looked up: only the canonical spelling (e.g. FEEDER-01) matches."""
        if not isinstance(name, str):
            return None
        kind, _, number = name.partition("-")
        if kind == "CLASS":
            for k in self._present_classes:
                if METER_CLASSES[k].upper() == number:
                    return self._class_group(k)
            return None
        if not (number.isascii() and number.isdigit()):
            return None
        n = int(number) - 1
        if kind == "FEEDER" and 0 <= n < self.n_feeders:
            group = self._feeder_group(n)
        elif kind == "COLLECTOR" and 0 <= n < self.n_collectors:
            group = self._collector_group(n)
        else:
            return None
        return group if group.name == name else None

    def group_by_mrid(self, mrid: str) -> Group | None:
        """Group mRIDs are hashes, so this builds one dict (per collector ~150 B) on first use."""
        if self._groups_by_mrid is None:
            self._groups_by_mrid = {g.mrid: g for g in self.groups()}
        try:
            canonical = str(uuid.UUID(mrid.strip()))
        except (ValueError, TypeError, AttributeError):
            return None
        return self._groups_by_mrid.get(canonical)

    def group_members(self, group: Group) -> npt.NDArray[np.int64]:
        """Sorted meter indices; ValueError for a group that is not this fleet's."""
        if self.group_by_name(group.name) != group:
            raise ValueError(f"group {group.name!r} does not belong to this fleet")
        mpc = self.config.meters_per_collector
        number = int(group.name.rpartition("-")[2]) - 1 if group.kind != "class" else -1
        if group.kind == "collector":
            return np.arange(number * mpc, min((number + 1) * mpc, self.size), dtype=np.int64)
        if group.kind == "feeder":
            return np.arange(*self._feeder_range(number), dtype=np.int64)
        k = METER_CLASSES.index(group.name.partition("-")[2].lower())
        return np.flatnonzero(self.class_index == k).astype(np.int64)

    def groups_of(self, i: int) -> tuple[Group, ...]:
        return (
            self._feeder_group(self.feeder_of(i)),
            self._collector_group(self.collector_of(i)),
            self._class_group(int(self.class_index[i])),
        )

    # -- customers --------------------------------------------------------------------------
    def customer(self, i: int) -> dict[str, str]:
        """{"name", "address"} from faker seeded per meter; nothing is generated until asked."""
        return self._customers.customer(self._check(i))

    def describe(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "feeders": self.n_feeders,
            "collectors": self.n_collectors,
            "classes": dict(zip(METER_CLASSES, self.class_counts, strict=True)),
        }

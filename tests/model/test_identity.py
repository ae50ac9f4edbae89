"""Meter identifiers: invertible without tables, stable per seed, and foreign ones rejected."""

from __future__ import annotations

import itertools
import uuid

import numpy as np
import pytest

from simulator.model.fleet import MAX_FLEET, Fleet, FleetConfig
from simulator.model.hashing import hash_int, hash_u64, mix_int


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return Fleet(FleetConfig(seed=42, size=1_000_000))


@pytest.fixture(scope="module")
def sample() -> list[int]:
    rng = np.random.default_rng(7)
    return [0, 1, 999_999, *rng.integers(0, 1_000_000, 300).tolist()]


def test_numpy_and_python_hashes_are_bit_identical() -> None:
    counters = [0, 1, 2, 2**32 + 5, 2**63 + 11, 2**64 - 1]
    key = 0xDEADBEEFCAFEF00D
    vec = hash_u64(key, np.array(counters, dtype=np.uint64)).tolist()
    assert vec == [hash_int(key, c) for c in counters]
    # negative counters (days before 1970) wrap the same way on both paths
    assert hash_u64(key, np.array([-3], dtype=np.int64)).tolist() == [hash_int(key, -3)]
    assert mix_int(0) == 0 and mix_int(1) != 1


def test_mrid_round_trip_and_batch_matches_scalar(fleet: Fleet, sample: list[int]) -> None:
    texts = fleet.mrids(np.array(sample))
    for i, text in zip(sample, texts, strict=True):
        assert text == fleet.mrid(i)
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
        assert fleet.index_of_mrid(text) == i
        assert fleet.index_of_mrid(text.upper()) == i  # same UUID, other spelling
        assert fleet.index_of_mrid("{" + text + "}") == i


def test_mrids_are_unique_and_look_random(fleet: Fleet) -> None:
    texts = fleet.mrids(np.arange(100_000))
    assert len(set(texts)) == len(texts)
    # neighbours share no leading hex digits beyond chance
    same_prefix = sum(a[:4] == b[:4] for a, b in itertools.pairwise(texts))
    assert same_prefix < 20


def test_foreign_and_garbled_mrids_are_rejected(fleet: Fleet, sample: list[int]) -> None:
    other = Fleet(FleetConfig(seed=43, size=1_000_000))
    rng = np.random.default_rng(3)
    for i in sample[:100]:
        assert fleet.index_of_mrid(other.mrid(i)) is None
        good = fleet.mrid(i)
        pos = int(rng.choice([p for p in range(36) if good[p] != "-" and p not in (14, 19)]))
        flipped = "0" if good[pos] != "0" else "1"
        assert fleet.index_of_mrid(good[:pos] + flipped + good[pos + 1:]) is None
    for _ in range(200):
        assert fleet.index_of_mrid(str(uuid.UUID(bytes=rng.bytes(16), version=4))) is None
    for junk in ("", "not-a-uuid", "12345", fleet.serial(3), "urn:uuid:" + "0" * 31):
        assert fleet.index_of_mrid(junk) is None


def test_mrid_of_index_beyond_a_smaller_fleet_is_rejected(fleet: Fleet) -> None:
    small = Fleet(FleetConfig(seed=42, size=1000))
    assert small.mrid(999) == fleet.mrid(999)  # identity does not depend on fleet size
    assert small.index_of_mrid(fleet.mrid(1000)) is None
    assert small.index_of_serial(fleet.serial(5000)) is None


def test_serials_round_trip_and_are_not_sequential(fleet: Fleet, sample: list[int]) -> None:
    for i in sample:
        s = fleet.serial(i)
        assert len(s) == 11 and s.startswith("HES") and s[3:].isdigit()
        assert fleet.index_of_serial(s) == i
    batch = fleet.serials(np.array(sample))
    assert batch == [fleet.serial(i) for i in sample]
    numbers = [int(fleet.serial(i)[3:]) for i in range(50)]
    steps = {b - a for a, b in itertools.pairwise(numbers)}
    assert min(abs(s) for s in steps) > 1000
    assert len(set(fleet.serials(np.arange(200_000)))) == 200_000


def test_bad_serials_are_rejected(fleet: Fleet) -> None:
    good = fleet.serial(12)
    for bad in ("", "HES", good[:-1], good + "0", "XYZ" + good[3:], "hes" + good[3:],
                "HES" + "\u0661" * 8, "HES-1234567", " " + good):
        assert fleet.index_of_serial(bad) is None
    # a number outside the permutation's image for a small fleet
    small = Fleet(FleetConfig(seed=42, size=10))
    misses = sum(small.index_of_serial(f"HES{n:08d}") is None for n in range(1000))
    assert misses >= 985


def test_serial_prefix_is_configurable() -> None:
    f = Fleet(FleetConfig(seed=1, size=100, serial_prefix="MTR"))
    assert f.serial(7).startswith("MTR")
    assert f.index_of_serial(f.serial(7)) == 7
    assert f.index_of_serial("HES" + f.serial(7)[3:]) is None


def test_usage_points_round_trip_and_differ_from_meters(fleet: Fleet, sample: list[int]) -> None:
    for i in sample:
        up = fleet.usage_point_mrid(i)
        name = fleet.usage_point_name(i)
        assert up != fleet.mrid(i)
        assert fleet.index_of_usage_point_mrid(up) == i
        assert fleet.index_of_mrid(up) is None
        assert fleet.index_of_usage_point_mrid(fleet.mrid(i)) is None
        assert name.startswith("UP-") and len(name) == 13
        assert fleet.index_of_usage_point_name(name) == i
    assert fleet.index_of_usage_point_name("UP-12") is None
    assert fleet.index_of_usage_point_name(fleet.serial(1)) is None


def test_identity_is_a_function_of_the_seed_only() -> None:
    a = Fleet(FleetConfig(seed=5, size=500))
    b = Fleet(FleetConfig(seed=5, size=500))
    c = Fleet(FleetConfig(seed=6, size=500))
    assert [a.mrid(i) for i in range(10)] == [b.mrid(i) for i in range(10)]
    assert [a.serial(i) for i in range(10)] == [b.serial(i) for i in range(10)]
    assert all(a.mrid(i) != c.mrid(i) for i in range(10))
    assert sum(a.serial(i) == c.serial(i) for i in range(10)) == 0


@pytest.mark.parametrize("size", [0, -1, MAX_FLEET + 1])
def test_bad_sizes_are_refused(size: int) -> None:
    with pytest.raises(ValueError, match="fleet size"):
        Fleet(FleetConfig(seed=1, size=size))


@pytest.mark.parametrize("changes", [
    {"feeders": 0}, {"meters_per_collector": 0}, {"utc_offset_minutes": 7},
    {"class_mix": (("industrial", 1.0),)}, {"class_mix": (("residential", 0.0),)},
    {"class_mix": (("residential", -1.0), ("commercial", 2.0))},
])
def test_bad_configs_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Fleet(FleetConfig(seed=1, size=10, **changes))  # type: ignore[arg-type]


def test_index_checks(fleet: Fleet) -> None:
    with pytest.raises(IndexError):
        fleet.mrid(1_000_000)
    with pytest.raises(IndexError):
        fleet.mrids(np.array([-1]))

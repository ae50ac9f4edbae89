"""Fleet composition, groups and customers."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.model.fleet import Fleet, FleetConfig, Group
from simulator.model.readingtypes import (
    METER_CLASSES,
    READING_TYPES,
    class_reading_types,
    reading_type,
    reading_type_by_alias,
)

RECEIVED_15M = "0.0.2.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0"
DELIVERED_15M = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"


@pytest.fixture(scope="module")
def big() -> Fleet:
    return Fleet(FleetConfig(seed=11, size=1_000_000))


def test_reading_type_registry() -> None:
    assert next(iter(READING_TYPES)) == DELIVERED_15M
    spec = reading_type("11.0.0.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0")
    assert spec is not None and spec.kind == "interval" and spec.period_s == 86400 and spec.decimals == 3
    volt = reading_type_by_alias("voltage_a")
    assert volt is not None and volt.kind == "instant" and volt.decimals == 1
    assert reading_type("0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.73.0") is None
    assert all(len(code.split(".")) == 18 for code in READING_TYPES)
    assert RECEIVED_15M in class_reading_types("prosumer")
    assert RECEIVED_15M not in class_reading_types("residential")
    # every class also records the maximum-demand register (issue 4)
    assert len(class_reading_types("prosumer")) == 8 and len(class_reading_types("commercial")) == 5
    order = list(READING_TYPES)
    for cls in METER_CLASSES:
        codes = class_reading_types(cls)
        assert list(codes) == sorted(codes, key=order.index)
    with pytest.raises(ValueError):
        class_reading_types("industrial")


def test_class_mix_matches_config(big: Fleet) -> None:
    share = np.bincount(big.class_index, minlength=3) / big.size
    assert share == pytest.approx([0.85, 0.10, 0.05], abs=0.002)
    assert big.class_index.dtype == np.uint8 and big.class_index.nbytes == big.size


def test_class_mix_is_independent_of_order_and_size(big: Fleet) -> None:
    reordered = Fleet(FleetConfig(seed=11, size=5000, class_mix=(
        ("prosumer", 0.05), ("residential", 0.85), ("commercial", 0.10))))
    assert np.array_equal(reordered.class_index, big.class_index[:5000])


def test_zero_share_class_is_absent_everywhere() -> None:
    f = Fleet(FleetConfig(seed=3, size=20_000, class_mix=(("residential", 0.5), ("prosumer", 0.5))))
    assert not np.any(f.class_index == METER_CLASSES.index("commercial"))
    assert f.group_by_name("CLASS-COMMERCIAL") is None
    assert [g.name for g in f.groups() if g.kind == "class"] == ["CLASS-RESIDENTIAL", "CLASS-PROSUMER"]
    only = Fleet(FleetConfig(seed=3, size=1000, class_mix=(("commercial", 1.0),)))
    assert set(only.class_index.tolist()) == {1}


def test_meter_class_and_reading_types(big: Fleet) -> None:
    i = int(np.flatnonzero(big.class_index == 2)[0])
    assert big.meter_class(i) == "prosumer"
    assert big.reading_types(i) == class_reading_types("prosumer")
    mask = big.has_reading_type(np.arange(1000), RECEIVED_15M)
    assert np.array_equal(mask, big.class_index[:1000] == 2)


def _partition_check(f: Fleet, kind: str) -> list[Group]:
    groups = [g for g in f.groups() if g.kind == kind]
    seen = np.zeros(f.size, dtype=np.int64)
    for g in groups:
        members = f.group_members(g)
        assert members.dtype == np.int64 and np.all(np.diff(members) > 0)
        assert len(members) > 0
        seen[members] += 1
    assert np.all(seen == 1), f"{kind} groups do not partition the fleet"
    return groups


@pytest.mark.parametrize("size,feeders,per_collector",
                         [(10_007, 10, 250), (7, 10, 3), (1, 4, 250), (2500, 3, 1)])
def test_groups_partition_the_fleet(size: int, feeders: int, per_collector: int) -> None:
    f = Fleet(FleetConfig(seed=2, size=size, feeders=feeders, meters_per_collector=per_collector))
    feeder_groups = _partition_check(f, "feeder")
    collector_groups = _partition_check(f, "collector")
    _partition_check(f, "class")
    assert len(feeder_groups) == min(feeders, size)
    assert len(collector_groups) == -(-size // per_collector)
    sizes = [len(f.group_members(g)) for g in feeder_groups]
    assert max(sizes) - min(sizes) <= 1  # feeders are balanced
    for i in np.linspace(0, size - 1, 20).astype(int).tolist():
        feeder, collector, cls = f.groups_of(i)
        assert i in set(f.group_members(feeder).tolist())
        assert i in set(f.group_members(collector).tolist())
        assert cls.name == "CLASS-" + f.meter_class(i).upper()
        assert f.feeders_of(np.array([i]))[0] == f.feeder_of(i)


def test_group_lookups_round_trip(big: Fleet) -> None:
    groups = big.groups()
    names = [g.name for g in groups]
    assert names[:2] == ["FEEDER-01", "FEEDER-02"] and names[10] == "COLLECTOR-0001"
    assert names[-3:] == ["CLASS-RESIDENTIAL", "CLASS-COMMERCIAL", "CLASS-PROSUMER"]
    assert len(set(names)) == len(names) and len({g.mrid for g in groups}) == len(groups)
    for g in groups[:15] + groups[-5:]:
        assert big.group_by_name(g.name) == g
        assert big.group_by_mrid(g.mrid) == g
        assert big.group_by_mrid(g.mrid.upper()) == g
    for bad in ("FEEDER-1", "FEEDER-11", "FEEDER-00", "COLLECTOR-4001", "COLLECTOR-0000",
                "CLASS-INDUSTRIAL", "class-residential", "FEEDER-０１", ""):
        assert big.group_by_name(bad) is None
    assert big.group_by_mrid(big.mrid(0)) is None
    assert big.group_by_mrid("garbage") is None
    other = Fleet(FleetConfig(seed=12, size=1000))
    assert big.group_by_mrid(other.groups()[0].mrid) is None
    with pytest.raises(ValueError):
        big.group_members(Group("FEEDER-01", other.groups()[0].mrid, "feeder"))


def test_groups_are_deterministic() -> None:
    a = Fleet(FleetConfig(seed=9, size=3000)).groups()
    b = Fleet(FleetConfig(seed=9, size=3000)).groups()
    c = Fleet(FleetConfig(seed=10, size=3000)).groups()
    assert a == b
    assert [g.name for g in a] == [g.name for g in c] and a[0].mrid != c[0].mrid


def test_customers_are_deterministic_and_lazy() -> None:
    f = Fleet(FleetConfig(seed=21, size=1_000_000))
    assert f._customers._faker is None  # nothing generated at start
    forward = [f.customer(i) for i in (5, 17, 999_999)]
    again = Fleet(FleetConfig(seed=21, size=1_000_000))
    backward = [again.customer(i) for i in (999_999, 17, 5)][::-1]
    assert forward == backward
    assert f.customer(5) == forward[0]  # asking twice does not advance anything
    assert all(c["name"] and c["address"] and "\n" not in c["address"] for c in forward)
    other = Fleet(FleetConfig(seed=22, size=1_000_000))
    assert [other.customer(i) for i in (5, 17, 999_999)] != forward
    assert len({f.customer(i)["name"] for i in range(30)}) > 25

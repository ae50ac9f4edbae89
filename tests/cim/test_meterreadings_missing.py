"""Known-missing intervals: an IntervalReading with its timeStamp and qualities but no value."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from simulator.cim.meterreadings import (
    IntervalBlockData,
    MeterReadingData,
    build_meter_readings,
    build_meter_readings_slow,
)
from simulator.cim.ns import METER_READINGS
from tests.conformance.refschemas import assert_valid_both

RT = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
STAMPS = tuple(f"2026-03-10T{(m + 15) // 60:02d}:{(m + 15) % 60:02d}:00Z" for m in range(0, 240, 15))
MR = f"{{{METER_READINGS}}}"


def _c14n(xml: bytes) -> bytes:
    return etree.tostring(etree.fromstring(xml), method="c14n")


def _readings(xml: bytes) -> list[tuple[str | None, str | None, list[str]]]:
    return [
        (ir.findtext(f"{MR}timeStamp"), ir.findtext(f"{MR}value"),
         [q.get("ref") for q in ir.iterfind(f"{MR}ReadingQualities/{MR}ReadingQualityType")])
        for ir in etree.fromstring(xml).iter(f"{MR}IntervalReadings")
    ]


def test_missing_positions_have_no_value_but_keep_their_stamp_and_quality() -> None:
    block = IntervalBlockData(RT, STAMPS[:4], np.array([1, 2, 3, 4]), 3,
                              qualities={1: ("2.5.259",), 2: ("2.8.0",)}, missing=frozenset({1}))
    xml = build_meter_readings([MeterReadingData("u", interval_blocks=[block])])
    assert _readings(xml) == [
        (STAMPS[0], "0.001", []),
        (STAMPS[1], None, ["2.5.259"]),
        (STAMPS[2], "0.003", ["2.8.0"]),
        (STAMPS[3], "0.004", []),
    ]
    assert _c14n(xml) == _c14n(build_meter_readings_slow([MeterReadingData("u", interval_blocks=[block])]))
    assert_valid_both(xml, "MeterReadings", "MeterReadings")


def test_a_block_with_gaps_does_not_spoil_the_cached_grid_of_the_next_meter() -> None:
    gappy = IntervalBlockData(RT, STAMPS[:3], np.array([5, 6, 7]), 0, {0: ("2.5.259",)}, frozenset({0}))
    plain = IntervalBlockData(RT, STAMPS[:3], np.array([8, 9, 10]), 0)
    meters = [MeterReadingData("a", interval_blocks=[plain]), MeterReadingData("b", interval_blocks=[gappy]),
              MeterReadingData("c", interval_blocks=[plain])]
    xml = build_meter_readings(meters)
    values = [v for _, v, _ in _readings(xml)]
    assert values == ["8", "9", "10", None, "6", "7", "8", "9", "10"]
    assert _c14n(xml) == _c14n(build_meter_readings_slow(meters))


@st.composite
def gappy_documents(draw: st.DrawFn) -> list[MeterReadingData]:
    n = draw(st.integers(1, len(STAMPS)))
    meters = []
    for k in range(draw(st.integers(1, 4))):
        blocks = []
        for _ in range(draw(st.integers(0, 2))):
            values = np.array(draw(st.lists(st.integers(-(10**9), 10**9), min_size=n, max_size=n)), dtype=np.int64)
            missing = frozenset(draw(st.sets(st.integers(0, n - 1), max_size=n)))
            qualities = {i: ("2.5.259",) for i in missing}
            qualities.update(draw(st.dictionaries(st.integers(0, n - 1), st.just(("2.8.0",)), max_size=3)))
            blocks.append(IntervalBlockData(RT, STAMPS[:n], values, draw(st.integers(0, 4)), qualities, missing))
        meters.append(MeterReadingData(f"m{k}", interval_blocks=blocks))
    return meters


@settings(max_examples=80, deadline=None)
@given(gappy_documents())
def test_fast_builder_equals_lxml_builder_with_missing_values(meters: list[MeterReadingData]) -> None:
    fast = build_meter_readings(meters)
    assert _c14n(fast) == _c14n(build_meter_readings_slow(meters))
    assert_valid_both(fast, "MeterReadings", "MeterReadings")

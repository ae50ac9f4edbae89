"""The MeterReadings fast path: exact values, XSD order, and the same XML as the lxml builder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from lxml import etree

from simulator.cim.envelope import OutHeader, Reply, build_response
from simulator.cim.meterreadings import (
    IntervalBlockData,
    MeterReadingData,
    ReadingData,
    ReadingTypeDescription,
    build_meter_readings,
    build_meter_readings_slow,
    format_scaled,
)
from simulator.cim.ns import GET_METER_READINGS_MSG, METER_READINGS
from tests.conformance.refschemas import assert_valid_both

RT = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
RT_REG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
STAMPS = tuple(f"2026-03-10T{(m + 15) // 60:02d}:{(m + 15) % 60:02d}:00Z" for m in range(0, 240, 15))
M = {"m": METER_READINGS}
INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


def _c14n(xml: bytes) -> bytes:
    return etree.tostring(etree.fromstring(xml), method="c14n")


@pytest.mark.parametrize(
    ("raw", "decimals", "text"),
    [
        (412, 3, "0.412"),
        (-5, 3, "-0.005"),
        (-5000, 3, "-5.000"),
        (0, 3, "0.000"),
        (123456789, 3, "123456.789"),
        (7, 0, "7"),
        (-7, 0, "-7"),
        (7, -2, "700"),
        (1, 20, "0.00000000000000000001"),
        (int(INT64_MIN), 2, "-92233720368547758.08"),
        (int(INT64_MAX), 18, "9.223372036854775807"),
    ],
)
def test_format_scaled_is_exact(raw: int, decimals: int, text: str) -> None:
    assert format_scaled(raw, decimals) == text


@pytest.mark.parametrize("decimals", [0, 1, 3, 6, 18, 20, -1])
@pytest.mark.parametrize(
    "values",
    [
        [0, 1, 999, 1000, 32767],  # lookup-table path
        [0, 32768, 10**9, 5, 6],  # too big for the table: divmod path
        [-5, 5, -1000, 0, 1],  # negatives
        [int(INT64_MIN), int(INT64_MAX), 0, -1, 1],  # the int64 edges
        [-7],  # a one-reading block
        [-40_000, 3],  # negative beyond the table
    ],
    ids=["small", "large", "negative", "edges", "single", "large-negative"],
)
def test_every_value_path_prints_exactly(values: list[int], decimals: int) -> None:
    block = IntervalBlockData(RT, STAMPS[: len(values)], np.array(values, dtype=np.int64), decimals)
    doc = etree.fromstring(build_meter_readings([MeterReadingData("u", interval_blocks=[block])]))
    printed = doc.xpath("//m:IntervalReadings/m:value/text()", namespaces=M)
    assert printed == [format_scaled(v, decimals) for v in values]


def _meter(
    i: int, values: np.ndarray, qualities: dict[int, tuple[str, ...]] | None = None
) -> MeterReadingData:
    return MeterReadingData(
        meter_mrid=f"9f5a3c1e-0000-4000-8000-{i:012d}",
        meter_name=f"SIM{i:08d}",
        usage_point_mrid=f"UP-{i}",
        usage_point_name=f"usage point {i}",
        values_interval=(STAMPS[0], STAMPS[-1]),
        readings=[ReadingData(RT_REG, STAMPS[-1], 48211 + i, 3, ("1.0.0",) if i % 2 else ())],
        interval_blocks=[IntervalBlockData(RT, STAMPS, values, 3, qualities or {})],
    )


def test_document_shape_follows_the_xsd_order_and_validates() -> None:
    meters = [
        _meter(0, np.arange(16)),
        _meter(1, np.arange(16) * 100, {2: ("2.5.259",), 3: ("2.4.4", "1.4.5")}),
    ]
    descriptions = [
        ReadingTypeDescription(RT, ("15-min delta A+ (kWh)",), (("unit", "72"), ("accumulation", "4"))),
    ]
    xml = build_meter_readings(meters, descriptions)
    assert_valid_both(xml, "MeterReadings", "MeterReadings")
    root = etree.fromstring(xml)
    assert root.tag == f"{{{METER_READINGS}}}MeterReadings"
    first = root.find("m:MeterReading", M)
    assert first is not None
    assert [etree.QName(c).localname for c in first] == [
        "IntervalBlocks", "Meter", "Readings", "UsagePoint", "valuesInterval",
    ]  # fmt: skip
    assert [etree.QName(c).localname for c in first.find("m:valuesInterval", M)] == ["end", "start"]  # type: ignore[union-attr]
    assert first.findtext("m:Meter/m:Names/m:name", namespaces=M) == "SIM00000000"
    second = root.findall("m:MeterReading", M)[1]
    flagged = second.findall("m:IntervalBlocks/m:IntervalReadings", M)[3]
    assert [q.get("ref") for q in flagged.iterfind("m:ReadingQualities/m:ReadingQualityType", M)] == [
        "2.4.4",
        "1.4.5",
    ]
    assert second.findtext("m:IntervalBlocks/m:IntervalReadings/m:value", namespaces=M) == "0.000"
    rt = root.find("m:ReadingType", M)
    assert rt is not None and [etree.QName(c).localname for c in rt] == [
        "mRID",
        "accumulation",
        "unit",
        "Names",
    ]
    assert _c14n(xml) == _c14n(build_meter_readings_slow(meters, descriptions))


def test_payload_inside_typed_response_validates_strictly() -> None:
    """The typed wrapper refs MeterReadings (the generic Payload would skip-validate it)."""
    payload = build_meter_readings([_meter(i, np.arange(16) * i) for i in range(3)])
    body = build_response(
        f"{{{GET_METER_READINGS_MSG}}}MeterReadingsResponseMessage",
        OutHeader("reply", "MeterReadings"),
        Reply("OK"),
        payload,
    )
    assert_valid_both(body, "GetMeterReadingsMessage", "GetMeterReadingsMessage")


def test_escaping_and_percent_signs_in_text() -> None:
    odd = ('50% <&> "q"', "100%d%s")
    meter = MeterReadingData(
        meter_mrid=odd[0],
        meter_name=odd[1],
        interval_blocks=[IntervalBlockData('r"%', odd, np.array([1, 2]), 1, {1: ("q%s<",)})],
    )
    xml = build_meter_readings([meter])
    root = etree.fromstring(xml)
    assert root.xpath("//m:timeStamp/text()", namespaces=M) == list(odd)
    assert root.findtext(".//m:Meter/m:mRID", namespaces=M) == odd[0]
    assert root.find(".//m:ReadingQualityType", M).get("ref") == "q%s<"  # type: ignore[union-attr]
    assert _c14n(xml) == _c14n(build_meter_readings_slow([meter]))


def test_mismatched_lengths_and_bad_descriptions_are_refused() -> None:
    with pytest.raises(ValueError):
        build_meter_readings(
            [MeterReadingData("u", interval_blocks=[IntervalBlockData(RT, STAMPS[:3], np.arange(4))])]
        )
    with pytest.raises(ValueError):
        build_meter_readings([], [ReadingTypeDescription(RT, ())])
    with pytest.raises(ValueError):
        build_meter_readings([], [ReadingTypeDescription(RT, ("n",), (("colour", "blue"),))])


def test_empty_blocks_and_empty_documents_are_valid() -> None:
    empty = build_meter_readings([])
    assert empty == f'<MeterReadings xmlns="{METER_READINGS}"></MeterReadings>'.encode()
    one = build_meter_readings(
        [MeterReadingData("u", interval_blocks=[IntervalBlockData(RT, (), np.array([], dtype=np.int64))])]
    )
    assert_valid_both(one, "MeterReadings", "MeterReadings")


# Text lxml accepts (the fast path turns the rest into U+FFFD; see the well-formedness test).
text = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=("Cs", "Cc"),
        include_characters="\t\n\r",
        exclude_characters="\ufffe\uffff",
    ),
    max_size=8,
)
any_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)


@st.composite
def documents(draw: st.DrawFn, text: st.SearchStrategy[str] = text) -> list[MeterReadingData]:
    n = draw(st.integers(1, 6))
    stamps = tuple(draw(st.lists(text, min_size=n, max_size=n)))
    meters = []
    for _ in range(draw(st.integers(0, 3))):
        blocks = []
        for _ in range(draw(st.integers(0, 2))):
            values = draw(
                st.one_of(
                    hnp.arrays(np.int64, n, elements=st.integers(0, 40_000)),
                    hnp.arrays(np.int64, n, elements=st.integers(int(INT64_MIN), int(INT64_MAX))),
                )
            )
            qualities = draw(
                st.dictionaries(st.integers(0, n - 1), st.lists(text, max_size=2).map(tuple), max_size=2)
            )
            blocks.append(IntervalBlockData(draw(text), stamps, values, draw(st.integers(-2, 20)), qualities))
        readings = [
            ReadingData(draw(text), draw(text), draw(st.integers(-(10**20), 10**20)), draw(st.integers(0, 6)))
            for _ in range(draw(st.integers(0, 2)))
        ]
        optional = st.one_of(st.none(), text)
        interval = draw(st.one_of(st.none(), st.tuples(text, text)))
        meters.append(
            MeterReadingData(
                draw(text), draw(optional), draw(optional), draw(optional), interval, readings, blocks
            )
        )
    return meters


@settings(max_examples=120, deadline=None)
@given(documents())
def test_fast_builder_equals_lxml_builder(meters: list[MeterReadingData]) -> None:
    assert _c14n(build_meter_readings(meters)) == _c14n(build_meter_readings_slow(meters))


@settings(max_examples=60, deadline=None)
@given(documents(any_text))
def test_fast_builder_is_well_formed_whatever_the_text(meters: list[MeterReadingData]) -> None:
    etree.fromstring(build_meter_readings(meters))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, len(STAMPS)), st.integers(0, 4), st.randoms(use_true_random=False))
def test_fast_builder_output_is_schema_valid(n: int, decimals: int, rnd) -> None:  # type: ignore[no-untyped-def]
    values = np.array([rnd.randint(-(10**6), 10**6) for _ in range(n)], dtype=np.int64)
    meters = [
        MeterReadingData("u", "n", interval_blocks=[IntervalBlockData(RT, STAMPS[:n], values, decimals)])
    ]
    assert_valid_both(build_meter_readings(meters), "MeterReadings", "MeterReadings")

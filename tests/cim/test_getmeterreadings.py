"""The GetMeterReadings profile becomes a plain query; every accepted form and error code."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from simulator.cim.envelope import OutHeader, read_request
from simulator.cim.getmeterreadings import (
    MeterReadingsQuery,
    ObjRef,
    build_get_meter_readings,
    build_get_meter_readings_request,
    parse_get_meter_readings,
    query_from_message,
)
from simulator.cim.ns import GET_METER_READINGS
from simulator.cim.xml import parse_xml
from simulator.errors import CimError
from tests.conformance import samples
from tests.conformance.refschemas import assert_valid_both

G = f'xmlns="{GET_METER_READINGS}"'
RT = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"


def _parse(inner: str, ns: str = GET_METER_READINGS) -> MeterReadingsQuery:
    return parse_get_meter_readings(
        etree.fromstring(f'<GetMeterReadings xmlns="{ns}">{inner}</GetMeterReadings>')
    )


def test_sample_request_gives_the_query() -> None:
    q = query_from_message(read_request(parse_xml(samples.get_request())))
    assert q.end_devices == (ObjRef(samples.METER_UUID, ("SIM00000042",)),)
    assert q.reading_types == (samples.RT_15MIN_KWH,)
    assert q.reading_periods == ((1773100800, 1773144000),)
    assert q.reading_reasons == ("inquiry",)
    assert q.schedule_periods == () and q.usage_points == () and q.end_device_groups == ()


def test_every_reference_list_is_read() -> None:
    q = _parse(
        "<EndDevice><Names><name>SN1</name></Names><Names><name>SN1b</name></Names></EndDevice>"
        "<EndDevice><mRID> u-2 </mRID></EndDevice>"
        "<EndDeviceGroup><Names><name>feeder-7</name></Names></EndDeviceGroup>"
        "<TimeSchedule><scheduleInterval><start>2026-03-10T00:00:00+01:00</start></scheduleInterval></TimeSchedule>"
        "<UsagePoint><mRID>up-1</mRID></UsagePoint>"
        "<UsagePointGroup><mRID>upg</mRID></UsagePointGroup>"
    )
    assert q.end_devices == (ObjRef(None, ("SN1", "SN1b")), ObjRef("u-2"))
    assert q.end_device_groups == (ObjRef(None, ("feeder-7",)),)
    assert q.usage_points == (ObjRef("up-1"),) and q.usage_point_groups == (ObjRef("upg"),)
    assert q.schedule_periods == ((1773097200, None),)


@pytest.mark.parametrize(
    "form",
    [
        f"<mRID>{RT}</mRID>",
        f"<Names><name>{RT}</name></Names>",
        "",
        f"<mRID>{RT}</mRID><Names><name>x</name></Names>",
    ],
    ids=["mRID", "Names", "ref", "mRID-wins"],
)
def test_reading_type_forms(form: str) -> None:
    attr = f' ref="{RT}"' if not form else ""
    assert _parse(f"<ReadingType{attr}>{form}</ReadingType>").reading_types == (RT,)


def test_reading_type_without_a_code_is_2_6() -> None:
    with pytest.raises(CimError) as info:
        _parse("<ReadingType><mRID> </mRID></ReadingType>")
    assert info.value.code == "2.6"


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01T00:00:00Z", "2026-03-10T25:00:00Z"])
def test_bad_datetime_is_1_8(bad: str) -> None:
    with pytest.raises(CimError) as info:
        _parse(f"<Reading><timePeriod><start>{bad}</start></timePeriod></Reading>")
    assert info.value.code == "1.8" and bad in info.value.reason


def test_other_years_are_accepted_and_wrong_elements_refused() -> None:
    assert _parse(
        "<UsagePoint><mRID>u</mRID></UsagePoint>", "http://iec.ch/TC57/2017/GetMeterReadings#"
    ).usage_points
    for xml in (f"<GetEndDeviceEvents {G}/>", "<GetMeterReadings/>"):
        with pytest.raises(CimError) as info:
            parse_get_meter_readings(etree.fromstring(xml))
        assert info.value.code == "1.8"


def test_request_without_the_profile_is_1_6() -> None:
    body = samples.cancel_by_id()
    with pytest.raises(CimError) as info:
        query_from_message(read_request(parse_xml(body)))
    assert info.value.code == "1.6"


times = st.one_of(st.none(), st.integers(min_value=0, max_value=4_102_444_800))
names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
).filter(lambda s: s.strip() == s)
refs = st.builds(ObjRef, st.one_of(st.none(), names), st.lists(names, max_size=2).map(tuple))
queries = st.builds(
    MeterReadingsQuery,
    end_devices=st.lists(refs, max_size=3).map(tuple),
    end_device_groups=st.lists(refs, max_size=2).map(tuple),
    usage_points=st.lists(refs, max_size=2).map(tuple),
    usage_point_groups=st.lists(refs, max_size=2).map(tuple),
    reading_types=st.lists(names, max_size=3).map(tuple),
    reading_periods=st.lists(st.tuples(times, times), max_size=2).map(tuple),
    schedule_periods=st.lists(st.tuples(times, times), max_size=2).map(tuple),
    reading_reasons=st.lists(st.sampled_from(["billing", "inquiry", "moveIn"]), max_size=2).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(queries)
def test_build_then_parse_is_the_identity(query: MeterReadingsQuery) -> None:
    assert parse_get_meter_readings(etree.fromstring(build_get_meter_readings(query))) == query


def test_built_requests_validate_typed_and_generic() -> None:
    q = MeterReadingsQuery(
        end_devices=(ObjRef("u-1", ("SN1",)),),
        end_device_groups=(ObjRef(None, ("g",)),),
        usage_points=(ObjRef("up"),),
        usage_point_groups=(ObjRef("upg"),),
        reading_types=(RT,),
        reading_periods=((1773100800, 1773144000),),
        schedule_periods=((None, 1773144000),),
        reading_reasons=("billing",),
    )
    assert_valid_both(build_get_meter_readings(q), "GetMeterReadings", "GetMeterReadings")
    header = OutHeader("get", "MeterReadings", message_id="m-1")
    typed = build_get_meter_readings_request(q, header)
    assert_valid_both(typed, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    generic = build_get_meter_readings_request(q, header, typed=False, start_time="2026-03-10T00:00:00Z")
    assert_valid_both(generic, "Message", "Message")
    for body in (typed, generic):
        assert query_from_message(read_request(parse_xml(body))) == q

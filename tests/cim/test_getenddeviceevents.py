"""GetEndDeviceEvents becomes a plain EventsQuery; every filter form and error code."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from simulator.cim.envelope import OutHeader, read_request
from simulator.cim.getenddeviceevents import (
    EventsQuery,
    build_get_end_device_events,
    build_get_end_device_events_request,
    events_query_from_message,
    parse_get_end_device_events,
)
from simulator.cim.getmeterreadings import ObjRef
from simulator.cim.ns import GET_END_DEVICE_EVENTS, GET_END_DEVICE_EVENTS_MSG, MSG
from simulator.cim.xml import parse_xml
from simulator.errors import CimError
from tests.cim.enddevice_schemas import assert_valid

T0 = 1773100800  # 2026-03-10T00:00:00Z


def _parse(inner: str, ns: str = GET_END_DEVICE_EVENTS) -> EventsQuery:
    return parse_get_end_device_events(
        etree.fromstring(f'<GetEndDeviceEvents xmlns="{ns}">{inner}</GetEndDeviceEvents>')
    )


# As a client writes it: Request's own children in the wrapper namespace (the Get wrapper
# declares its Request type), Option's children in the message namespace.
GET = f"""<g:GetEndDeviceEvents xmlns:g="{GET_END_DEVICE_EVENTS_MSG}" xmlns:msg="{MSG}">
  <g:Header><msg:Verb>get</msg:Verb><msg:Noun>EndDeviceEvents</msg:Noun><msg:MessageID>m-7</msg:MessageID></g:Header>
  <g:Request>
    <g:StartTime>2026-03-10T00:00:00Z</g:StartTime><g:EndTime>2026-03-11T00:00:00Z</g:EndTime>
    <g:Option><msg:name>limit</msg:name><msg:value>100</msg:value></g:Option>
    <g:ID>q-1</g:ID>
    <e:GetEndDeviceEvents xmlns:e="{GET_END_DEVICE_EVENTS}">
      <e:EndDeviceEventType><e:mRID>3.31.0.68</e:mRID></e:EndDeviceEventType>
      <e:EndDeviceEventType><e:Names><e:name>3.31.0.42</e:name></e:Names></e:EndDeviceEventType>
      <e:EndDeviceGroup><e:Names><e:name>feeder-7</e:name></e:Names></e:EndDeviceGroup>
      <e:Meter><e:mRID> m-1 </e:mRID><e:Names><e:name>SIM1</e:name></e:Names></e:Meter>
      <e:TimeSchedule><e:scheduleInterval><e:end>2026-03-10T12:00:00Z</e:end>
        <e:start>2026-03-10T06:00:00+00:00</e:start></e:scheduleInterval></e:TimeSchedule>
      <e:TimeSchedule><e:scheduleInterval/></e:TimeSchedule>
      <e:UsagePoint><e:mRID>up-1</e:mRID></e:UsagePoint>
    </e:GetEndDeviceEvents>
  </g:Request>
</g:GetEndDeviceEvents>""".encode()


def test_a_typed_get_gives_the_envelope_times_and_the_query() -> None:
    message = read_request(parse_xml(GET))
    assert (message.header.verb, message.header.noun, message.kind) == ("get", "EndDeviceEvents", "typed")
    assert message.request is not None
    assert (message.request.start_time, message.request.end_time) == (T0, T0 + 86400)
    assert message.request.options == (("limit", "100"),)
    assert [i.value for i in message.request.ids] == ["q-1"]
    assert message.response_root == f"{{{GET_END_DEVICE_EVENTS_MSG}}}EndDeviceEventsResponseMessage"
    assert message.fault_root == f"{{{GET_END_DEVICE_EVENTS_MSG}}}EndDeviceEventsFaultMessage"
    assert events_query_from_message(message) == EventsQuery(
        meters=(ObjRef("m-1", ("SIM1",)),),
        end_device_groups=(ObjRef(None, ("feeder-7",)),),
        usage_points=(ObjRef("up-1"),),
        event_types=("3.31.0.68", "3.31.0.42"),
        periods=((T0 + 6 * 3600, T0 + 12 * 3600), (None, None)),
    )
    assert_valid(GET, "GetEndDeviceEventsMessage")


def test_request_children_in_the_message_namespace_are_tolerated() -> None:
    body = GET.replace(b"<g:StartTime>", b"<msg:StartTime>").replace(b"</g:StartTime>", b"</msg:StartTime>")
    message = read_request(parse_xml(body))
    assert message.request is not None and message.request.start_time == T0
    assert events_query_from_message(message).event_types == ("3.31.0.68", "3.31.0.42")


def test_event_type_forms_and_a_nameless_one() -> None:
    q = _parse(
        '<EndDeviceEventType ref=" 3.26.0.85 "/>'
        "<EndDeviceEventType><mRID>a</mRID><Names><name>b</name></Names></EndDeviceEventType>"
    )
    assert q.event_types == ("3.26.0.85", "a")
    with pytest.raises(CimError) as info:
        _parse("<EndDeviceEventType><mRID> </mRID></EndDeviceEventType>")
    assert info.value.code == "1.8"


def test_filters_the_simulator_cannot_resolve_are_reported() -> None:
    q = _parse(
        "<Customer><mRID>c</mRID></Customer>"
        "<EndDeviceEvent><createdDateTime>2026-03-10T00:00:00Z</createdDateTime><EndDeviceEventType/></EndDeviceEvent>"
        "<ServiceCategory><kind>electricity</kind></ServiceCategory>"
    )
    assert q.unsupported_filters == ("Customer", "EndDeviceEvent", "ServiceCategory")
    # A vendor's serialNumber beside mRID is skipped, not an error.
    q = _parse("<Meter><mRID>m</mRID><serialNumber>SN</serialNumber></Meter>")
    assert q.meters == (ObjRef("m"),) and q.unsupported_filters == ()


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01T00:00:00Z", "2026-03-10T25:00:00Z", "1773100800"])
def test_bad_datetime_is_1_8(bad: str) -> None:
    with pytest.raises(CimError) as info:
        _parse(f"<TimeSchedule><scheduleInterval><end>{bad}</end></scheduleInterval></TimeSchedule>")
    assert info.value.code == "1.8" and bad in info.value.reason and "scheduleInterval/end" in info.value.reason


def test_other_years_pass_and_wrong_roots_are_1_8() -> None:
    assert _parse("<Meter><mRID>m</mRID></Meter>", "http://iec.ch/TC57/2017/GetEndDeviceEvents#").meters
    for xml in ("<GetEndDeviceEvents/>", f'<GetMeterReadings xmlns="{GET_END_DEVICE_EVENTS}"/>'):
        with pytest.raises(CimError) as info:
            parse_get_end_device_events(etree.fromstring(xml))
        assert info.value.code == "1.8"


def test_a_get_without_the_profile_is_1_6() -> None:
    body = GET.split(b"<e:GetEndDeviceEvents")[0] + b"</g:Request></g:GetEndDeviceEvents>"
    with pytest.raises(CimError) as info:
        events_query_from_message(read_request(parse_xml(body)))
    assert info.value.code == "1.6"


times = st.one_of(st.none(), st.integers(min_value=0, max_value=4_102_444_800))
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda s: s.strip() == s
)
refs = st.builds(ObjRef, st.one_of(st.none(), names), st.lists(names, max_size=2).map(tuple))
queries = st.builds(
    EventsQuery,
    meters=st.lists(refs, max_size=3).map(tuple),
    end_device_groups=st.lists(refs, max_size=2).map(tuple),
    usage_points=st.lists(refs, max_size=2).map(tuple),
    event_types=st.lists(names, max_size=3).map(tuple),
    periods=st.lists(st.tuples(times, times), max_size=2).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(queries)
def test_build_then_parse_is_the_identity(query: EventsQuery) -> None:
    assert parse_get_end_device_events(etree.fromstring(build_get_end_device_events(query))) == query


def test_built_requests_validate_typed_and_generic() -> None:
    q = EventsQuery(
        meters=(ObjRef("m-1", ("SIM1",)), ObjRef(None, ("SIM2",))),
        end_device_groups=(ObjRef("g"),),
        usage_points=(ObjRef("up"),),
        event_types=("3.31.0.68", "3.31.0.84"),
        periods=((T0, T0 + 3600), (None, T0)),
    )
    assert_valid(build_get_end_device_events(q), "GetEndDeviceEvents")
    header = OutHeader("get", "EndDeviceEvents", message_id="m-1")
    typed = build_get_end_device_events_request(q, header, start_time="2026-03-10T00:00:00Z")
    assert_valid(typed, "GetEndDeviceEventsMessage")
    generic = build_get_end_device_events_request(q, header, typed=False, end_time="2026-03-10T00:00:00Z")
    assert_valid(generic, "Message")
    for body, start, end in ((typed, T0, None), (generic, None, T0)):
        message = read_request(parse_xml(body))
        assert message.request is not None
        assert (message.request.start_time, message.request.end_time) == (start, end)
        assert events_query_from_message(message) == q

"""EndDeviceEvents: the storm builder writes valid documents that read back into the same events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from simulator.cim.enddeviceevents import EventOut, build_end_device_events, parse_end_device_events
from simulator.cim.envelope import OutHeader, Reply, build_event, build_response, read_request, typed_root
from simulator.cim.ns import END_DEVICE_EVENTS, END_DEVICE_EVENTS_MSG, GET_END_DEVICE_EVENTS_MSG
from simulator.cim.xml import parse_xml
from simulator.errors import CimError
from tests.cim.enddevice_schemas import assert_valid

METER = "9f5a3c1e-2b7d-4e8a-9c41-5d2e7b0a6f13"
E = f"{{{END_DEVICE_EVENTS}}}"

DISCONNECTED = EventOut(
    mrid="ev-1",
    created="2026-03-10T00:30:05Z",
    event_type="3.31.0.68",
    meter_mrid=METER,
    meter_name="SIM00000042",
    usage_point_mrid="up-42",
    issuer_id="MDMS",
    issuer_tracking_id="track-1",
    reason="non-payment",
    severity="info",
    user_id="operator-7",
    details=(("CorrelationID", "corr-1"), ("relay", "open")),
)
BARE = EventOut("ev-2", "2026-03-10T00:30:06Z", "3.31.0.84", "m-2", None, None)


def test_every_field_lands_in_profile_order() -> None:
    root = etree.fromstring(build_end_device_events([DISCONNECTED]))
    (event,) = root
    assert [etree.QName(c).localname for c in event] == [
        "mRID", "createdDateTime", "issuerID", "issuerTrackingID", "reason", "severity", "userID",
        "Assets", "EndDeviceEventDetails", "EndDeviceEventDetails", "EndDeviceEventType", "UsagePoint",
    ]  # fmt: skip
    assert event.findtext(f"{E}Assets/{E}mRID") == METER
    assert event.findtext(f"{E}Assets/{E}Names/{E}name") == "SIM00000042"
    assert event.find(f"{E}EndDeviceEventType").get("ref") == "3.31.0.68"
    assert event.findtext(f"{E}UsagePoint/{E}mRID") == "up-42"
    assert [(d.findtext(f"{E}name"), d.findtext(f"{E}value")) for d in event.iterfind(f"{E}EndDeviceEventDetails")] == [
        ("CorrelationID", "corr-1"),
        ("relay", "open"),
    ]


def test_optional_parts_are_left_out() -> None:
    (event,) = etree.fromstring(build_end_device_events([BARE]))
    assert [etree.QName(c).localname for c in event] == ["mRID", "createdDateTime", "Assets", "EndDeviceEventType"]


def test_documents_and_their_messages_validate() -> None:
    nasty = EventOut(
        'e<&>\t"', "2026-03-10T00:30:05.250+01:00", "3.31.0.42&x", "m<1>", "n\n2", 'u"p', "i&", "t<", "r>",
        "s", "u", (("n<", 'v\r"&'), ("empty", "")),
    )  # fmt: skip
    doc = build_end_device_events([DISCONNECTED, BARE, nasty])
    assert_valid(doc, "EndDeviceEvents")
    assert_valid(build_end_device_events([]), "EndDeviceEvents")
    header = OutHeader("created", "EndDeviceEvents", message_id="m-1", correlation_id="corr-1")
    created = build_event(typed_root("Created", "EndDeviceEvents"), header, doc)
    assert_valid(created, "EndDeviceEventsMessage")
    response = build_response(f"{{{END_DEVICE_EVENTS_MSG}}}EndDeviceEventsResponseMessage", header, Reply("OK"), doc)
    assert_valid(response, "EndDeviceEventsMessage")
    assert_valid(build_event(None, header, doc), "Message")
    # The answer to a GetEndDeviceEvents carries the same document in the Get wrapper's namespace.
    get_answer = build_response(
        f"{{{GET_END_DEVICE_EVENTS_MSG}}}EndDeviceEventsResponseMessage", header, Reply("OK"), doc
    )
    assert_valid(get_answer, "GetEndDeviceEventsMessage")
    message = read_request(parse_xml(created))
    assert message.header.verb == "created" and message.kind == "typed"
    assert parse_end_device_events(message.payload_elements[0]) == (DISCONNECTED, BARE, nasty)


def test_reading_fills_absent_parts_and_checks_the_time() -> None:
    ns = f'xmlns="{END_DEVICE_EVENTS}"'
    (event,) = parse_end_device_events(
        etree.fromstring(
            f"<EndDeviceEvents {ns}><EndDeviceEvent><createdDateTime> 2026-03-10T00:00:00Z </createdDateTime>"
            "<Assets><Names><name>A</name></Names><Names><name>B</name></Names></Assets>"
            "<EndDeviceEventDetails><name>k</name></EndDeviceEventDetails>"
            "<EndDeviceEventDetails><value>orphan</value></EndDeviceEventDetails>"
            "<EndDeviceEventType/></EndDeviceEvent></EndDeviceEvents>"
        )
    )
    assert event == EventOut("", "2026-03-10T00:00:00Z", "", "", "A", None, details=(("k", ""),))
    for body in (
        f"<EndDeviceEvents {ns}><EndDeviceEvent><createdDateTime>now</createdDateTime>"
        "</EndDeviceEvent></EndDeviceEvents>",
        f"<EndDeviceEvent {ns}/>",
        "<EndDeviceEvents/>",
    ):
        with pytest.raises(CimError) as info:
            parse_end_device_events(etree.fromstring(body))
        assert info.value.code == "1.8"


# Small pools make events share meters, types and details, so the per-document caches are hit
# with every combination of the fields around them.
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8).filter(
    lambda s: s.strip() == s
)
pool = st.sampled_from(["a", "b", 'q"<&>'])
opt_pool = st.one_of(st.none(), pool)
stamps = (
    st.integers(0, 4_102_444_800).map(lambda t: f"{t // 86400 % 28 + 1:02d}").map(lambda d: f"2026-03-{d}T00:00:00Z")
)
events = st.builds(
    EventOut,
    mrid=names,
    created=stamps,
    event_type=st.one_of(pool, st.sampled_from(["3.31.0.68", "3.31.0.42"])),
    meter_mrid=pool,
    meter_name=st.one_of(opt_pool, names),
    usage_point_mrid=opt_pool,
    issuer_id=opt_pool,
    issuer_tracking_id=opt_pool,
    reason=st.one_of(opt_pool, names),
    severity=opt_pool,
    user_id=opt_pool,
    details=st.sampled_from([(), (("a", "1"),), (("a", "1"), ("b", 'x"<')), (("c", ""),)]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(events, max_size=8))
def test_build_then_parse_is_the_identity(evs: list[EventOut]) -> None:
    doc = build_end_device_events(evs)
    assert parse_end_device_events(etree.fromstring(doc)) == tuple(evs)


def test_a_generator_is_consumed_once() -> None:
    doc = build_end_device_events(e for e in (DISCONNECTED, BARE))
    assert len(parse_end_device_events(etree.fromstring(doc))) == 2

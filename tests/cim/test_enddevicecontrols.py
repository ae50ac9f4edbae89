"""EndDeviceControls: every accepted form becomes ControlItems; built documents validate; bad input is a CimError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from simulator.cim.enddevicecontrols import (
    ControlItem,
    ControlOut,
    build_end_device_controls,
    build_end_device_controls_request,
    build_requested_controls,
    control_ids,
    controls_from_message,
    normalise_control_type,
    parse_end_device_controls,
)
from simulator.cim.envelope import IdRef, OutHeader, read_request
from simulator.cim.getmeterreadings import ObjRef
from simulator.cim.ns import END_DEVICE_CONTROLS, END_DEVICE_CONTROLS_MSG, MSG
from simulator.cim.xml import parse_xml
from simulator.errors import CimError
from tests.cim.enddevice_schemas import assert_valid

T0 = 1773100800  # 2026-03-10T00:00:00Z
METER = "9f5a3c1e-2b7d-4e8a-9c41-5d2e7b0a6f13"


def _parse(inner: str, ns: str = END_DEVICE_CONTROLS) -> tuple[ControlItem, ...]:
    return parse_end_device_controls(etree.fromstring(f'<EndDeviceControls xmlns="{ns}">{inner}</EndDeviceControls>'))


def _one(inner: str) -> ControlItem:
    (item,) = _parse(f"<EndDeviceControl>{inner}</EndDeviceControl>")
    return item


def _item(index: int = 0, **kw: object) -> ControlItem:
    fields: dict[str, object] = dict(
        index=index, mrid=None, control_type="3.31.0.23", issuer_id=None, issuer_tracking_id=None, reason=None,
        end_devices=(), end_device_groups=(), usage_points=(), usage_point_groups=(),
        start_time=None, end_time=None, duration_s=None,
    )  # fmt: skip
    fields.update(kw)
    return ControlItem(**fields)  # type: ignore[arg-type]


# A create as an MDMS writes it by hand: prefixes, padding, a NameType, a control without a type.
CREATE = f"""<ns2:CreateEndDeviceControls xmlns:ns2="{END_DEVICE_CONTROLS_MSG}" xmlns:msg="{MSG}">
  <ns2:Header><msg:Verb>create</msg:Verb><msg:Noun>EndDeviceControls</msg:Noun>
    <msg:CorrelationID>corr-1</msg:CorrelationID></ns2:Header>
  <ns2:Payload>
    <edc:EndDeviceControls xmlns:edc="{END_DEVICE_CONTROLS}">
      <edc:EndDeviceControl>
        <edc:mRID> ctl-1 </edc:mRID>
        <edc:issuerID>MDMS</edc:issuerID>
        <edc:issuerTrackingID>track-1</edc:issuerTrackingID>
        <edc:reason>non-payment</edc:reason>
        <edc:EndDeviceControlType ref="0.31.0.23"/>
        <edc:EndDeviceGroups><edc:Names><edc:name>feeder-7</edc:name></edc:Names></edc:EndDeviceGroups>
        <edc:EndDevices><edc:mRID>{METER}</edc:mRID></edc:EndDevices>
        <edc:EndDevices><edc:Names><edc:name>SIM00000042</edc:name>
          <edc:NameType><edc:name>serial</edc:name></edc:NameType></edc:Names></edc:EndDevices>
        <edc:primaryDeviceTiming><edc:duration>15</edc:duration>
          <edc:interval><edc:end>2026-03-10T01:00:00Z</edc:end><edc:start>2026-03-10T00:30:00+00:00</edc:start></edc:interval>
        </edc:primaryDeviceTiming>
        <edc:UsagePointGroups><edc:mRID>upg-1</edc:mRID></edc:UsagePointGroups>
        <edc:UsagePoints><edc:mRID>up-1</edc:mRID><edc:Names><edc:name>UP 1</edc:name></edc:Names></edc:UsagePoints>
      </edc:EndDeviceControl>
      <edc:EndDeviceControl><edc:EndDevices><edc:mRID>m-2</edc:mRID></edc:EndDevices></edc:EndDeviceControl>
    </edc:EndDeviceControls>
  </ns2:Payload>
</ns2:CreateEndDeviceControls>""".encode()


def test_a_hand_written_create_gives_every_field() -> None:
    message = read_request(parse_xml(CREATE))
    assert (message.header.verb, message.header.noun) == ("create", "EndDeviceControls")
    first, second = controls_from_message(message)
    assert first == ControlItem(
        index=0,
        mrid="ctl-1",
        control_type="0.31.0.23",
        issuer_id="MDMS",
        issuer_tracking_id="track-1",
        reason="non-payment",
        end_devices=(ObjRef(METER), ObjRef(None, ("SIM00000042",))),
        end_device_groups=(ObjRef(None, ("feeder-7",)),),
        usage_points=(ObjRef("up-1", ("UP 1",)),),
        usage_point_groups=(ObjRef("upg-1"),),
        start_time=T0 + 1800,
        end_time=T0 + 3600,
        duration_s=900.0,
    )
    assert second == _item(1, control_type="", end_devices=(ObjRef("m-2"),))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("3.31.0.23", "3.31.0.23"),
        ("0.31.0.23", "3.31.0.23"),
        (" 2.31.0.18 ", "3.31.0.18"),
        ("3.8.0.214", "3.8.0.214"),
        ("26.15.0.54", "3.15.0.54"),
        ("3.031.0.023", "3.31.0.23"),
    ],
)
def test_normalise_sets_the_electric_meter_type(code: str, expected: str) -> None:
    assert normalise_control_type(code) == expected


@pytest.mark.parametrize(
    "code",
    ["", "3.31.0", "3.31.0.23.1", "a.31.0.23", "3.31.0.-1", "3..0.23", "\uff13.31.0.23", "1234567890.31.0.23",
     "3.31.0.23 x", "3.31.0.2e1", "+3.31.0.23"],
)  # fmt: skip
def test_normalise_refuses_anything_but_four_integers(code: str) -> None:
    assert normalise_control_type(code) is None


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ('<EndDeviceControlType ref=" 3.31.0.18 "/>', "3.31.0.18"),
        ("<EndDeviceControlType><mRID>3.31.0.5</mRID></EndDeviceControlType>", "3.31.0.5"),
        ("<EndDeviceControlType><Names><name>3.8.0.214</name></Names></EndDeviceControlType>", "3.8.0.214"),
        ('<EndDeviceControlType ref="vendor-code"/>', "vendor-code"),
        ('<EndDeviceControlType ref=""/>', ""),
        ("<EndDeviceControlType/>", ""),
        ("", ""),
    ],
    ids=["ref", "mRID", "name", "unknown-kept", "empty-ref", "empty", "absent"],
)
def test_control_type_forms(inner: str, expected: str) -> None:
    assert _one(inner).control_type == expected


def test_a_ref_to_a_defined_control_type_resolves_to_its_code() -> None:
    items = _parse(
        '<EndDeviceControl><EndDeviceControlType ref="t-open"/></EndDeviceControl>'
        '<EndDeviceControl><EndDeviceControlType ref="t-close"/></EndDeviceControl>'
        '<EndDeviceControl><EndDeviceControlType ref="t-vague"/></EndDeviceControl>'
        "<EndDeviceControlType><mRID>t-open</mRID><domain>31</domain><eventOrAction>23</eventOrAction>"
        "<subDomain>0</subDomain><type>0</type><Names><name>open</name></Names></EndDeviceControlType>"
        "<EndDeviceControlType><mRID>t-close</mRID><Names><name>close</name></Names>"
        "<Names><name>3.31.0.18</name></Names></EndDeviceControlType>"
        "<EndDeviceControlType><mRID>t-vague</mRID><domain>31</domain><Names><name>x</name></Names>"
        "</EndDeviceControlType>"
    )
    assert [i.control_type for i in items] == ["0.31.0.23", "3.31.0.18", "t-vague"]


@pytest.mark.parametrize(
    ("duration", "seconds"), [("15", 900.0), ("1.5", 90.0), ("1E1", 600.0), (" 0 ", 0.0), ("+.5", 30.0)]
)
def test_duration_minutes_become_seconds(duration: str, seconds: float) -> None:
    item = _one(f"<primaryDeviceTiming><duration>{duration}</duration></primaryDeviceTiming>")
    assert item.duration_s == seconds and item.start_time is None and item.end_time is None


@pytest.mark.parametrize(
    "timing",
    [
        "<interval><start>tomorrow</start></interval>",
        "<interval><end>2026-02-30T00:00:00Z</end></interval>",
        "<interval><start>2026-03-10T24:30:00Z</start></interval>",
        "<duration>ten</duration>",
        "<duration>INF</duration>",
        "<duration>NaN</duration>",
        "<duration>-5</duration>",
        "<duration>1_0</duration>",
        "<duration>1e999</duration>",
    ],
)
def test_malformed_timing_is_1_8_naming_the_control(timing: str) -> None:
    with pytest.raises(CimError) as info:
        _parse(
            "<EndDeviceControl/>"
            f"<EndDeviceControl><primaryDeviceTiming>{timing}</primaryDeviceTiming></EndDeviceControl>"
        )
    assert info.value.code == "1.8" and "EndDeviceControl[2]/primaryDeviceTiming" in info.value.reason


def test_roots_other_than_end_device_controls_are_1_8_and_other_years_pass() -> None:
    assert _parse("<EndDeviceControl/>", "http://iec.ch/TC57/2017/EndDeviceControls#") == (_item(control_type=""),)
    for xml in ("<EndDeviceControls/>", f'<EndDeviceControl xmlns="{END_DEVICE_CONTROLS}"/>'):
        with pytest.raises(CimError) as info:
            parse_end_device_controls(etree.fromstring(xml))
        assert info.value.code == "1.8"


def test_a_message_without_the_document_is_1_7_but_its_ids_are_read() -> None:
    header = OutHeader("cancel", "EndDeviceControls")
    body = build_end_device_controls_request((), header, request_ids=(IdRef("track-1", kind="transaction"),))
    message = read_request(parse_xml(body))
    assert control_ids(message) == ("track-1",)
    with pytest.raises(CimError) as info:
        controls_from_message(message)
    assert info.value.code == "1.7"
    assert_valid(body, "EndDeviceControlsMessage")
    generic = build_end_device_controls_request(
        (), header, typed=False, payload_ids=(IdRef("ctl-1", kind="uuid", object_type="EndDeviceControl"),)
    )
    assert_valid(generic, "Message")
    assert control_ids(read_request(parse_xml(generic))) == ("ctl-1",)
    with pytest.raises(ValueError):
        build_end_device_controls_request((_item(),), header, typed=False, payload_ids=(IdRef("x"),))


FULL = _item(
    mrid="ctl-9",
    issuer_id="MDMS",
    issuer_tracking_id='t<&>"9',
    reason="move-out\nline 2",
    end_devices=(ObjRef(METER, ("SIM1", "SIM1-b")), ObjRef(None, ("SIM2",))),
    end_device_groups=(ObjRef("g-1"),),
    usage_points=(ObjRef("up-1"),),
    usage_point_groups=(ObjRef(None, ("upg",)),),
    start_time=T0,
    end_time=T0 + 7200,
    duration_s=120.0,
)


@pytest.mark.parametrize(
    ("verb", "year"), [("create", "2011"), ("cancel", "2011"), ("create", "2017"), ("change", "2011")]
)
def test_typed_requests_validate_and_read_back(verb: str, year: str) -> None:
    items = (FULL, _item(1, control_type=""))
    body = build_end_device_controls_request(items, OutHeader(verb, "EndDeviceControls", message_id="m-1"), year=year)
    root = etree.fromstring(body)
    assert root.tag == f"{{http://iec.ch/TC57/{year}/EndDeviceControlsMessage}}{verb.title()}EndDeviceControls"
    assert_valid(body, "EndDeviceControlsMessage" if year == "2011" else "EndDeviceControlsMessage2017")
    assert_valid(build_requested_controls(items), "EndDeviceControls")
    message = read_request(parse_xml(body))
    assert message.header.verb == verb and message.kind == "typed"
    assert controls_from_message(message) == items


def test_generic_request_reads_back() -> None:
    body = build_end_device_controls_request((FULL,), OutHeader("create", "EndDeviceControls"), typed=False)
    assert_valid(body, "Message")
    assert controls_from_message(read_request(parse_xml(body))) == (FULL,)


def test_created_controls_validate_and_read_back() -> None:
    outs = (
        ControlOut("ctl-1", "3.31.0.23", "MDMS", "track-1", "non-payment", (METER, "m-2"), "2026-03-10T00:30:00Z"),
        ControlOut(None, "3.8.0.214", None, None, None, (), None),
    )
    doc = build_end_device_controls(outs)
    assert_valid(doc, "EndDeviceControls")
    first, second = parse_end_device_controls(etree.fromstring(doc))
    assert first == _item(
        mrid="ctl-1", issuer_id="MDMS", issuer_tracking_id="track-1", reason="non-payment",
        end_devices=(ObjRef(METER), ObjRef("m-2")), start_time=T0 + 1800,
    )  # fmt: skip
    assert second == _item(1, control_type="3.8.0.214")


# ------------------------------------------------------------------------------- properties

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=10).filter(
    lambda s: s.strip() == s
)
opt_names = st.one_of(st.none(), names)
refs = st.builds(ObjRef, opt_names, st.lists(names, max_size=2).map(tuple))
ref_lists = st.lists(refs, max_size=2).map(tuple)
times = st.one_of(st.none(), st.integers(min_value=0, max_value=4_102_444_800))
durations = st.one_of(st.none(), st.integers(0, 100_000).map(lambda quarter_minutes: quarter_minutes * 15.0))


@st.composite
def item_lists(draw: st.DrawFn) -> tuple[ControlItem, ...]:
    n = draw(st.integers(0, 3))
    return tuple(
        ControlItem(
            index=i,
            mrid=draw(opt_names),
            control_type=draw(st.one_of(st.just(""), names, st.sampled_from(["3.31.0.23", "0.31.0.18"]))),
            issuer_id=draw(opt_names),
            issuer_tracking_id=draw(opt_names),
            reason=draw(opt_names),
            end_devices=draw(ref_lists),
            end_device_groups=draw(ref_lists),
            usage_points=draw(ref_lists),
            usage_point_groups=draw(ref_lists),
            start_time=draw(times),
            end_time=draw(times),
            duration_s=draw(durations),
        )
        for i in range(n)
    )


@settings(max_examples=150, deadline=None)
@given(item_lists())
def test_build_then_parse_is_the_identity(items: tuple[ControlItem, ...]) -> None:
    doc = build_requested_controls(items)
    assert parse_end_device_controls(etree.fromstring(doc)) == items


def _serve_controls(data: bytes) -> None:
    """What the head-end does with a control request's bytes, up to the ControlItems."""
    try:
        message = read_request(parse_xml(data))
        control_ids(message)
        for item in controls_from_message(message):
            normalise_control_type(item.control_type)
    except CimError:
        pass


VALID = build_end_device_controls_request((FULL, _item(1)), OutHeader("create", "EndDeviceControls"))
_TREE_TEXTS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(
        ["", " ", "2026-03-10T00:00:00Z", "2026-13-01T00:00:00Z", "-1", "NaN", "INF", "1e400", "3.31.0.23"]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_tree_mutations_of_a_valid_create_raise_only_cim_errors(data: st.DataObject) -> None:
    root = etree.fromstring(CREATE if data.draw(st.booleans()) else VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        target = data.draw(st.sampled_from(elements))
        action = data.draw(st.sampled_from(["drop", "text", "dup", "rename", "attr", "move"]))
        parent = target.getparent()
        if action == "drop" and parent is not None:
            parent.remove(target)
        elif action == "text":
            target.text = data.draw(_TREE_TEXTS.filter(lambda s: all(c.isprintable() or c in "\t\n\r" for c in s)))
        elif action == "dup" and parent is not None:
            parent.append(etree.fromstring(etree.tostring(target)))
        elif action == "rename":
            qname = etree.QName(target)
            target.tag = data.draw(
                st.sampled_from(
                    [f"{{{qname.namespace}}}EndDeviceControl", f"{{{qname.namespace}}}mRID", qname.localname,
                     f"{{http://example.com/x}}{qname.localname}", f"{{{END_DEVICE_CONTROLS}}}EndDeviceControls"]
                )
            )  # fmt: skip
        elif action == "attr":
            target.set(
                data.draw(st.sampled_from(["ref", "kind", "x"])), data.draw(st.sampled_from(["", "3.1.0.1", "\u00e9"]))
            )
        elif action == "move" and parent is not None:
            parent.remove(target)
            data.draw(st.sampled_from([e for e in root.iter() if isinstance(e.tag, str)])).append(target)
    _serve_controls(etree.tostring(root))  # anything but CimError fails the test


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([CREATE, VALID]), st.data())
def test_byte_mutations_of_a_valid_create_raise_only_cim_errors(valid: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(valid)))
    end = data.draw(st.integers(start, min(len(valid), start + 30)))
    insert = data.draw(st.one_of(st.binary(max_size=10), st.sampled_from([b"<", b">", b"&", b'"', b"</x>", b"&#0;"])))
    _serve_controls(valid[:start] + insert + valid[end:])

"""Reading 61968-100 requests: typed and generic shapes, and the code each defect answers with."""

from __future__ import annotations

import pytest
from lxml import etree

from simulator.cim.envelope import IdRef, read_request, validate_request
from simulator.cim.ns import GET_METER_READINGS, GET_METER_READINGS_MSG, MSG
from simulator.cim.xml import parse_xml
from simulator.errors import CimError
from tests.conformance import samples

H = f'xmlns:msg="{MSG}"'


def _read(xml: bytes | str):  # type: ignore[no-untyped-def]
    return read_request(parse_xml(xml.encode() if isinstance(xml, str) else xml))


def _code(xml: bytes | str) -> CimError:
    with pytest.raises(CimError) as info:
        _read(xml)
    return info.value


def _generic(header: str, rest: str = "", root: str = "RequestMessage") -> str:
    return f"<msg:{root} {H}><msg:Header>{header}</msg:Header>{rest}</msg:{root}>"


def _typed(
    header: str, rest: str = "", ns: str = GET_METER_READINGS_MSG, root: str = "GetMeterReadings"
) -> str:
    return f'<w:{root} xmlns:w="{ns}" {H}><w:Header>{header}</w:Header>{rest}</w:{root}>'


HEAD = "<msg:Verb>get</msg:Verb><msg:Noun>MeterReadings</msg:Noun>"
PROFILE = f'<g:GetMeterReadings xmlns:g="{GET_METER_READINGS}"/>'


def test_typed_get_request_is_read_completely() -> None:
    msg = _read(samples.get_request())
    assert msg.kind == "typed"
    assert msg.root_qname == f"{{{GET_METER_READINGS_MSG}}}GetMeterReadings"
    h = msg.header
    assert (h.verb, h.noun, h.revision, h.source) == ("get", "MeterReadings", "2.0", "MDMS")
    assert h.timestamp == "2026-03-10T12:00:00Z"
    assert h.async_reply_flag is False and h.ack_required is None
    assert (h.user_id, h.organization) == ("mdms-batch", "Utility")
    assert h.message_id == "6b0c1f52-8a3d-4e5f-9b21-3c4d5e6f7a80"
    assert h.correlation_id == "c0ffee00-1111-4222-8333-444455556666"
    assert msg.request is not None
    assert msg.request.start_time == 1773100800 and msg.request.end_time == 1773144000
    assert msg.request.options == (("resultsPerMessage", "100"),)
    assert msg.request.ids == (IdRef("job-17"),)
    assert [etree.QName(e).localname for e in msg.request.elements] == ["GetMeterReadings"]
    assert msg.find_element("GetMeterReadings") is msg.request.elements[0]
    assert msg.response_root == f"{{{GET_METER_READINGS_MSG}}}MeterReadingsResponseMessage"
    assert msg.fault_root == f"{{{GET_METER_READINGS_MSG}}}MeterReadingsFaultMessage"
    assert msg.schema_name == "GetMeterReadingsMessage"


def test_generic_request_is_read_with_ids_and_options() -> None:
    msg = _read(samples.request_message())
    assert msg.kind == "generic" and msg.response_root is None and msg.fault_root is None
    assert msg.schema_name == "Message"
    assert msg.request is not None
    assert msg.request.options == (("ping", None),)
    assert msg.request.ids == (IdRef(samples.METER_UUID, kind="uuid", object_type="EndDevice"),)
    assert msg.find_element("GetMeterReadings") is not None


def test_payload_ids_and_profile_elements_are_collected() -> None:
    msg = _read(samples.cancel_by_id())
    assert msg.header.verb == "cancel"
    assert msg.payload_ids == (IdRef("job-17", kind="transaction", id_type="jobId"),)
    event = _read(samples.event_message())
    assert [etree.QName(e).localname for e in event.payload_elements] == ["MeterReadings"]
    assert event.header.properties == (("MessageIndex", "1/1"),)


def test_profile_under_payload_is_found_too() -> None:
    msg = _read(_generic(HEAD, f"<msg:Payload>{PROFILE}</msg:Payload>"))
    assert msg.request is None
    assert msg.find_element("GetMeterReadings") is not None


@pytest.mark.parametrize("root", ["RequestMessage", "Message", "EventMessage"])
def test_every_generic_root_is_accepted(root: str) -> None:
    assert _read(_generic(HEAD, root=root)).kind == "generic"


@pytest.mark.parametrize("year", ["2011", "2015", "2017"])
def test_typed_roots_of_any_known_year(year: str) -> None:
    ns = f"http://iec.ch/TC57/{year}/EndDeviceControlsMessage"
    head = "<msg:Verb>create</msg:Verb><msg:Noun>EndDeviceControls</msg:Noun>"
    msg = _read(_typed(head, ns=ns, root="CreateEndDeviceControls"))
    assert (msg.kind, msg.header.verb, msg.header.noun) == ("typed", "create", "EndDeviceControls")
    assert msg.response_root == f"{{{ns}}}EndDeviceControlsResponseMessage"
    assert msg.schema_name == "EndDeviceControlsMessage"


def test_typed_parts_in_the_message_namespace_are_tolerated() -> None:
    xml = (
        f'<w:GetMeterReadings xmlns:w="{GET_METER_READINGS_MSG}" {H}><msg:Header>{HEAD}</msg:Header>'
        f"<msg:Request>{PROFILE}</msg:Request></w:GetMeterReadings>"
    )
    assert _read(xml).request is not None


def test_comments_and_blank_text_do_not_disturb_reading() -> None:
    xml = _generic(
        "<!-- c --><msg:Verb> get </msg:Verb>\n<msg:Noun>MeterReadings</msg:Noun><?pi x?>",
        f"<msg:Request><!-- c -->{PROFILE}<?pi y?></msg:Request>",
    )
    msg = _read(xml)
    assert msg.header.verb == "get"
    assert msg.request is not None and len(msg.request.elements) == 1


@pytest.mark.parametrize(
    ("xml", "code", "says"),
    [
        (f"<msg:RequestMessage {H}><msg:Request/></msg:RequestMessage>", "1.5", "no Header"),
        (_typed(HEAD, ""), "1.6", "requires a Request"),
        (f"<msg:ResponseMessage {H}/>", "1.8", "unexpected root element"),
        ("<Envelope/>", "1.8", "accepted roots"),
        (_typed(HEAD, root="ReplyGetMeterReadings"), "1.8", "unexpected root"),
        (_typed(HEAD, ns="http://iec.ch/TC57/2012/GetMeterReadingsMessage"), "1.8", "unexpected root"),
        (_generic("<msg:Noun>MeterReadings</msg:Noun>"), "2.9", "no {"),
        (_generic("<msg:Verb>show</msg:Verb><msg:Noun>MeterReadings</msg:Noun>"), "2.9", "'show'"),
        (_generic("<msg:Verb>Get</msg:Verb><msg:Noun>MeterReadings</msg:Noun>"), "2.9", "not one of"),
        (_generic("<Verb>get</Verb><msg:Noun>MeterReadings</msg:Noun>"), "2.9", "Verb"),
        (_generic("<msg:Verb>get</msg:Verb>"), "2.5", "Noun"),
        (_generic("<msg:Verb>get</msg:Verb><msg:Noun>  </msg:Noun>"), "2.5", "empty"),
        (
            _typed("<msg:Verb>create</msg:Verb><msg:Noun>MeterReadings</msg:Noun>", "<w:Request/>"),
            "2.9",
            "contradicts",
        ),
        (
            _typed("<msg:Verb>get</msg:Verb><msg:Noun>EndDeviceEvents</msg:Noun>", "<w:Request/>"),
            "2.5",
            "contradicts",
        ),
        (_generic(HEAD + "<msg:AsyncReplyFlag>yes</msg:AsyncReplyFlag>"), "1.8", "boolean"),
        (
            _generic(HEAD, "<msg:Request><msg:StartTime>yesterday</msg:StartTime></msg:Request>"),
            "1.8",
            "dateTime",
        ),
    ],
)
def test_each_defect_answers_its_code(xml: str, code: str, says: str) -> None:
    err = _code(xml)
    assert err.code == code
    assert says in err.reason


def test_booleans_accept_the_four_lexical_forms() -> None:
    for text, value in (("true", True), ("1", True), ("false", False), ("0", False)):
        msg = _read(_generic(HEAD + f"<msg:AckRequired>{text}</msg:AckRequired>"))
        assert msg.header.ack_required is value


def test_validate_request_lists_the_first_schema_errors() -> None:
    bad = samples.get_request().replace(b"<gmr:mRID>0.0.2", b"<gmr:bogus/><gmr:mRID>0.0.2")
    root = parse_xml(bad)
    read_request(root)  # reading alone does not validate
    with pytest.raises(CimError) as info:
        validate_request(root, "GetMeterReadingsMessage")
    assert info.value.code == "1.8"
    assert "bogus" in info.value.reason and info.value.details
    validate_request(parse_xml(samples.get_request()), "GetMeterReadingsMessage")

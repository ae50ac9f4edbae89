"""Building responses, events, requests and faults: schema-valid against ours and the reference."""

from __future__ import annotations

import numpy as np
import pytest
from lxml import etree

from simulator.cim import codes
from simulator.cim.envelope import (
    ErrorItem,
    IdRef,
    OutHeader,
    Reply,
    build_event,
    build_fault_message,
    build_request,
    build_response,
    meter_error,
    read_request,
    reading_type_error,
    reply_for_error,
    typed_root,
)
from simulator.cim.meterreadings import IntervalBlockData, MeterReadingData, build_meter_readings
from simulator.cim.ns import GET_METER_READINGS_MSG, METER_READINGS_MSG, MSG
from simulator.cim.xml import parse_xml
from simulator.errors import CimError
from tests.conformance.refschemas import assert_valid_both

RT = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
GMR_RESPONSE = f"{{{GET_METER_READINGS_MSG}}}MeterReadingsResponseMessage"
GMR_FAULT = f"{{{GET_METER_READINGS_MSG}}}MeterReadingsFaultMessage"
NSMAP = {"msg": MSG, "g": GET_METER_READINGS_MSG, "m": METER_READINGS_MSG}

FULL_HEADER = OutHeader(
    verb="reply",
    noun="MeterReadings",
    message_id="m-2",
    correlation_id="c-1",
    timestamp="2026-03-10T12:00:00.123Z",
    source="hes-sim",
    reply_address="http://127.0.0.1:9/reply",
    async_reply_flag=False,
    ack_required=True,
    properties=(("MessageIndex", "1/2"), ("Flag", None)),
    comment="a <comment> & more",
    revision="1.0",
    context="TESTING",
)


def _payload(meters: int = 2) -> bytes:
    stamps = ("2026-03-10T00:15:00Z", "2026-03-10T00:30:00Z")
    return build_meter_readings(
        MeterReadingData(
            meter_mrid=f"uuid-{i}",
            meter_name=f"SN{i}",
            interval_blocks=[IntervalBlockData(RT, stamps, np.array([412, 7]), 3)],
        )
        for i in range(meters)
    )


def _partial_reply() -> Reply:
    return Reply(
        result="PARTIAL",
        errors=(
            ErrorItem(codes.PARTIAL_NONE_FOLLOW, "INFORM", codes.reason_for("0.2")),
            meter_error(codes.INVALID_METER, "00000000-0000-4000-8000-00000000dead"),
            reading_type_error(codes.UNSUPPORTED_READING_TYPE, "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.73.0"),
            meter_error(codes.TIMED_OUT, "9f5a3c1e", reason="meter did not answer within 30 s"),
        ),
        ids=(IdRef("job-1", kind="transaction"),),
    )


def test_typed_get_meter_readings_response_is_what_the_get_wsdl_declares() -> None:
    body = build_response(GMR_RESPONSE, FULL_HEADER, _partial_reply(), _payload())
    assert_valid_both(body, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    root = etree.fromstring(body)
    assert root.tag == GMR_RESPONSE
    assert [etree.QName(c).text for c in root] == [
        f"{{{GET_METER_READINGS_MSG}}}{n}" for n in ("Header", "Reply", "Payload")
    ]
    err = root.find("g:Reply/msg:Error[msg:code='2.4']", NSMAP)
    assert err is not None
    id_el = err.find("msg:ID", NSMAP)
    assert id_el is not None and id_el.attrib == {"kind": "uuid", "objectType": "EndDevice"}
    assert err.findtext("msg:level", namespaces=NSMAP) == "WARNING"
    rt_id = root.find("g:Reply/msg:Error[msg:code='2.10']/msg:ID", NSMAP)
    assert rt_id is not None and rt_id.attrib == {"kind": "name", "objectType": "ReadingType"}


def test_tuple_and_clark_wrappers_give_the_same_bytes() -> None:
    a = build_response(GMR_RESPONSE, FULL_HEADER, Reply("OK"))
    b = build_response((GET_METER_READINGS_MSG, "MeterReadingsResponseMessage"), FULL_HEADER, Reply("OK"))
    assert a == b


def test_typed_meter_readings_response_and_created_event_validate() -> None:
    response = build_response(
        f"{{{METER_READINGS_MSG}}}MeterReadingsResponseMessage", FULL_HEADER, _partial_reply(), _payload()
    )
    assert_valid_both(response, "MeterReadingsMessage", "MeterReadingsMessage")
    created = build_event(
        typed_root("Created", "MeterReadings"),
        OutHeader("created", "MeterReadings", message_id="e-1", properties=(("MessageIndex", "1/1"),)),
        _payload(),
    )
    assert etree.fromstring(created).tag == f"{{{METER_READINGS_MSG}}}CreatedMeterReadings"
    assert_valid_both(created, "MeterReadingsMessage", "MeterReadingsMessage")


def test_generic_response_event_and_request_validate_against_message_xsd() -> None:
    for body in (
        build_response(None, FULL_HEADER, _partial_reply(), _payload()),
        build_response(None, FULL_HEADER, Reply("OK", (ErrorItem("0.0"),))),
        build_event(None, OutHeader("created", "MeterReadings"), _payload()),
        build_request(
            None, OutHeader("get", "MeterReadings"), ids=(IdRef("x", kind="uuid", object_type="EndDevice"),)
        ),
    ):
        assert etree.QName(etree.fromstring(body)).namespace == MSG
        assert_valid_both(body, "Message", "Message")


def test_faults_generic_and_typed_validate_and_have_no_header() -> None:
    reply = reply_for_error(CimError("1.8", "request fails schema validation", details="line 1: x"))
    generic = build_fault_message(reply)
    assert_valid_both(generic, "Message", "Message")
    typed = build_fault_message(reply, GMR_FAULT)
    assert_valid_both(typed, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    for body in (generic, typed):
        root = etree.fromstring(body)
        assert root.find(".//msg:Header", NSMAP) is None
        assert root.findtext(".//msg:Result", namespaces=NSMAP) == "FAILED"
        assert root.findtext(".//msg:code", namespaces=NSMAP) == "1.8"
        assert root.findtext(".//msg:level", namespaces=NSMAP) == "FATAL"
        assert root.findtext(".//msg:details", namespaces=NSMAP) == "line 1: x"
    assert Reply.failed(CimError("5.1", "busy")) == reply_for_error(CimError("5.1", "busy"))


def test_header_round_trips_through_the_reader_in_xsd_order() -> None:
    body = build_event(None, FULL_HEADER.__class__(**{**_fields(FULL_HEADER), "verb": "created"}))
    assert_valid_both(body, "Message", "Message")  # Message.xsd enforces the sequence order
    h = read_request(parse_xml(body)).header
    assert (h.verb, h.noun, h.message_id, h.correlation_id) == ("created", "MeterReadings", "m-2", "c-1")
    assert (h.timestamp, h.source, h.reply_address) == (
        FULL_HEADER.timestamp,
        "hes-sim",
        FULL_HEADER.reply_address,
    )
    assert (h.async_reply_flag, h.ack_required, h.revision, h.context) == (False, True, "1.0", "TESTING")
    assert h.comment == "a <comment> & more"
    assert h.properties == (("MessageIndex", "1/2"), ("Flag", None))


def _fields(h: OutHeader) -> dict[str, object]:
    return {name: getattr(h, name) for name in h.__slots__}  # type: ignore[attr-defined]


def test_none_fields_are_omitted() -> None:
    body = build_response(None, OutHeader("reply", "MeterReadings"), Reply("OK")).decode()
    assert body == (
        f'<msg:ResponseMessage xmlns:msg="{MSG}"><msg:Header><msg:Verb>reply</msg:Verb>'
        "<msg:Noun>MeterReadings</msg:Noun></msg:Header><msg:Reply><msg:Result>OK</msg:Result>"
        "</msg:Reply></msg:ResponseMessage>"
    )


def test_typed_get_request_puts_request_fields_in_the_wrapper_namespace() -> None:
    from simulator.cim.getmeterreadings import MeterReadingsQuery, ObjRef, build_get_meter_readings

    body = build_request(
        f"{{{GET_METER_READINGS_MSG}}}GetMeterReadings",
        OutHeader("get", "MeterReadings", message_id="m-1"),
        start_time="2026-03-10T00:00:00Z",
        end_time="2026-03-10T12:00:00Z",
        options=(("resultsPerMessage", "100"),),
        ids=(IdRef("job-17"),),
        request_elements=(build_get_meter_readings(MeterReadingsQuery(end_devices=(ObjRef("a"),))),),
    )
    assert_valid_both(body, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    msg = read_request(parse_xml(body))
    assert msg.request is not None
    assert (msg.request.start_time, msg.request.end_time) == (1773100800, 1773144000)
    assert msg.request.options == (("resultsPerMessage", "100"),) and msg.request.ids == (IdRef("job-17"),)


def test_hostile_text_is_escaped_and_stays_valid() -> None:
    nasty = 'a<b>&c"d\x00e\r\nf]]>'
    reply = Reply(
        "FAILED", (ErrorItem("5.3", "FATAL", nasty, nasty, IdRef(nasty, kind="other", object_type=nasty)),)
    )
    body = build_response(GMR_RESPONSE, OutHeader("reply", "MeterReadings", comment=nasty), reply)
    assert_valid_both(body, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    root = etree.fromstring(body)
    assert root.findtext(".//msg:reason", namespaces=NSMAP) == 'a<b>&c"d\ufffde\r\nf]]>'


def test_payload_declaration_is_dropped_so_the_payload_embeds() -> None:
    payload = b'<?xml version="1.0" encoding="UTF-8"?>\n' + _payload(1)
    body = build_response(None, OutHeader("reply", "MeterReadings"), Reply("OK"), payload)
    assert b"<?xml" not in body
    assert_valid_both(body, "Message", "Message")


def test_invalid_enumerations_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        Reply("MAYBE")
    with pytest.raises(ValueError):
        ErrorItem("1.8", level="SEVERE")
    with pytest.raises(ValueError):
        OutHeader("show", "MeterReadings")
    with pytest.raises(ValueError):
        build_response("NoBraces", OutHeader("reply", "X"), Reply("OK"))


def test_codes_pair_results_and_levels() -> None:
    assert codes.result_for("0.0") == "OK" and codes.result_for("0.3") == "OK"
    assert codes.result_for("0.1") == "PARTIAL" and codes.result_for("0.2") == "PARTIAL"
    assert codes.result_for("1.8") == "FAILED" and codes.result_for("5.1") == "FAILED"
    assert codes.level_for("0.1") == "INFORM"
    assert codes.level_for("2.4") == "WARNING" and codes.level_for("5.7") == "WARNING"
    assert codes.level_for("1.8") == "FATAL" and codes.level_for("5.1") == "FATAL"
    assert codes.is_client_error("2.9") and codes.is_client_error("3.1")
    assert not codes.is_client_error("5.1") and not codes.is_client_error("4.1")
    assert codes.reason_for("9.9") == "error 9.9"
    required = [
        "0.0", "0.1", "0.2", "0.3", "1.5", "1.6", "1.7", "1.8", "1.9", "2.4", "2.5", "2.6",
        "2.9", "2.10", "2.12", "3.1", "3.2", "4.1", "5.1", "5.2", "5.3", "5.4", "5.7", "5.8",
    ]  # fmt: skip
    assert all(c in codes.REASONS for c in required)

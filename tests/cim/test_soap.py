"""SOAP 1.1/1.2 envelopes: unwrapping requests, wrapping answers, and faults clients can decode."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import zeep
import zeep.exceptions
from lxml import etree
from zeep.transports import Transport

from simulator.cim import schemas, soap
from simulator.cim.envelope import ErrorItem, OutHeader, Reply, build_response, meter_error, read_request
from simulator.cim.meterreadings import IntervalBlockData, MeterReadingData, build_meter_readings
from simulator.cim.ns import GET_METER_READINGS_MSG, MSG, SOAP11, SOAP12
from simulator.errors import CimError
from tests.conformance import samples
from tests.conformance.refschemas import REFERENCE_DIR, assert_valid_both

GMR_RESPONSE = f"{{{GET_METER_READINGS_MSG}}}MeterReadingsResponseMessage"
GMR_FAULT = f"{{{GET_METER_READINGS_MSG}}}MeterReadingsFaultMessage"
NS = {"s11": SOAP11, "s12": SOAP12, "msg": MSG, "g": GET_METER_READINGS_MSG}


def _envelope(ns: str, body: bytes, header: str = "") -> bytes:
    return f'<e:Envelope xmlns:e="{ns}">{header}<e:Body>'.encode() + body + b"</e:Body></e:Envelope>"


@pytest.mark.parametrize(
    ("ns", "content_type", "version"),
    [
        (SOAP11, "text/xml; charset=utf-8", "1.1"),
        (SOAP12, 'application/soap+xml; charset=utf-8; action="urn:x"', "1.2"),
        (SOAP12, "text/xml", "1.2"),  # the envelope decides, a wrong Content-Type is tolerated
    ],
)
def test_unwrap_returns_the_version_and_the_body_message(ns: str, content_type: str, version: str) -> None:
    header = '<e:Header><w:Security xmlns:w="urn:wsse" e:mustUnderstand="1"/></e:Header>'
    got_version, root = soap.unwrap(_envelope(ns, samples.get_request(), header), content_type)
    assert got_version == version
    assert root.tag == f"{{{GET_METER_READINGS_MSG}}}GetMeterReadings"
    assert read_request(root).header.verb == "get"


def test_a_bare_message_is_accepted_and_answered_bare() -> None:
    version, root = soap.unwrap(samples.request_message(), "application/xml")
    assert version is None and root.tag == f"{{{MSG}}}RequestMessage"
    assert soap.wrap(b"<x/>", None) == b"<x/>"
    assert soap.content_type(None) == "application/xml; charset=utf-8"
    fault = soap.fault(CimError("1.5", "no header"), None)
    assert etree.fromstring(fault).tag == f"{{{MSG}}}FaultMessage"


@pytest.mark.parametrize(
    ("data", "content_type", "says"),
    [
        (b"{}", "application/json", "not XML"),
        (b"<e:Envelope xmlns:e='%s'/>" % SOAP11.encode(), "text/xml", "no Body"),
        (b"<e:Envelope xmlns:e='%s'><e:Body/></e:Envelope>" % SOAP11.encode(), "text/xml", "empty"),
        (_envelope(SOAP11, b"<a/><b/>"), "text/xml", "holds 2 elements"),
        (b"<e:Body xmlns:e='%s'/>" % SOAP11.encode(), "text/xml", "must start with Envelope"),
        (b"<e:Envelope xmlns:e='urn:soap-2099'/>", "text/xml", "unknown SOAP envelope"),
        (b"<oops", "text/xml", "not well-formed"),
    ],
)
def test_unwrap_errors_are_1_8(data: bytes, content_type: str, says: str) -> None:
    with pytest.raises(CimError) as info:
        soap.unwrap(data, content_type)
    assert info.value.code == "1.8" and says in info.value.reason


def test_version_of_content_type() -> None:
    assert soap.version_of_content_type("application/soap+xml;charset=utf-8") == "1.2"
    assert soap.version_of_content_type("text/xml") == "1.1"
    assert soap.version_of_content_type(None) == "1.1"
    assert soap.content_type("1.1") == "text/xml; charset=utf-8"
    assert soap.content_type("1.2") == "application/soap+xml; charset=utf-8"


def test_wrap_has_an_empty_header_and_the_message_in_the_body() -> None:
    for version, ns in (("1.1", SOAP11), ("1.2", SOAP12)):
        env = etree.fromstring(soap.wrap(samples.get_request(), version))  # type: ignore[arg-type]
        assert env.tag == f"{{{ns}}}Envelope"
        assert [etree.QName(c).localname for c in env] == ["Header", "Body"] and len(env[0]) == 0
        assert env[1][0].tag == f"{{{GET_METER_READINGS_MSG}}}GetMeterReadings"


def test_soap11_fault_carries_a_valid_typed_fault_message() -> None:
    body = soap.fault(CimError("2.9", "verb 'show' is not served"), "1.1", GMR_FAULT)
    env = etree.fromstring(body)
    fault = env.find("s11:Body/s11:Fault", NS)
    assert fault is not None
    assert [c.tag for c in fault] == ["faultcode", "faultstring", "detail"]
    assert fault.findtext("faultcode") == "soapenv:Client"
    assert fault.findtext("faultstring") == "verb 'show' is not served"
    detail = fault.find("detail")
    assert detail is not None and len(detail) == 1
    assert_valid_both(detail[0], "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    assert detail[0].findtext("g:Reply/msg:Error/msg:code", namespaces=NS) == "2.9"


def test_soap12_fault_uses_code_reason_detail_and_receiver_for_server_errors() -> None:
    body = soap.fault(CimError("5.1", "busy: 40 jobs in flight"), "1.2")
    fault = etree.fromstring(body).find("s12:Body/s12:Fault", NS)
    assert fault is not None
    assert [etree.QName(c).localname for c in fault] == ["Code", "Reason", "Detail"]
    assert fault.findtext("s12:Code/s12:Value", namespaces=NS) == "env:Receiver"
    text = fault.find("s12:Reason/s12:Text", NS)
    assert text is not None and text.text == "busy: 40 jobs in flight"
    assert text.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    detail = fault.find("s12:Detail", NS)
    assert detail is not None
    assert_valid_both(detail[0], "Message", "Message")
    assert soap.fault_http_status(CimError("5.1", "x"), "1.2") == 500
    assert soap.fault_http_status(CimError("1.8", "x"), "1.2") == 400
    assert soap.fault_http_status(CimError("1.8", "x"), "1.1") == 500


def test_fault_from_a_reply_and_forced_server_code() -> None:
    reply = Reply("FAILED", (ErrorItem("2.4", reason="no meters matched"),))
    fault = etree.fromstring(soap.fault(reply, "1.1", server=True)).find("s11:Body/s11:Fault", NS)
    assert fault is not None
    assert fault.findtext("faultcode") == "soapenv:Server"
    assert fault.findtext("faultstring") == "no meters matched"
    ready = (
        f'<msg:FaultMessage xmlns:msg="{MSG}"><msg:Reply><msg:Result>FAILED</msg:Result>'
        "</msg:Reply></msg:FaultMessage>"
    ).encode()
    assert b"<detail>" + ready + b"</detail>" in soap.fault(CimError("1.8", "x"), "1.1", detail=ready)


# --- what a client generated from the WSDL makes of our answers (zeep, no sockets) --------------


class _ProfilesTransport(Transport):
    """Loads our WSDL's relative xsd/ imports from profiles/xsd (see schemas.profile_uri_mapper)."""

    def load(self, url: str) -> bytes:
        return super().load(schemas.profile_uri_mapper(url))


def _wsdls() -> list[tuple[str, str]]:
    found = [("ours", str(schemas.wsdl_path("GetMeterReadings")))]
    reference = REFERENCE_DIR / "61968-9-2013/connexo/meterreadings/GetMeterReadings.wsdl"
    if Path(reference).is_file():
        found.append(("reference", str(reference)))
    return found


@pytest.fixture(scope="module", params=_wsdls(), ids=lambda p: p[0])
def client(request: pytest.FixtureRequest) -> zeep.Client:
    return zeep.Client(request.param[1], transport=_ProfilesTransport())


def _reply_to(client: zeep.Client, status: int, content: bytes) -> object:
    binding = client.service._binding
    response = types.SimpleNamespace(
        status_code=status,
        content=content,
        headers={"Content-Type": soap.content_type("1.1")},
        encoding="utf-8",
    )
    return binding.process_reply(client, binding._operations["GetMeterReadings"], response)


def test_zeep_decodes_the_typed_response(client: zeep.Client) -> None:
    stamps = ("2026-03-10T00:15:00Z", "2026-03-10T00:30:00Z")
    payload = build_meter_readings(
        [MeterReadingData("u-1", "SN1", interval_blocks=[IntervalBlockData("rt", stamps, [412, -5], 3)])]
    )
    body = build_response(
        GMR_RESPONSE,
        OutHeader("reply", "MeterReadings", correlation_id="c-1"),
        Reply("PARTIAL", (meter_error("2.4", "u-2"),)),
        payload,
    )
    answer = _reply_to(client, 200, soap.wrap(body, "1.1"))
    assert answer.Header.CorrelationID == "c-1"  # type: ignore[attr-defined]
    assert answer.Reply.Result == "PARTIAL"  # type: ignore[attr-defined]
    error = answer.Reply.Error[0]  # type: ignore[attr-defined]
    assert (error.code, error.ID._value_1, error.ID.objectType) == ("2.4", "u-2", "EndDevice")
    reading = answer.Payload.MeterReadings.MeterReading[0]  # type: ignore[attr-defined]
    assert [r.value for r in reading.IntervalBlocks[0].IntervalReadings] == ["0.412", "-0.005"]
    assert reading.Meter.Names[0].name == "SN1"


def test_zeep_raises_our_fault_with_a_decodable_detail(client: zeep.Client) -> None:
    with pytest.raises(zeep.exceptions.Fault) as info:
        _reply_to(client, 500, soap.fault(CimError("1.8", "not valid"), "1.1", GMR_FAULT))
    assert info.value.message == "not valid"
    detail = client.get_element(GMR_FAULT).parse(info.value.detail[0], client.wsdl.types)
    assert (detail.Reply.Result, detail.Reply.Error[0].code) == ("FAILED", "1.8")

"""Our profiles/ XSDs and WSDLs: they load strictly and offline, accept what the public reference
schemas accept (and the same instances), and are wire-compatible with the public WSDLs."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import xmlschema
import zeep
import zeep.transports
from lxml import etree
from xmlschema.extras.wsdl import Wsdl11Document

from simulator.cim import ns, schemas
from tests.conformance import samples
from tests.conformance.refschemas import (
    REFERENCE_DIR,
    assert_valid_both,
    reference_available,
    reference_errors,
)
from tests.conformance.xsdshape import element_shape, rewrite

needs_reference = pytest.mark.skipif(not reference_available(), reason="../shared/reference is absent")

MR_2014 = "61968-9-2013/connexo-2014-elster"
MR_PUBLIC = "61968-9-2013/connexo/meterreadings"

GMM = f"{{{ns.GET_METER_READINGS_MSG}}}"
MRM = f"{{{ns.METER_READINGS_MSG}}}"
MSG = f"{{{ns.MSG}}}"
PAST = ("Created", "Changed", "Canceled", "Closed", "Deleted")
PRESENT = ("Create", "Change", "Cancel", "Close", "Delete")

EXPECTED_ROOTS: dict[str, set[str]] = {
    "Message": {
        MSG + n for n in ("RequestMessage", "ResponseMessage", "EventMessage", "FaultMessage", "Message")
    },
    "MeterReadings": {f"{{{ns.METER_READINGS}}}MeterReadings"},
    "GetMeterReadings": {f"{{{ns.GET_METER_READINGS}}}GetMeterReadings"},
    "MeterReadingsMessage": {MRM + f"{v}MeterReadings" for v in PAST + PRESENT}
    | {MRM + "MeterReadingsResponseMessage", MRM + "MeterReadingsFaultMessage"},
    "GetMeterReadingsMessage": {
        GMM + "GetMeterReadings",
        GMM + "MeterReadingsResponseMessage",
        GMM + "MeterReadingsFaultMessage",
    },
}

# service -> {operation: (soapAction, input element, output element, fault element)}
EXPECTED_OPERATIONS: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "GetMeterReadings": {
        "GetMeterReadings": (
            "http://iec.ch/TC57/2011/GetMeterReadings/GetMeterReadings",
            GMM + "GetMeterReadings",
            GMM + "MeterReadingsResponseMessage",
            GMM + "MeterReadingsFaultMessage",
        ),
    },
    "Message": {
        "Request": (
            "http://iec.ch/TC57/2011/Message/Request",
            MSG + "RequestMessage",
            MSG + "ResponseMessage",
            MSG + "FaultMessage",
        ),
        "Event": (
            "http://iec.ch/TC57/2011/Message/Event",
            MSG + "EventMessage",
            MSG + "ResponseMessage",
            MSG + "FaultMessage",
        ),
    },
    **{
        service: {
            f"{v}MeterReadings": (
                f"http://iec.ch/TC57/2011/MeterReadings/{v}MeterReadings",
                MRM + f"{v}MeterReadings",
                MRM + "MeterReadingsResponseMessage",
                MRM + "MeterReadingsFaultMessage",
            )
            for v in PAST
        }
        for service in ("ReplyMeterReadings", "SendMeterReadings")
    },
}


class OfflineProfilesTransport(zeep.transports.Transport):
    """Loads only local files, resolving a WSDL's xsd/ imports the way the HTTP server does."""

    def load(self, url: str) -> bytes:
        if url.startswith(("http:", "https:")):
            raise AssertionError(f"network access attempted: {url}")
        return bytes(super().load(schemas.profile_uri_mapper(url.removeprefix("file://"))))


def zeep_operations(client: zeep.Client) -> dict[str, tuple[str, str, str, str]]:
    found = {}
    for name, op in client.service._binding._operations.items():
        (fault,) = op.faults.values()
        (fault_part,) = fault.abstract.parts.values()
        found[name] = (
            op.soapaction,
            str(op.input.body.qname),
            str(op.output.body.qname),
            str(fault_part.element.qname),
        )
    return found


# ------------------------------------------------------------------------------------ loading


def test_the_profiles_ship_the_expected_files() -> None:
    # The EndDevice families are listed in test_enddevice_profiles.py, which checks the complete set.
    assert set(EXPECTED_ROOTS) <= set(schemas.xsd_names())
    assert set(EXPECTED_OPERATIONS) <= set(schemas.wsdl_services())


@pytest.mark.parametrize("name", sorted(EXPECTED_ROOTS))
def test_xsd_compiles_in_lxml_and_xmlschema_with_its_roots(name: str) -> None:
    assert isinstance(schemas.validator(name), etree.XMLSchema)
    compiled = xmlschema.XMLSchema10(str(schemas.xsd_path(name)), allow="local")
    roots = {
        qname for qname in compiled.maps.elements if qname.startswith(f"{{{compiled.target_namespace}}}")
    }
    assert roots == EXPECTED_ROOTS[name]


@pytest.mark.parametrize("service", sorted(EXPECTED_OPERATIONS))
def test_wsdl_loads_as_strict_wsdl11(service: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed xsd/ import is only a warning in xmlschema
        wsdl = Wsdl11Document(
            str(schemas.wsdl_path(service)),
            validation="strict",
            uri_mapper=schemas.profile_uri_mapper,
            allow="local",
        )
    (binding,) = wsdl.maps.bindings.values()
    assert binding.soap_transport == "http://schemas.xmlsoap.org/soap/http"
    assert binding.soap_style == "document"
    found = {}
    for (name, _, _), op in binding.operations.items():
        ((_, input_element),) = op.input.message.parts.items()
        ((_, output_element),) = op.output.message.parts.items()
        ((_, fault),) = op.faults.items()
        ((_, fault_element),) = fault.message.parts.items()
        found[name] = (op.soap_action, input_element.name, output_element.name, fault_element.name)
    assert found == EXPECTED_OPERATIONS[service]
    (wsdl_service,) = wsdl.maps.services.values()
    assert wsdl_service.local_name == service


@pytest.mark.parametrize("service", sorted(EXPECTED_OPERATIONS))
def test_wsdl_loads_in_zeep_offline_with_placeholder_address(service: str) -> None:
    client = zeep.Client(str(schemas.wsdl_path(service)), transport=OfflineProfilesTransport())
    assert zeep_operations(client) == EXPECTED_OPERATIONS[service]
    assert client.service._binding_options["address"] == f"{schemas.PLACEHOLDER_BASE_URL}/{service}"


@needs_reference
@pytest.mark.parametrize(
    ("ours", "public"),
    [("GetMeterReadings", "GetMeterReadings.wsdl"), ("SendMeterReadings", "SendMeterReadings.wsdl")],
)
def test_wsdl_has_the_same_wire_contract_as_the_public_one(ours: str, public: str) -> None:
    mine = zeep.Client(str(schemas.wsdl_path(ours)), transport=OfflineProfilesTransport())
    theirs = zeep.Client(str(REFERENCE_DIR / MR_PUBLIC / public), transport=OfflineProfilesTransport())
    assert zeep_operations(mine) == zeep_operations(theirs)


def test_profiles_name_no_other_project() -> None:
    for path in sorted(schemas.profiles_dir().rglob("*")):
        if path.is_file() and path.suffix in {".xsd", ".wsdl", ".md"}:
            text = path.read_text(encoding="utf-8").lower()
            for word in ("connexo", "elster", "honeywell", "openwms", "cim4", "langdale", "energyict"):
                assert word not in text, f"{path.name} mentions {word}"


# ------------------------------------------- structure: ours accepts what the references accept


def _compiled_reference(relative: str) -> xmlschema.XMLSchemaBase:
    return xmlschema.XMLSchema10(str(REFERENCE_DIR / relative), allow="local")


def _same(shape: Any) -> Any:
    return shape


def _ref_optional(node: Any) -> Any:
    """Waive our one deliberate tightening: MeterReadings code references must carry ref=."""
    if isinstance(node, tuple) and len(node) == 3 and node[:2] == ("ref", "required"):
        return ("ref", "optional", node[2])
    return node


def _plain_request_id(node: Any) -> Any:
    """Waive our one deliberate widening: the Get wrapper's Request/ID also takes the ID attributes."""
    if isinstance(node, tuple) and len(node) == 5 and node[:2] == ("element", GMM + "ID"):
        return (*node[:4], ("simple", "string", None))
    return node


PROFILE_NS = (ns.METER_READINGS, ns.GET_METER_READINGS)

STRUCTURE_CASES = [
    ("Message", "61968-100-2013/Message.xsd", sorted(EXPECTED_ROOTS["Message"]), (), _same),
    (
        "MeterReadings",
        f"{MR_2014}/MeterReadings.xsd",
        sorted(EXPECTED_ROOTS["MeterReadings"]),
        (),
        _ref_optional,
    ),
    (
        "GetMeterReadings",
        f"{MR_2014}/GetMeterReadings.xsd",
        sorted(EXPECTED_ROOTS["GetMeterReadings"]),
        (),
        _same,
    ),
    (
        "GetMeterReadingsMessage",
        f"{MR_2014}/GetMeterReadingsMessage.xsd",
        sorted(EXPECTED_ROOTS["GetMeterReadingsMessage"]),
        PROFILE_NS,
        _plain_request_id,
    ),
    (
        "GetMeterReadingsMessage",
        f"{MR_PUBLIC}/xsd/GetMeterReadingsMessage.xsd",
        sorted(EXPECTED_ROOTS["GetMeterReadingsMessage"]),
        PROFILE_NS,
        _plain_request_id,
    ),
    (
        "MeterReadingsMessage",
        f"{MR_PUBLIC}/xsd/MeterReadingsMessage.xsd",
        sorted(EXPECTED_ROOTS["MeterReadingsMessage"]),
        PROFILE_NS,
        _same,
    ),
]


@needs_reference
@pytest.mark.parametrize(
    ("ours", "reference", "roots", "stop", "waive"),
    STRUCTURE_CASES,
    ids=[f"{c[0]}-vs-{c[1].split('/')[-2]}" for c in STRUCTURE_CASES],
)
def test_every_root_has_the_reference_structure(
    ours: str, reference: str, roots: list[str], stop: tuple[str, ...], waive: Callable[[Any], Any]
) -> None:
    mine = xmlschema.XMLSchema10(str(schemas.xsd_path(ours)), allow="local")
    theirs = _compiled_reference(reference)
    for root in roots:
        assert rewrite(element_shape(mine, root, stop), waive) == element_shape(theirs, root, stop), root


@needs_reference
def test_the_waivers_are_real_differences() -> None:
    """Guard the waivers above: without them the shapes differ, so each one still means something."""
    mine = xmlschema.XMLSchema10(str(schemas.xsd_path("MeterReadings")), allow="local")
    theirs = _compiled_reference(f"{MR_2014}/MeterReadings.xsd")
    root = f"{{{ns.METER_READINGS}}}MeterReadings"
    assert element_shape(mine, root) != element_shape(theirs, root)
    mine = xmlschema.XMLSchema10(str(schemas.xsd_path("GetMeterReadingsMessage")), allow="local")
    theirs = _compiled_reference(f"{MR_2014}/GetMeterReadingsMessage.xsd")
    assert element_shape(mine, GMM + "GetMeterReadings", PROFILE_NS) != element_shape(
        theirs, GMM + "GetMeterReadings", PROFILE_NS
    )


# ------------------------------------------------------------------------- valid instances

VALID_SAMPLES: list[tuple[str, Callable[[], bytes], str, str]] = [
    ("get-request", samples.get_request, "GetMeterReadingsMessage", "GetMeterReadingsMessage"),
    ("get-response", samples.meter_readings_response, "GetMeterReadingsMessage", "GetMeterReadingsMessage"),
    ("get-fault", samples.typed_fault, "GetMeterReadingsMessage", "GetMeterReadingsMessage"),
    (
        "mr-response",
        lambda: samples.meter_readings_response("mrm"),
        "MeterReadingsMessage",
        "MeterReadingsMessage",
    ),
    ("mr-created", samples.created_meter_readings, "MeterReadingsMessage", "MeterReadingsMessage"),
    ("mr-fault", lambda: samples.typed_fault("mrm"), "MeterReadingsMessage", "MeterReadingsMessage"),
    ("request-message", samples.request_message, "Message", "Message"),
    ("response-message", samples.response_message, "Message", "Message"),
    ("event-message", samples.event_message, "Message", "Message"),
    ("fault-message", samples.fault_message, "Message", "Message"),
    ("cancel-by-payload-id", samples.cancel_by_id, "Message", "Message"),
]


@pytest.mark.parametrize(
    ("build", "ours", "ref_kind"), [s[1:] for s in VALID_SAMPLES], ids=[s[0] for s in VALID_SAMPLES]
)
def test_sample_is_valid_against_ours_and_the_reference(
    build: Callable[[], bytes], ours: str, ref_kind: str
) -> None:
    assert_valid_both(build(), ours, ref_kind)


def test_profile_documents_alone_are_valid() -> None:
    declared = f"<wrap {samples.NSDECL}>"
    for fragment, name in (
        (samples.meter_readings(), "MeterReadings"),
        (samples.get_query(), "GetMeterReadings"),
    ):
        root = etree.fromstring(f"{declared}{fragment}</wrap>".encode())[0]
        assert_valid_both(root, name, name)


# ---------------------------------------------------------------------- invalid instances

INVALID_SAMPLES: list[tuple[str, Callable[[], bytes], str, str]] = [
    ("verb-fetch", lambda: samples.request_message(verb="fetch"), "Message", "Message"),
    (
        "verb-show",
        lambda: samples.get_request(verb="show"),
        "GetMeterReadingsMessage",
        "GetMeterReadingsMessage",
    ),
    ("missing-header", lambda: samples.request_message(with_header=False), "Message", "Message"),
    (
        "typed-missing-header",
        lambda: samples.get_request(header_xml=""),
        "GetMeterReadingsMessage",
        "GetMeterReadingsMessage",
    ),
    ("result-maybe", lambda: samples.response_message(result="MAYBE"), "Message", "Message"),
    (
        "typed-result-maybe",
        lambda: samples.meter_readings_response(result="MAYBE"),
        "GetMeterReadingsMessage",
        "GetMeterReadingsMessage",
    ),
    ("fault-result-maybe", lambda: samples.fault_message(result="MAYBE"), "Message", "Message"),
    # The profiles order a DateTimeInterval end, start: a start-first interval is not the same document.
    (
        "start-before-end",
        lambda: samples.get_request().replace(
            b"<gmr:end>2026-03-10T12:00:00Z</gmr:end><gmr:start>2026-03-10T00:00:00Z</gmr:start>",
            b"<gmr:start>2026-03-10T00:00:00Z</gmr:start><gmr:end>2026-03-10T12:00:00Z</gmr:end>",
        ),
        "GetMeterReadingsMessage",
        "GetMeterReadingsMessage",
    ),
    (
        "xpath-not-a-qname",
        lambda: samples.response_message().replace(
            b"<msg:code>0.0</msg:code>", b"<msg:code>0.0</msg:code><msg:xpath>/a/b[1]</msg:xpath>"
        ),
        "Message",
        "Message",
    ),
    (
        "id-kind-serial",
        lambda: samples.request_message().replace(b'kind="uuid"', b'kind="serial"'),
        "Message",
        "Message",
    ),
    (
        "payload-header-order",
        lambda: samples.created_meter_readings().replace(
            b"<msg:Verb>created</msg:Verb><msg:Noun>MeterReadings</msg:Noun>",
            b"<msg:Noun>MeterReadings</msg:Noun><msg:Verb>created</msg:Verb>",
        ),
        "MeterReadingsMessage",
        "MeterReadingsMessage",
    ),
    (
        "get-without-query",
        lambda: samples.get_request().replace(samples.get_query().encode(), b""),
        "GetMeterReadingsMessage",
        "GetMeterReadingsMessage",
    ),
]


@pytest.mark.parametrize(
    ("build", "ours", "ref_kind"), [s[1:] for s in INVALID_SAMPLES], ids=[s[0] for s in INVALID_SAMPLES]
)
def test_invalid_sample_is_rejected_by_ours_and_the_reference(
    build: Callable[[], bytes], ours: str, ref_kind: str
) -> None:
    document = build()
    assert schemas.validate(document, ours), "our schema accepted it"
    if reference_available():
        from tests.conformance.refschemas import REFERENCE_FILES

        assert set(reference_errors(document, ref_kind)) == set(REFERENCE_FILES[ref_kind])


@needs_reference
def test_missing_ref_is_rejected_by_ours_only() -> None:
    """Documents the deliberate tightening: every code reference we emit must name its code."""
    document = samples.meter_readings_response().replace(f' ref="{samples.RT_15MIN_KWH}"'.encode(), b"")
    assert any("ref" in error for error in schemas.validate(document, "GetMeterReadingsMessage"))
    assert reference_errors(document, "GetMeterReadingsMessage") == {}


def test_request_id_attributes_are_tolerated_by_ours() -> None:
    document = samples.get_request(request_id='<gmm:ID kind="transaction">job-17</gmm:ID>')
    assert schemas.validate(document, "GetMeterReadingsMessage") == []


# ---------------------------------------------------------------- wire compatibility via zeep


def _body_root(envelope: etree._Element) -> etree._Element:
    body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None
    return body[0]


def _zeep_get_request(client: zeep.Client) -> etree._Element:
    gmr = {
        "EndDevice": [{"mRID": samples.METER_UUID, "Names": [{"name": "SIM00000042"}]}],
        "Reading": [
            {
                "source": "System",
                "timePeriod": {"start": "2026-03-10T00:00:00Z", "end": "2026-03-10T12:00:00Z"},
            }
        ],
        "ReadingType": [{"mRID": samples.RT_15MIN_KWH}],
    }
    envelope = client.create_message(
        client.service,
        "GetMeterReadings",
        Header={"Verb": "get", "Noun": "MeterReadings", "MessageID": "m-1", "CorrelationID": "c-1"},
        Request={"GetMeterReadings": gmr},
    )
    return _body_root(envelope)


@needs_reference
def test_a_client_of_the_public_wsdl_sends_requests_our_schema_accepts() -> None:
    public = zeep.Client(
        str(REFERENCE_DIR / MR_PUBLIC / "GetMeterReadings.wsdl"), transport=OfflineProfilesTransport()
    )
    request = _zeep_get_request(public)
    assert request.tag == GMM + "GetMeterReadings"
    assert schemas.validate(request, "GetMeterReadingsMessage") == []


@needs_reference
def test_a_client_of_our_wsdl_sends_requests_the_reference_accepts() -> None:
    ours = zeep.Client(str(schemas.wsdl_path("GetMeterReadings")), transport=OfflineProfilesTransport())
    assert_valid_both(_zeep_get_request(ours), "GetMeterReadingsMessage", "GetMeterReadingsMessage")


@needs_reference
def test_a_client_of_the_public_wsdl_decodes_our_response() -> None:
    public = zeep.Client(
        str(REFERENCE_DIR / MR_PUBLIC / "GetMeterReadings.wsdl"), transport=OfflineProfilesTransport()
    )
    envelope = etree.fromstring(
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/>'
        b"<soapenv:Body>" + samples.meter_readings_response() + b"</soapenv:Body></soapenv:Envelope>"
    )
    answer = public.service._binding._operations["GetMeterReadings"].process_reply(envelope)
    assert answer.Reply.Result == "PARTIAL"
    unknown = answer.Reply.Error[1]
    assert (unknown.code, unknown.ID.kind, unknown.ID.objectType, unknown.ID._value_1) == (
        "2.4",
        "uuid",
        "EndDevice",
        samples.UNKNOWN_METER_UUID,
    )
    (reading,) = answer.Payload.MeterReadings.MeterReading
    (block,) = reading.IntervalBlocks
    assert [r.value for r in block.IntervalReadings] == ["231", "198", "205", "0"]
    assert block.ReadingType.ref == samples.RT_15MIN_KWH
    assert block.IntervalReadings[3].ReadingQualities[0].ReadingQualityType.ref == "2.5.259"

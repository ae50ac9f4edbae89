"""The EndDeviceControls / EndDeviceEvents / GetEndDeviceEvents profiles and their WSDLs: they load
strictly and offline, accept what the public reference schemas accept (minus vendor additions),
and are wire-compatible with the public 2011 services."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import xmlschema
import zeep
from lxml import etree
from xmlschema.extras.wsdl import Wsdl11Document

from simulator.cim import ns, schemas
from tests.conformance import enddevice_samples as s
from tests.conformance import test_profiles
from tests.conformance.refschemas import (
    REFERENCE_DIR,
    REFERENCE_FILES,
    assert_valid_both,
    reference_available,
    reference_errors,
)
from tests.conformance.test_profiles import OfflineProfilesTransport, zeep_operations
from tests.conformance.xsdshape import element_shape, rewrite

needs_reference = pytest.mark.skipif(not reference_available(), reason="../shared/reference is absent")

CLEAN = "61968-9-2013/cim4-enddevice"
EDC_PUBLIC = "61968-9-2013/connexo/enddevicecontrols"
EDE_PUBLIC = "61968-9-2013/connexo/enddeviceevents"
GEDE_PUBLIC = "61968-9-2013/connexo/getenddeviceevents"

EDC_MSG_2017 = "http://iec.ch/TC57/2017/EndDeviceControlsMessage"
EDE_MSG_2017 = "http://iec.ch/TC57/2017/EndDeviceEventsMessage"

EDCM = f"{{{s.EDC_MSG}}}"
EDEM = f"{{{s.EDE_MSG}}}"
GEDM = f"{{{s.GED_MSG}}}"
PAST = ("Created", "Changed", "Canceled", "Closed", "Deleted")
PRESENT = ("Create", "Change", "Cancel", "Close", "Delete")


def _wrapper_roots(prefix: str, noun: str) -> set[str]:
    return {prefix + f"{v}{noun}" for v in PAST + PRESENT} | {
        prefix + f"{noun}ResponseMessage",
        prefix + f"{noun}FaultMessage",
    }


EXPECTED_ROOTS: dict[str, set[str]] = {
    "EndDeviceControls": {f"{{{s.EDC}}}EndDeviceControls"},
    "EndDeviceEvents": {f"{{{s.EDE}}}EndDeviceEvents"},
    "GetEndDeviceEvents": {f"{{{s.GED}}}GetEndDeviceEvents"},
    "EndDeviceControlsMessage": _wrapper_roots(EDCM, "EndDeviceControls"),
    "EndDeviceEventsMessage": _wrapper_roots(EDEM, "EndDeviceEvents"),
    "GetEndDeviceEventsMessage": {
        GEDM + "GetEndDeviceEvents",
        GEDM + "EndDeviceEventsResponseMessage",
        GEDM + "EndDeviceEventsFaultMessage",
    },
}


def _operations(prefix: str, noun: str, verbs: tuple[str, ...]) -> dict[str, tuple[str, str, str, str]]:
    return {
        f"{v}{noun}": (
            f"http://iec.ch/TC57/2011/{noun}/{v}{noun}",
            prefix + f"{v}{noun}",
            prefix + f"{noun}ResponseMessage",
            prefix + f"{noun}FaultMessage",
        )
        for v in verbs
    }


# service -> {operation: (soapAction, input element, output element, fault element)}
EXPECTED_OPERATIONS: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "ExecuteEndDeviceControls": _operations(EDCM, "EndDeviceControls", PRESENT),
    "ReplyEndDeviceControls": _operations(EDCM, "EndDeviceControls", PAST),
    "SendEndDeviceEvents": _operations(EDEM, "EndDeviceEvents", PAST),
    "ReceiveEndDeviceEvents": _operations(EDEM, "EndDeviceEvents", PAST),
    "GetEndDeviceEvents": {
        "GetEndDeviceEvents": (
            "http://iec.ch/TC57/2011/GetEndDeviceEvents/GetEndDeviceEvents",
            GEDM + "GetEndDeviceEvents",
            GEDM + "EndDeviceEventsResponseMessage",
            GEDM + "EndDeviceEventsFaultMessage",
        ),
    },
}

PUBLIC_WSDLS = {
    "ExecuteEndDeviceControls": f"{EDC_PUBLIC}/ExecuteEndDeviceControls.wsdl",
    "ReplyEndDeviceControls": f"{EDC_PUBLIC}/ReplyEndDeviceControls.wsdl",
    "SendEndDeviceEvents": f"{EDE_PUBLIC}/SendEndDeviceEvents.wsdl",
    "ReceiveEndDeviceEvents": f"{EDE_PUBLIC}/ReceiveEndDeviceEvents.wsdl",
    "GetEndDeviceEvents": f"{GEDE_PUBLIC}/GetEndDeviceEvents.wsdl",
}


def test_the_profiles_ship_exactly_the_expected_files() -> None:
    assert schemas.xsd_names() == sorted(set(test_profiles.EXPECTED_ROOTS) | set(EXPECTED_ROOTS))
    assert schemas.wsdl_services() == sorted(set(test_profiles.EXPECTED_OPERATIONS) | set(EXPECTED_OPERATIONS))


def test_the_samples_use_the_codec_namespaces() -> None:
    expected = {
        "END_DEVICE_CONTROLS": s.EDC,
        "END_DEVICE_CONTROLS_MSG": s.EDC_MSG,
        "END_DEVICE_EVENTS": s.EDE,
        "END_DEVICE_EVENTS_MSG": s.EDE_MSG,
        "GET_END_DEVICE_EVENTS": s.GED,
        "GET_END_DEVICE_EVENTS_MSG": s.GED_MSG,
    }
    if not all(hasattr(ns, name) for name in expected):
        pytest.skip("simulator.cim.ns does not name the EndDevice namespaces yet")
    assert {name: getattr(ns, name) for name in expected} == expected
    assert ns.MSG == s.MSG


# ------------------------------------------------------------------------------------ loading


@pytest.mark.parametrize("name", sorted(EXPECTED_ROOTS))
def test_xsd_compiles_in_lxml_and_xmlschema_with_its_roots(name: str) -> None:
    assert isinstance(schemas.validator(name), etree.XMLSchema)
    compiled = xmlschema.XMLSchema10(str(schemas.xsd_path(name)), allow="local")
    roots = {q for q in compiled.maps.elements if q.startswith(f"{{{compiled.target_namespace}}}")}
    assert roots == EXPECTED_ROOTS[name]
    assert schemas.read_xsd(f"{name}.xsd") == schemas.xsd_path(name).read_bytes()


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
    assert (binding.soap_transport, binding.soap_style) == ("http://schemas.xmlsoap.org/soap/http", "document")
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
    served = etree.fromstring(schemas.read_wsdl(service, "http://10.0.0.5:8443"))
    assert served.xpath("//*[local-name()='address']/@location") == [f"http://10.0.0.5:8443/{service}"]


@needs_reference
@pytest.mark.parametrize("service", sorted(PUBLIC_WSDLS))
def test_wsdl_has_the_same_wire_contract_as_the_public_one(service: str) -> None:
    mine = zeep.Client(str(schemas.wsdl_path(service)), transport=OfflineProfilesTransport())
    theirs = zeep.Client(str(REFERENCE_DIR / PUBLIC_WSDLS[service]), transport=OfflineProfilesTransport())
    assert zeep_operations(mine) == zeep_operations(theirs)


@needs_reference
@pytest.mark.parametrize(
    ("service", "public", "year_2017"),
    [
        ("ExecuteEndDeviceControls", f"{CLEAN}/ExecuteEndDeviceControls.wsdl", EDC_MSG_2017),
        ("ReceiveEndDeviceEvents", f"{CLEAN}/ReceiveEndDeviceEvents.wsdl", EDE_MSG_2017),
    ],
)
def test_the_2017_copies_differ_only_in_the_year(service: str, public: str, year_2017: str) -> None:
    """The 2017 services carry a subset of our operations; with 2011 put back they are the same."""
    mine = zeep_operations(zeep.Client(str(schemas.wsdl_path(service)), transport=OfflineProfilesTransport()))
    theirs = zeep_operations(zeep.Client(str(REFERENCE_DIR / public), transport=OfflineProfilesTransport()))
    assert theirs
    for name, contract in theirs.items():
        assert year_2017 in contract[1]
        assert tuple(item.replace("/TC57/2017/", "/TC57/2011/") for item in contract) == mine[name]


# ------------------------------------------- structure: ours accepts what the references accept

VENDOR_ADDITIONS = {"serialNumber", "scheduleStrategy", "EndDeviceControlAttribute"}
PROFILE_NS = (s.MSG, s.EDC, s.EDE, s.GED)  # wrappers: envelope and payloads are compared on their own


def _is_particle_group(node: Any) -> bool:
    return isinstance(node, tuple) and len(node) == 4 and node[0] in {"sequence", "choice", "all"}


def _drop_elements(node: Any, keep: Callable[[Any], bool]) -> Any:
    if _is_particle_group(node):
        return (*node[:3], tuple(child for child in node[3] if keep(child)))
    return node


def _local(node: Any) -> str | None:
    if isinstance(node, tuple) and node and node[0] == "element":
        return str(node[1]).rsplit("}", 1)[-1]
    return None


def without_vendor_additions(node: Any) -> Any:
    """Reference side: drop the optional elements one vendor added to the IEC profiles."""
    return _drop_elements(node, lambda child: _local(child) not in VENDOR_ADDITIONS)


def ref_optional(node: Any) -> Any:
    """Ours: waive the deliberate tightening that every emitted event names its code (ref required)."""
    if isinstance(node, tuple) and len(node) == 3 and node[:2] == ("ref", "required"):
        return ("ref", "optional", node[2])
    return node


def bare_names(node: Any) -> Any:
    """Ours: waive the deliberate widening that a GetEndDeviceEvents Name may carry its NameType."""
    return _drop_elements(node, lambda child: not (_local(child) == "NameType" and s.GED in str(child[1])))


def plain_request_id(node: Any) -> Any:
    """Ours: waive the deliberate widening that the Get wrapper's Request/ID takes the ID attributes."""
    if isinstance(node, tuple) and len(node) == 5 and node[:2] == ("element", GEDM + "ID"):
        return (*node[:4], ("simple", "string", None))
    return node


def no_event_reply(node: Any) -> Any:
    """Ours: the 2011 public EndDeviceEvents wrapper lets past-tense messages carry a Reply; the 2017 one does not.

    Only the optional Reply goes: responses and faults keep their required one."""
    return _drop_elements(
        node, lambda child: not (_local(child) == "Reply" and s.EDE_MSG in str(child[1]) and child[2] == 0)
    )


def year_2011(node: Any) -> Any:
    """Reference side: read the 2017 wrapper namespaces as 2011."""
    if isinstance(node, str):
        return node.replace(EDC_MSG_2017, s.EDC_MSG).replace(EDE_MSG_2017, s.EDE_MSG)
    return node


Waivers = tuple[Callable[[Any], Any], ...]

# (our xsd, reference file, roots, stop namespaces, waivers on ours, waivers on the reference)
STRUCTURE_CASES: list[tuple[str, str, list[str], tuple[str, ...], Waivers, Waivers]] = [
    (
        "EndDeviceControls",
        f"{CLEAN}/xsd/EndDeviceControls.xsd",
        sorted(EXPECTED_ROOTS["EndDeviceControls"]),
        (),
        (),
        (),
    ),
    (
        "EndDeviceControls",
        f"{EDC_PUBLIC}/xsd/EndDeviceControls.xsd",
        sorted(EXPECTED_ROOTS["EndDeviceControls"]),
        (),
        (),
        (without_vendor_additions,),
    ),
    (
        "EndDeviceEvents",
        f"{CLEAN}/xsd/EndDeviceEvents.xsd",
        sorted(EXPECTED_ROOTS["EndDeviceEvents"]),
        (),
        (ref_optional,),
        (),
    ),
    (
        "EndDeviceEvents",
        f"{EDE_PUBLIC}/xsd/EndDeviceEvents.xsd",
        sorted(EXPECTED_ROOTS["EndDeviceEvents"]),
        (),
        (ref_optional,),
        (without_vendor_additions,),
    ),
    (
        "GetEndDeviceEvents",
        f"{GEDE_PUBLIC}/xsd/GetEndDeviceEvents.xsd",
        sorted(EXPECTED_ROOTS["GetEndDeviceEvents"]),
        (),
        (bare_names,),
        (without_vendor_additions,),
    ),
    (
        "EndDeviceControlsMessage",
        f"{EDC_PUBLIC}/xsd/EndDeviceControlsMessage.xsd",
        sorted(EXPECTED_ROOTS["EndDeviceControlsMessage"]),
        PROFILE_NS,
        (),
        (),
    ),
    (
        "EndDeviceControlsMessage",
        f"{CLEAN}/xsd/EndDeviceControlsMessage.xsd",
        sorted(EXPECTED_ROOTS["EndDeviceControlsMessage"]),
        PROFILE_NS,
        (),
        (year_2011,),
    ),
    (
        "EndDeviceEventsMessage",
        f"{EDE_PUBLIC}/xsd/EndDeviceEventsMessage.xsd",
        sorted(EXPECTED_ROOTS["EndDeviceEventsMessage"]),
        PROFILE_NS,
        (),
        (),
    ),
    (
        "EndDeviceEventsMessage",
        f"{CLEAN}/xsd/EndDeviceEventsMessage.xsd",
        sorted(EXPECTED_ROOTS["EndDeviceEventsMessage"]),
        PROFILE_NS,
        (no_event_reply,),
        (year_2011,),
    ),
    (
        "GetEndDeviceEventsMessage",
        f"{GEDE_PUBLIC}/xsd/GetEndDeviceEventsMessage.xsd",
        sorted(EXPECTED_ROOTS["GetEndDeviceEventsMessage"]),
        PROFILE_NS,
        (plain_request_id,),
        (),
    ),
]
CASE_IDS = [f"{c[0]}-vs-{c[1].split('/')[1]}" for c in STRUCTURE_CASES]
# year_2011 is left out of the guard: without it the 2017 roots are not even found.
WAIVED = [
    (case, case_id)
    for case, case_id in zip(STRUCTURE_CASES, CASE_IDS, strict=True)
    if case[4] or [w for w in case[5] if w is not year_2011]
]


def _shapes(
    ours: str, reference: str, root: str, stop: tuple[str, ...], mine_waivers: Waivers, ref_waivers: Waivers
) -> tuple[Any, Any]:
    mine = _compiled(str(schemas.xsd_path(ours)))
    theirs = _compiled(str(REFERENCE_DIR / reference))
    their_root = root
    if year_2011 in ref_waivers:
        their_root = root.replace(s.EDC_MSG, EDC_MSG_2017).replace(s.EDE_MSG, EDE_MSG_2017)
    mine_shape = element_shape(mine, root, stop)
    their_shape = element_shape(theirs, their_root, stop)
    for waive in mine_waivers:
        mine_shape = rewrite(mine_shape, waive)
    for waive in ref_waivers:
        their_shape = rewrite(their_shape, waive)
    return mine_shape, their_shape


_SCHEMA_CACHE: dict[str, xmlschema.XMLSchemaBase] = {}


def _compiled(path: str) -> xmlschema.XMLSchemaBase:
    if path not in _SCHEMA_CACHE:
        _SCHEMA_CACHE[path] = xmlschema.XMLSchema10(path, allow="local")
    return _SCHEMA_CACHE[path]


@needs_reference
@pytest.mark.parametrize(("ours", "reference", "roots", "stop", "mine_w", "ref_w"), STRUCTURE_CASES, ids=CASE_IDS)
def test_every_root_has_the_reference_structure(
    ours: str, reference: str, roots: list[str], stop: tuple[str, ...], mine_w: Waivers, ref_w: Waivers
) -> None:
    for root in roots:
        mine, theirs = _shapes(ours, reference, root, stop, mine_w, ref_w)
        assert mine == theirs, root


@needs_reference
@pytest.mark.parametrize(
    ("ours", "reference", "roots", "stop", "mine_w", "ref_w"), [w[0] for w in WAIVED], ids=[w[1] for w in WAIVED]
)
def test_each_waiver_is_a_real_difference(
    ours: str, reference: str, roots: list[str], stop: tuple[str, ...], mine_w: Waivers, ref_w: Waivers
) -> None:
    """Leaving out any one waiver makes some root differ, so none of them hides more than it says."""
    waivers = [("ours", w) for w in mine_w] + [("ref", w) for w in ref_w if w is not year_2011]
    for side, left_out in waivers:
        mine_kept = tuple(w for w in mine_w if not (side == "ours" and w is left_out))
        ref_kept = tuple(w for w in ref_w if not (side == "ref" and w is left_out))
        differing = [
            r for r in roots if len(set(map(repr, _shapes(ours, reference, r, stop, mine_kept, ref_kept)))) == 2
        ]
        assert differing, f"{left_out.__name__} changes nothing"


def _interval_children(path: str) -> list[list[str]]:
    tree = etree.parse(path, etree.XMLParser(no_network=True, resolve_entities=False))
    xs = {"xs": "http://www.w3.org/2001/XMLSchema"}
    return [
        [str(name) for name in interval.xpath(".//xs:element/@name", namespaces=xs)]
        for interval in tree.xpath("//xs:complexType[@name='DateTimeInterval']", namespaces=xs)
    ]


def test_every_date_time_interval_is_end_then_start() -> None:
    ours = [str(schemas.xsd_path(n)) for n in ("EndDeviceControls", "GetEndDeviceEvents")]
    found = [children for path in ours for children in _interval_children(path)]
    assert found == [["end", "start"]] * 2
    if reference_available():
        theirs = [
            REFERENCE_DIR / f for f in REFERENCE_FILES["EndDeviceControls"] + REFERENCE_FILES["GetEndDeviceEvents"]
        ]
        assert [c for path in theirs for c in _interval_children(str(path))] == [["end", "start"]] * 3


# ------------------------------------------------------------------------- valid instances

VALID_SAMPLES: list[tuple[str, Callable[[], bytes], str, str]] = [
    (
        "create-scheduled-disconnect",
        s.create_end_device_controls,
        "EndDeviceControlsMessage",
        "EndDeviceControlsMessage",
    ),
    ("cancel-by-request-id", s.cancel_by_request_id, "EndDeviceControlsMessage", "EndDeviceControlsMessage"),
    ("cancel-by-tracking-id", s.cancel_by_payload, "EndDeviceControlsMessage", "EndDeviceControlsMessage"),
    ("controls-accepted", s.controls_response, "EndDeviceControlsMessage", "EndDeviceControlsMessage"),
    ("created-controls", s.created_end_device_controls, "EndDeviceControlsMessage", "EndDeviceControlsMessage"),
    ("controls-fault", s.controls_fault, "EndDeviceControlsMessage", "EndDeviceControlsMessage"),
    ("cancel-generic-payload-id", s.cancel_by_payload_id_generic, "Message", "Message"),
    ("created-events", s.created_end_device_events, "EndDeviceEventsMessage", "EndDeviceEventsMessage"),
    (
        "created-events-with-reply",
        lambda: s.created_end_device_events(s.PARTIAL_REPLY),
        "EndDeviceEventsMessage",
        "EndDeviceEventsMessage",
    ),
    ("events-ack", s.events_ack, "EndDeviceEventsMessage", "EndDeviceEventsMessage"),
    ("get-events", s.get_end_device_events, "GetEndDeviceEventsMessage", "GetEndDeviceEventsMessage"),
    (
        "get-events-without-names",
        lambda: s.get_end_device_events(query=s.events_query(meter_names=f"<ged:mRID>{s.METER_B}</ged:mRID>")),
        "GetEndDeviceEventsMessage",
        "GetEndDeviceEventsMessage",
    ),
    ("get-events-response", s.get_events_response, "GetEndDeviceEventsMessage", "GetEndDeviceEventsMessage"),
    ("get-events-fault", s.get_events_fault, "GetEndDeviceEventsMessage", "GetEndDeviceEventsMessage"),
]


@pytest.mark.parametrize(
    ("build", "ours", "ref_kind"), [c[1:] for c in VALID_SAMPLES], ids=[c[0] for c in VALID_SAMPLES]
)
def test_sample_is_valid_against_ours_and_the_reference(build: Callable[[], bytes], ours: str, ref_kind: str) -> None:
    assert_valid_both(build(), ours, ref_kind)


def test_profile_documents_alone_are_valid() -> None:
    for fragment, name in (
        (s.end_device_controls(), "EndDeviceControls"),
        (s.end_device_events(), "EndDeviceEvents"),
        (s.events_query(), "GetEndDeviceEvents"),
    ):
        root = etree.fromstring(f"<wrap {s.NSDECL}>{fragment}</wrap>".encode())[0]
        assert_valid_both(root, name, name)


@needs_reference
@pytest.mark.parametrize(
    ("document", "kind"),
    [
        (lambda: s.create_end_device_controls(wrapper=EDC_MSG_2017), "EndDeviceControlsMessage2017"),
        (lambda: s.controls_response(wrapper=EDC_MSG_2017), "EndDeviceControlsMessage2017"),
        (lambda: s.created_end_device_events(wrapper=EDE_MSG_2017), "EndDeviceEventsMessage2017"),
    ],
    ids=["create", "response", "created-events"],
)
def test_the_same_documents_in_the_2017_wrapper_namespace_are_valid_there(
    document: Callable[[], bytes], kind: str
) -> None:
    assert reference_errors(document(), kind) == {}


# ---------------------------------------------------------------------- invalid instances

INVALID_SAMPLES: list[tuple[str, Callable[[], bytes], str, str]] = [
    (
        "control-without-type",
        lambda: s.create_end_device_controls(control=s.disconnect_control(control_type="")),
        "EndDeviceControlsMessage",
        "EndDeviceControlsMessage",
    ),
    (
        "control-interval-start-before-end",
        lambda: s.create_end_device_controls(control=s.disconnect_control(interval=s.START_THEN_END)),
        "EndDeviceControlsMessage",
        "EndDeviceControlsMessage",
    ),
    (
        "randomisation-sometimes",
        lambda: s.create_end_device_controls(control=s.disconnect_control(randomisation="sometimes")),
        "EndDeviceControlsMessage",
        "EndDeviceControlsMessage",
    ),
    (
        "verb-execute-misspelt",
        lambda: s.create_end_device_controls(verb="execut"),
        "EndDeviceControlsMessage",
        "EndDeviceControlsMessage",
    ),
    (
        "typed-missing-header",
        lambda: s.create_end_device_controls(header_xml=""),
        "EndDeviceControlsMessage",
        "EndDeviceControlsMessage",
    ),
    # Payload/ID belongs to the generic envelope only: a typed Payload always holds EndDeviceControls.
    ("typed-payload-id", s.cancel_by_payload_id_typed, "EndDeviceControlsMessage", "EndDeviceControlsMessage"),
    (
        "response-without-reply",
        lambda: s.controls_response(with_reply=False),
        "EndDeviceControlsMessage",
        "EndDeviceControlsMessage",
    ),
    (
        "response-result-maybe",
        lambda: s.controls_response(result="MAYBE"),
        "EndDeviceControlsMessage",
        "EndDeviceControlsMessage",
    ),
    # No public EndDeviceControls wrapper lets a past-tense message carry a Reply.
    (
        "created-controls-with-reply",
        lambda: s.created_end_device_controls(reply="<edcm:Reply><msg:Result>OK</msg:Result></edcm:Reply>"),
        "EndDeviceControlsMessage",
        "EndDeviceControlsMessage",
    ),
    (
        "event-without-created",
        lambda: s.created_end_device_events(first=s.disconnected_event(created="")),
        "EndDeviceEventsMessage",
        "EndDeviceEventsMessage",
    ),
    (
        "event-without-type",
        lambda: s.created_end_device_events(first=s.disconnected_event(event_type="")),
        "EndDeviceEventsMessage",
        "EndDeviceEventsMessage",
    ),
    # The meter of an event is its Assets: there is no Meter element in EndDeviceEvents.
    (
        "event-with-meter-element",
        lambda: s.created_end_device_events(
            first=s.disconnected_event(device=f"<ede:Meter><ede:mRID>{s.METER_A}</ede:mRID></ede:Meter>")
        ),
        "EndDeviceEventsMessage",
        "EndDeviceEventsMessage",
    ),
    (
        "event-reply-after-payload",
        lambda: (
            s.created_end_device_events()
            .replace(b"</edem:CreatedEndDeviceEvents>", b"")
            .replace(b"</edem:Payload>", b"</edem:Payload>" + s.PARTIAL_REPLY.encode())
            + b"</edem:CreatedEndDeviceEvents>"
        ),
        "EndDeviceEventsMessage",
        "EndDeviceEventsMessage",
    ),
    (
        "get-without-query",
        lambda: s.get_end_device_events(query=""),
        "GetEndDeviceEventsMessage",
        "GetEndDeviceEventsMessage",
    ),
    (
        "get-schedule-start-before-end",
        lambda: s.get_end_device_events(
            query=s.events_query(
                schedule="<ged:TimeSchedule><ged:scheduleInterval><ged:start>2026-03-10T00:00:00Z</ged:start>"
                "<ged:end>2026-03-11T00:00:00Z</ged:end></ged:scheduleInterval></ged:TimeSchedule>"
            )
        ),
        "GetEndDeviceEventsMessage",
        "GetEndDeviceEventsMessage",
    ),
    (
        "get-schedule-without-interval",
        lambda: s.get_end_device_events(query=s.events_query(schedule="<ged:TimeSchedule/>")),
        "GetEndDeviceEventsMessage",
        "GetEndDeviceEventsMessage",
    ),
    (
        "get-meter-before-event-type",
        lambda: s.get_end_device_events(
            query=s.events_query()
            .replace(f"<ged:EndDeviceEventType><ged:mRID>{s.DISCONNECTED}</ged:mRID></ged:EndDeviceEventType>", "")
            .replace(
                "</ged:GetEndDeviceEvents>",
                f"<ged:EndDeviceEventType><ged:mRID>{s.DISCONNECTED}</ged:mRID></ged:EndDeviceEventType>"
                "</ged:GetEndDeviceEvents>",
            )
        ),
        "GetEndDeviceEventsMessage",
        "GetEndDeviceEventsMessage",
    ),
    (
        "get-verb-show",
        lambda: s.get_end_device_events(verb="show"),
        "GetEndDeviceEventsMessage",
        "GetEndDeviceEventsMessage",
    ),
]


@pytest.mark.parametrize(
    ("build", "ours", "ref_kind"), [c[1:] for c in INVALID_SAMPLES], ids=[c[0] for c in INVALID_SAMPLES]
)
def test_invalid_sample_is_rejected_by_ours_and_the_reference(
    build: Callable[[], bytes], ours: str, ref_kind: str
) -> None:
    document = build()
    etree.fromstring(document)  # well-formed: the schema, not the parser, must reject it
    assert schemas.validate(document, ours), "our schema accepted it"
    if reference_available():
        assert set(reference_errors(document, ref_kind)) == set(REFERENCE_FILES[ref_kind])


# -------------------------------------------------------------- deliberate differences, pinned


@needs_reference
def test_event_without_ref_is_rejected_by_ours_only() -> None:
    """Every event we emit names its code; the published profile leaves ref optional."""
    document = s.created_end_device_events(first=s.disconnected_event(event_type="<ede:EndDeviceEventType/>"))
    assert any("ref" in error for error in schemas.validate(document, "EndDeviceEventsMessage"))
    assert reference_errors(document, "EndDeviceEventsMessage") == {}


def test_control_without_ref_is_accepted_so_it_can_get_a_per_control_error() -> None:
    document = s.create_end_device_controls(control=s.disconnect_control(control_type="<edc:EndDeviceControlType/>"))
    assert_valid_both(document, "EndDeviceControlsMessage", "EndDeviceControlsMessage")
    cancel = s.cancel_by_payload(control_type="<edc:EndDeviceControlType/>")
    assert_valid_both(cancel, "EndDeviceControlsMessage", "EndDeviceControlsMessage")


@needs_reference
def test_get_tolerances_are_ours_only() -> None:
    """Name/NameType in the query and ID attributes in Request are accepted by us, not by the public copy."""
    typed_names = s.events_query(
        meter_names="<ged:Names><ged:name>SIM00000042</ged:name>"
        "<ged:NameType><ged:name>MeterUniqueID</ged:name></ged:NameType></ged:Names>"
    )
    for document in (
        s.get_end_device_events(query=typed_names),
        s.get_end_device_events(request_id='<gedm:ID kind="transaction">events-17</gedm:ID>'),
    ):
        assert schemas.validate(document, "GetEndDeviceEventsMessage") == []
        assert set(reference_errors(document, "GetEndDeviceEventsMessage")) == set(
            REFERENCE_FILES["GetEndDeviceEventsMessage"]
        )


@needs_reference
def test_only_the_2011_events_wrapper_allows_a_reply_in_past_tense_messages() -> None:
    with_reply = s.created_end_device_events(s.PARTIAL_REPLY, wrapper=EDE_MSG_2017)
    assert reference_errors(with_reply, "EndDeviceEventsMessage2017")
    assert_valid_both(s.created_end_device_events(s.PARTIAL_REPLY), "EndDeviceEventsMessage", "EndDeviceEventsMessage")


# ---------------------------------------------------------------- wire compatibility via zeep


def _body_root(envelope: etree._Element) -> etree._Element:
    body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None
    return body[0]


def _envelope(body: bytes) -> etree._Element:
    return etree.fromstring(
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/>'
        b"<soapenv:Body>" + body + b"</soapenv:Body></soapenv:Envelope>"
    )


def _client(wsdl: str) -> zeep.Client:
    return zeep.Client(wsdl, transport=OfflineProfilesTransport())


def _zeep_create_controls(client: zeep.Client) -> etree._Element:
    control = {
        "mRID": s.CONTROL_MRID,
        "issuerTrackingID": s.TRACKING_ID,
        "EndDeviceControlType": {"ref": s.DISCONNECT},
        "EndDevices": [{"mRID": s.METER_A}, {"mRID": s.METER_B}],
        "primaryDeviceTiming": {"interval": {"start": s.SCHEDULED_START}},
    }
    envelope = client.create_message(
        client.service,
        "CreateEndDeviceControls",
        Header={"Verb": "create", "Noun": "EndDeviceControls", "MessageID": "m-1", "CorrelationID": "c-1"},
        Payload={"EndDeviceControls": {"EndDeviceControl": [control]}},
    )
    return _body_root(envelope)


def _zeep_get_events(client: zeep.Client) -> etree._Element:
    query = {
        "EndDeviceEventType": [{"mRID": s.DISCONNECTED}],
        "Meter": [{"mRID": s.METER_A}, {"Names": [{"name": "SIM00000042"}]}],
        "TimeSchedule": [{"scheduleInterval": {"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z"}}],
    }
    envelope = client.create_message(
        client.service,
        "GetEndDeviceEvents",
        Header={"Verb": "get", "Noun": "EndDeviceEvents", "MessageID": "m-2"},
        Request={"GetEndDeviceEvents": query},
    )
    return _body_root(envelope)


@needs_reference
def test_clients_of_the_public_wsdls_send_requests_our_schemas_accept() -> None:
    create = _zeep_create_controls(_client(str(REFERENCE_DIR / PUBLIC_WSDLS["ExecuteEndDeviceControls"])))
    assert create.tag == EDCM + "CreateEndDeviceControls"
    assert schemas.validate(create, "EndDeviceControlsMessage") == []
    get = _zeep_get_events(_client(str(REFERENCE_DIR / PUBLIC_WSDLS["GetEndDeviceEvents"])))
    assert get.tag == GEDM + "GetEndDeviceEvents"
    assert schemas.validate(get, "GetEndDeviceEventsMessage") == []


def test_clients_of_our_wsdls_send_requests_the_references_accept() -> None:
    create = _zeep_create_controls(_client(str(schemas.wsdl_path("ExecuteEndDeviceControls"))))
    assert_valid_both(create, "EndDeviceControlsMessage", "EndDeviceControlsMessage")
    get = _zeep_get_events(_client(str(schemas.wsdl_path("GetEndDeviceEvents"))))
    assert_valid_both(get, "GetEndDeviceEventsMessage", "GetEndDeviceEventsMessage")
    # zeep writes the interval in schema order whatever order the dict gives: end, then start.
    interval = next(get.iter(f"{{{s.GED}}}scheduleInterval"))
    assert [etree.QName(child).localname for child in interval] == ["end", "start"]


@needs_reference
def test_a_client_of_the_public_execute_wsdl_decodes_our_acceptance() -> None:
    public = _client(str(REFERENCE_DIR / PUBLIC_WSDLS["ExecuteEndDeviceControls"]))
    answer = public.service._binding._operations["CreateEndDeviceControls"].process_reply(
        _envelope(s.controls_response())
    )
    assert answer.Reply.Result == "OK"
    (transaction,) = answer.Reply.ID
    assert (transaction.kind, transaction.objectType, transaction._value_1) == (
        "transaction",
        "EndDeviceControl",
        s.TRANSACTION_ID,
    )


@needs_reference
def test_a_client_of_the_public_get_wsdl_decodes_our_events() -> None:
    public = _client(str(REFERENCE_DIR / PUBLIC_WSDLS["GetEndDeviceEvents"]))
    answer = public.service._binding._operations["GetEndDeviceEvents"].process_reply(_envelope(s.get_events_response()))
    events = answer.Payload.EndDeviceEvents.EndDeviceEvent
    assert [(e.EndDeviceEventType.ref, e.Assets.mRID) for e in events] == [
        (s.DISCONNECTED, s.METER_A),
        (s.DISCONNECT_FAILED, s.METER_B),
    ]


@needs_reference
def test_a_public_event_receiver_decodes_our_created_events() -> None:
    """What an MDMS built from the public ReceiveEndDeviceEvents WSDL reads out of our push."""
    public = _client(str(REFERENCE_DIR / PUBLIC_WSDLS["ReceiveEndDeviceEvents"]))
    pushed = public.service._binding._operations["CreatedEndDeviceEvents"].input.deserialize(
        _envelope(s.created_end_device_events(s.PARTIAL_REPLY))
    )
    assert pushed.Header.Verb == "created"
    assert pushed.Reply.Result == "PARTIAL"
    first, second = pushed.Payload.EndDeviceEvents.EndDeviceEvent
    assert (first.issuerTrackingID, first.createdDateTime.isoformat()) == (s.TRACKING_ID, "2026-03-10T14:00:07+00:00")
    assert [(d.name, d.value) for d in first.EndDeviceEventDetails] == [
        ("relayState", "disconnected"),
        ("controlMRID", s.CONTROL_MRID),
    ]
    assert second.Assets.Names[0].name == "SIM00000042"

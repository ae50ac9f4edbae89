"""Whatever bytes arrive, reading them ends in a request or a CimError, and the answer is well-formed."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from simulator.cim import schemas, soap
from simulator.cim.envelope import OutHeader, Reply, build_response, read_request, validate_request
from simulator.cim.getmeterreadings import query_from_message
from simulator.errors import CimError
from tests.conformance import samples

VALID = [
    soap.wrap(samples.get_request(), "1.1"),
    soap.wrap(samples.request_message(), "1.2"),
    samples.request_message(),
    samples.cancel_by_id(),
    samples.event_message(),
]


def _serve(data: bytes) -> bytes:
    """The codec part of serving a request: the answer is a reply when reading worked, else a fault."""
    version: soap.SoapVersion = "1.1"
    try:
        version, root = soap.unwrap(data, "text/xml")
        msg = read_request(root)
        if msg.header.verb == "get" and msg.header.noun == "MeterReadings":
            query_from_message(msg)
        if msg.schema_name in schemas.xsd_names():
            validate_request(root, msg.schema_name)
        body = build_response(msg.response_root, OutHeader("reply", msg.header.noun), Reply("OK"))
        return soap.wrap(body, version)
    except CimError as err:
        return soap.fault(err, version)


def _check(data: bytes) -> None:
    answer = _serve(data)  # anything but CimError propagates and fails the test
    etree.fromstring(answer)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_byte_mutations_of_valid_requests(valid: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(valid)))
    end = data.draw(st.integers(start, min(len(valid), start + 40)))
    insert = data.draw(
        st.one_of(st.binary(max_size=12), st.sampled_from([b"<", b">", b"&", b"/", b'"', b"<!DOCTYPE a>"]))
    )
    _check(valid[:start] + insert + valid[end:])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.data())
def test_tree_mutations_of_valid_requests(valid: bytes, data: st.DataObject) -> None:
    """Structural damage reaches the deeper code paths that byte noise rarely gets past the parser."""
    root = etree.fromstring(valid)
    for _ in range(data.draw(st.integers(1, 3))):
        elements = list(root.iter(etree.Element))
        el = elements[data.draw(st.integers(0, len(elements) - 1))]
        action = data.draw(
            st.sampled_from(["drop", "text", "rename", "renamespace", "duplicate", "attr", "comment"])
        )
        parent = el.getparent()
        if action == "drop" and parent is not None:
            parent.remove(el)
        elif action == "text":
            el.text = data.draw(
                st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)
            )
        elif action == "rename":
            local = data.draw(
                st.sampled_from(["Verb", "Noun", "Header", "Request", "Payload", "GetMeterReadings", "X"])
            )
            el.tag = etree.QName(etree.QName(el).namespace, local).text
        elif action == "renamespace":
            ns = data.draw(
                st.sampled_from(
                    [
                        "urn:x",
                        "http://iec.ch/TC57/2011/schema/message",
                        "http://iec.ch/TC57/2017/GetMeterReadingsMessage",
                        "http://iec.ch/TC57/2011/GetMeterReadings#",
                    ]
                )
            )
            el.tag = f"{{{ns}}}{etree.QName(el).localname}"
        elif action == "duplicate" and parent is not None:
            parent.append(etree.fromstring(etree.tostring(el)))
        elif action == "attr":
            el.set(
                data.draw(st.sampled_from(["ref", "kind", "objectType"])),
                data.draw(st.text(max_size=5).filter(str.isprintable)),
            )
        elif action == "comment":
            el.insert(0, etree.Comment("c"))
    _check(etree.tostring(root))

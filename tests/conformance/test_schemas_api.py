"""simulator.cim.schemas: what the HTTP layer and the codec rely on."""

from __future__ import annotations

import threading
from urllib.parse import urljoin
from urllib.request import url2pathname

import pytest
from lxml import etree

from simulator.cim import schemas
from tests.conformance import samples


def test_read_wsdl_points_every_address_at_the_server() -> None:
    text = schemas.read_wsdl("ReplyMeterReadings", "http://127.0.0.1:18081/")
    assert schemas.PLACEHOLDER_BASE_URL.encode() not in text
    root = etree.fromstring(text)
    locations = root.xpath(
        "//soap:address/@location", namespaces={"soap": "http://schemas.xmlsoap.org/wsdl/soap/"}
    )
    assert locations == ["http://127.0.0.1:18081/ReplyMeterReadings"]


def test_read_wsdl_escapes_the_base_url() -> None:
    text = schemas.read_wsdl("Message", 'http://h/x?a=1&b="2"')
    location = etree.fromstring(text).xpath("//*[local-name()='address']/@location")
    assert location == ['http://h/x?a=1&b="2"/Message']


@pytest.mark.parametrize("service", ["Nope", "../xsd/Message", "GetMeterReadings.wsdl", ""])
def test_read_wsdl_refuses_unknown_services(service: str) -> None:
    with pytest.raises(ValueError):
        schemas.read_wsdl(service, "http://h")


def test_read_xsd_serves_shipped_files() -> None:
    data = schemas.read_xsd("MeterReadingsMessage.xsd")
    assert data is not None
    assert etree.fromstring(data).get("targetNamespace") == "http://iec.ch/TC57/2011/MeterReadingsMessage"


@pytest.mark.parametrize(
    "name",
    [
        "../wsdl/Message.wsdl",
        "..%2FMessage.xsd",
        "/etc/passwd",
        "xsd/Message.xsd",
        "Message",
        "Missing.xsd",
        "..xsd",
        ".hidden.xsd",
        "Message.xsd/",
        "Message.XSD",
    ],
)
def test_read_xsd_refuses_anything_else(name: str) -> None:
    assert schemas.read_xsd(name) is None


def test_wsdl_imports_resolve_against_the_profiles_directory() -> None:
    for service in schemas.wsdl_services():
        tree = schemas.parse_wsdl(service)
        imports = tree.xpath(
            "//xs:import/@schemaLocation", namespaces={"xs": "http://www.w3.org/2001/XMLSchema"}
        )
        assert imports and all(location.startswith("xsd/") for location in imports)
        for location in imports:
            resolved = url2pathname(urljoin(str(tree.docinfo.URL), location).removeprefix("file://"))
            assert resolved == str(schemas.xsd_path(location.removeprefix("xsd/")))


def test_profile_uri_mapper_only_rewrites_the_wsdl_sibling_xsd_dir() -> None:
    wrong = schemas.profiles_dir() / "wsdl" / "xsd" / "Message.xsd"
    assert schemas.profile_uri_mapper(str(wrong)) == str(schemas.xsd_path("Message"))
    assert schemas.profile_uri_mapper(wrong.as_uri()) == str(schemas.xsd_path("Message"))
    assert (
        schemas.profile_uri_mapper("http://example.org/xsd/Message.xsd")
        == "http://example.org/xsd/Message.xsd"
    )


def test_validator_is_compiled_once_and_accepts_file_names() -> None:
    assert schemas.validator("MeterReadingsMessage") is schemas.validator("MeterReadingsMessage.xsd")
    with pytest.raises(ValueError, match=r"known: .*GetMeterReadings"):
        schemas.validator("MeterReadSchedule")


def test_validate_reports_errors_with_line_and_path() -> None:
    bad = samples.response_message(result="MAYBE")
    (error,) = schemas.validate(bad, "Message")
    assert error.startswith("line 1 at /msg:ResponseMessage/msg:Reply/msg:Result: ")
    assert "'MAYBE' is not an element of the set" in error


def test_validate_accepts_elements_trees_and_bytes_alike() -> None:
    data = samples.created_meter_readings()
    root = etree.fromstring(data)
    assert schemas.validate(data, "MeterReadingsMessage") == []
    assert schemas.validate(root, "MeterReadingsMessage") == []
    assert schemas.validate(root.getroottree(), "MeterReadingsMessage") == []


@pytest.mark.parametrize("data", [b"<msg:Broken", b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', b""])
def test_validate_turns_unparsable_input_into_one_error(data: bytes) -> None:
    errors = schemas.validate(data, "Message")
    assert len(errors) == 1 and ("well-formed" in errors[0] or "DOCTYPE" in errors[0])


def test_validate_gives_each_thread_its_own_errors() -> None:
    """The shared compiled schema keeps one error log; validate() must not mix callers' errors."""
    good, bad = samples.response_message(), samples.response_message(result="MAYBE")
    mismatches: list[str] = []

    def run(document: bytes, expect_valid: bool) -> None:
        for _ in range(200):
            if (schemas.validate(document, "Message") == []) != expect_valid:
                mismatches.append("wrong verdict")

    threads = [threading.Thread(target=run, args=(d, v)) for d, v in ((good, True), (bad, False)) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []

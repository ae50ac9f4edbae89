"""The hardened parser refuses DTDs, entities and oversized input quickly, with code 1.8."""

from __future__ import annotations

import time

import pytest
from lxml import etree

from simulator.cim.xml import parse_xml, xml_escape
from simulator.errors import CimError

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>"
)
XXE = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
EXTERNAL_DTD = b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>'
PARAMETER_ENTITY = b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><r/>'
DOCTYPE_AFTER_COMMENT = b"<?xml version='1.0'?><!-- hi --><?pi x?>\n<!DOCTYPE r [<!ENTITY a 'b'>]><r>&a;</r>"
UTF16_DOCTYPE = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>'.encode(
    "utf-16"
)


def _code_and_time(data: bytes, **kwargs: int) -> tuple[CimError, float]:
    start = time.perf_counter()
    with pytest.raises(CimError) as info:
        parse_xml(data, **kwargs)
    return info.value, time.perf_counter() - start


@pytest.mark.parametrize(
    "payload",
    [BILLION_LAUGHS, XXE, EXTERNAL_DTD, PARAMETER_ENTITY, DOCTYPE_AFTER_COMMENT, UTF16_DOCTYPE],
    ids=["billion-laughs", "xxe", "external-dtd", "parameter-entity", "after-prolog", "utf16"],
)
def test_any_doctype_is_refused_fast_with_1_8(payload: bytes) -> None:
    err, elapsed = _code_and_time(payload)
    assert err.code == "1.8"
    assert "DOCTYPE" in err.reason
    assert elapsed < 0.1


def test_billion_laughs_is_refused_even_when_it_is_the_whole_budget() -> None:
    err, elapsed = _code_and_time(BILLION_LAUGHS * 1000)
    assert err.code == "1.8" and elapsed < 0.1


@pytest.mark.parametrize(
    "payload", [b"", b"   ", b"not xml", b"<a><b></a>", b"<a>&undefined;</a>", b"\xff\xfe\x00<", b"<a/><b/>"]
)
def test_malformed_input_is_1_8_not_well_formed(payload: bytes) -> None:
    err, elapsed = _code_and_time(payload)
    assert err.code == "1.8"
    assert err.reason.startswith("request is not well-formed XML")
    assert elapsed < 0.1


def test_size_limit_is_checked_before_parsing() -> None:
    err, _ = _code_and_time(b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1000)
    assert err.code == "1.8" and "exceeds the limit of 1000 bytes" in err.reason
    assert parse_xml(b"<a>" + b"x" * 990 + b"</a>", max_bytes=1000).tag == "a"


def test_non_bytes_input_is_refused() -> None:
    with pytest.raises(CimError) as info:
        parse_xml("<a/>")  # type: ignore[arg-type]
    assert info.value.code == "1.8"


def test_doctype_text_inside_content_is_only_text() -> None:
    root = parse_xml(b"<?xml version='1.0'?><!-- c --><a><![CDATA[<!DOCTYPE x>]]>&amp;&#65;</a>")
    assert root.text == "<!DOCTYPE x>&A"


def test_well_formed_document_keeps_namespaces_and_encoding() -> None:
    root = parse_xml(
        '<?xml version="1.0" encoding="ISO-8859-1"?><n:a xmlns:n="urn:x">é</n:a>'.encode("latin-1")
    )
    assert root.tag == "{urn:x}a" and root.text == "é"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ('a<b>&"c"', "a&lt;b&gt;&amp;&quot;c&quot;"),
        ("bell\x07 nul\x00", "bell\ufffd nul\ufffd"),
        ("cr\r\nlf", "cr&#13;&#10;lf"),
        ("tab\tok", "tab&#9;ok"),
        ("\ud800lone", "\ufffdlone"),
    ],
)
def test_xml_escape(text: str, expected: str) -> None:
    assert xml_escape(text) == expected


def test_escaped_text_round_trips_in_element_and_attribute() -> None:
    value = "x < y & \"z\" > 'w'\r\n\ttab"
    doc = f'<a v="{xml_escape(value)}">{xml_escape(value)}</a>'.encode()
    root = etree.fromstring(doc)
    assert root.text == value
    assert root.get("v") == value  # no attribute-value normalisation of tab, LF or CR

"""The one hardened XML parser: every byte that arrives from outside goes through `parse_xml`.

A simulator is pointed at by test rigs that send anything, so the parser must never fetch a
URL, read a local file (XXE), expand entities (billion laughs) or build an unbounded tree.
Messages of IEC 61968-100 never need a DTD, so any DOCTYPE is refused outright rather than
"parsed safely": the refusal is cheap, explicit and answered with code 1.8.
"""

from __future__ import annotations

import re
import threading

from lxml import etree

from simulator.errors import CimError

DEFAULT_MAX_BYTES = 50 * 1024 * 1024

# A DOCTYPE may only sit in the prolog: after an optional BOM, XML declaration, comments and PIs.
# Scanning the prolog (not the whole body) keeps the text "<!DOCTYPE" legal inside CDATA.
# A PI cannot run past its first "?>" nor a comment past its first "-->": lazy ".*?" could, and
# on a failed match backtracked through the whole prefix of every large body.
_PROLOG_DOCTYPE = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:(?:<\?(?:[^?]|\?(?!>))*\?>|<!--(?:[^-]|-(?!->))*-->)\s*)*<!DOCTYPE"
)

# lxml parsers must not be shared between threads; the asyncio loop has one thread, but JMS
# consumers or test helpers may call us from others.
_local = threading.local()


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
        )
        _local.parser = parser
    return parser


def parse_xml(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse untrusted bytes into an element, or raise CimError 1.8 saying what is wrong."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CimError("1.8", f"request must be bytes, got {type(data).__name__}")
    raw = bytes(data)
    if len(raw) > max_bytes:
        raise CimError("1.8", f"request of {len(raw)} bytes exceeds the limit of {max_bytes} bytes")
    if _PROLOG_DOCTYPE.match(raw[:65536]):
        raise CimError("1.8", "request contains a DOCTYPE; DTDs and entity declarations are not accepted")
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        raise CimError("1.8", f"request is not well-formed XML: {exc}") from None
    except (ValueError, TypeError) as exc:  # e.g. unsupported encodings reported by libxml2 glue
        raise CimError("1.8", f"request is not well-formed XML: {exc}") from None
    if root is None:
        raise CimError("1.8", "request is not well-formed XML: no root element")
    # A DOCTYPE in a non-ASCII-compatible encoding (UTF-16) slips past the byte scan; catch it here.
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise CimError("1.8", "request contains a DOCTYPE; DTDs and entity declarations are not accepted")
    return root


# Characters XML 1.0 cannot carry at all (C0 controls except tab/LF/CR, surrogates, U+FFFE/F).
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NEEDS_WORK = re.compile('[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')


def xml_escape(text: str) -> str:
    """Text safe both as element content and inside a double-quoted attribute.

    Every string-template builder uses this one function, so it must be exact in both places:
    tab, LF and CR become character references, because a parser would otherwise normalise
    them to spaces inside an attribute (and CR everywhere). Characters that XML cannot carry
    at all (a control byte in an echoed reason, say) become U+FFFD instead of producing a
    document the peer cannot parse.
    """
    if _NEEDS_WORK.search(text) is None:
        return text
    text = _NOT_XML_CHAR.sub("\ufffd", text)
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\t", "&#9;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
    )

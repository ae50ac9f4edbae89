"""The IEC 61968-100 ed.1 envelope: read requests, build responses, events and faults.

Two shapes arrive: the generic `msg:RequestMessage` (also `msg:Message`, `msg:EventMessage`)
and the strongly-typed per-noun wrappers such as `GetMeterReadings` in
`http://iec.ch/TC57/2011/GetMeterReadingsMessage`. In the typed shape `Header`, `Request`,
`Reply` and `Payload` live in the wrapper namespace while their children stay in the message
namespace; the reader also accepts them in the message namespace, because hand-written
clients often get that wrong and the simulator should tell them about their payload rather
than about a prefix. The same goes one level down: a typed `Get<Noun>` request declares its
own Request type, so its StartTime/EndTime/Option/ID are in the wrapper namespace, while the
other typed requests reuse the message RequestType; both are read.

Reading is deliberately not schema validation (that is `validate_request`, optional and
separate): it finds what routing needs and raises `CimError` with the code a client can act
on. Choices where the standard is silent:

- a strongly-typed root whose name disagrees with `Header/Verb` answers 2.9 (invalid Verb),
  and with `Header/Noun` answers 2.5 (invalid Noun): the header is what is wrong, not the XML;
- a strongly-typed `Get<Noun>` without `Request` answers 1.6 (its schema requires it);
- verbs are matched exactly (lower case, as the schema's enumeration), after trimming blanks.

The builders live in `messages.py` and are re-exported here, so callers import the envelope
from one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import BytesIO
from typing import Literal

from lxml import etree

from simulator.cim.messages import (
    VERBS,
    ErrorItem,
    IdRef,
    OutHeader,
    Reply,
    Wrapper,
    build_event,
    build_fault_message,
    build_request,
    build_response,
    meter_error,
    reading_type_error,
    reply_for_error,
    typed_root,
)
from simulator.cim.ns import MSG
from simulator.errors import CimError
from simulator.timeutil import parse_datetime

__all__ = [
    "GENERIC_ROOTS",
    "TYPED_YEARS",
    "VERBS",
    "ErrorItem",
    "Header",
    "HeaderPeek",
    "IdRef",
    "InboundMessage",
    "OutHeader",
    "Reply",
    "RequestPart",
    "Wrapper",
    "build_event",
    "build_fault_message",
    "build_request",
    "build_response",
    "meter_error",
    "peek_header",
    "read_request",
    "reading_type_error",
    "reply_for_error",
    "typed_root",
    "validate_request",
]

GENERIC_ROOTS: tuple[str, ...] = ("RequestMessage", "Message", "EventMessage")
TYPED_YEARS: tuple[str, ...] = ("2011", "2015", "2017")
_TYPED_NS = re.compile(r"^http://iec\.ch/TC57/(2011|2015|2017)/([A-Za-z][A-Za-z0-9_]*)Message$")
_VERB_BY_TITLE = {v[:1].upper() + v[1:]: v for v in VERBS}
_ACCEPTED = (
    f"{{{MSG}}}RequestMessage, {{{MSG}}}Message, {{{MSG}}}EventMessage, or a strongly-typed "
    "{http://iec.ch/TC57/<2011|2015|2017>/<Noun>Message}<Verb><Noun> "
    "(e.g. {http://iec.ch/TC57/2011/GetMeterReadingsMessage}GetMeterReadings)"
)


@dataclass(frozen=True, slots=True)
class Header:
    verb: str
    noun: str
    revision: str | None = None
    context: str | None = None
    timestamp: str | None = None
    source: str | None = None
    async_reply_flag: bool | None = None
    reply_address: str | None = None
    ack_required: bool | None = None
    user_id: str | None = None
    organization: str | None = None
    message_id: str | None = None
    correlation_id: str | None = None
    comment: str | None = None
    properties: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class RequestPart:
    start_time: int | None = None  # unix seconds
    end_time: int | None = None
    options: tuple[tuple[str, str | None], ...] = ()
    ids: tuple[IdRef, ...] = ()
    elements: tuple[etree._Element, ...] = ()  # children in other namespaces: the "Get" profile


@dataclass(frozen=True, slots=True)
class InboundMessage:
    kind: Literal["typed", "generic"]
    root_qname: str  # Clark notation, e.g. "{http://iec.ch/TC57/2011/schema/message}RequestMessage"
    header: Header
    request: RequestPart | None
    payload_elements: tuple[etree._Element, ...]
    payload_ids: tuple[IdRef, ...]

    @property
    def wrapper_namespace(self) -> str | None:
        return _namespace(self.root_qname) if self.kind == "typed" else None

    @property
    def response_root(self) -> str | None:
        """Root of the typed answer (`<Noun>ResponseMessage` in the request's namespace), or None."""
        ns = self.wrapper_namespace
        return None if ns is None else f"{{{ns}}}{self.header.noun}ResponseMessage"

    @property
    def fault_root(self) -> str | None:
        """Root of the typed fault detail (`<Noun>FaultMessage`), or None for the generic FaultMessage."""
        ns = self.wrapper_namespace
        return None if ns is None else f"{{{ns}}}{self.header.noun}FaultMessage"

    @property
    def schema_name(self) -> str:
        """Name of the schema that covers this message in `schemas.validator` (e.g. "Message")."""
        ns = self.wrapper_namespace
        return "Message" if ns is None else ns.rsplit("/", 1)[1]

    def find_element(self, local_name: str) -> etree._Element | None:
        """The first profile element with this local name, under Request first, then Payload."""
        candidates = (self.request.elements if self.request else ()) + self.payload_elements
        for el in candidates:
            if etree.QName(el).localname == local_name:
                return el
        return None


# ----------------------------------------------------------------------------------- reading


def _namespace(clark: str) -> str:
    return clark[1:].split("}", 1)[0] if clark.startswith("{") else ""


def _typed_verb_noun(ns: str, local: str) -> tuple[str, str] | None:
    """(verb, noun) a strongly-typed root stands for, or None when the root is not one."""
    m = _TYPED_NS.match(ns)
    if m is None:
        return None
    wrapper_noun = m.group(2)
    if wrapper_noun.startswith("Get"):
        return ("get", wrapper_noun[3:]) if local == wrapper_noun and len(local) > 3 else None
    if local.endswith(wrapper_noun) and local != wrapper_noun:
        verb = _VERB_BY_TITLE.get(local[: -len(wrapper_noun)])
        if verb is not None and verb not in ("get", "reply"):
            return verb, wrapper_noun
    return None


def _find(parent: etree._Element, name: str, nss: tuple[str, ...]) -> etree._Element | None:
    for ns in nss:
        el = parent.find(f"{{{ns}}}{name}")
        if el is not None:
            return el
    return None


def _findall(parent: etree._Element, name: str, nss: tuple[str, ...]) -> list[etree._Element]:
    return [el for ns in nss for el in parent.iterfind(f"{{{ns}}}{name}")]


def _text(parent: etree._Element, name: str, nss: tuple[str, ...] = (MSG,)) -> str | None:
    el = _find(parent, name, nss)
    if el is None or el.text is None:
        return None
    text = el.text.strip()
    return text or None


def _bool(parent: etree._Element, name: str) -> bool | None:
    text = _text(parent, name)
    if text is None:
        return None
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise CimError("1.8", f"Header/{name} must be a boolean (true, false, 1, 0), got {text!r}")


def _time(parent: etree._Element, name: str, nss: tuple[str, ...]) -> int | None:
    text = _text(parent, name, nss)
    if text is None:
        return None
    try:
        return parse_datetime(text)
    except (ValueError, OverflowError):
        raise CimError("1.8", f"Request/{name} is not an xs:dateTime: {text!r}") from None


def _id_ref(el: etree._Element) -> IdRef:
    return IdRef(
        value=(el.text or "").strip(),
        kind=el.get("kind"),
        object_type=el.get("objectType"),
        id_type=el.get("idType"),
        id_authority=el.get("idAuthority"),
    )


def _pairs(
    parent: etree._Element, element: str, key: str, value: str, nss: tuple[str, ...] = (MSG,)
) -> tuple[tuple[str, str | None], ...]:
    out = []
    for el in _findall(parent, element, nss):
        name = _text(el, key)
        if name is not None:
            out.append((name, _text(el, value)))
    return tuple(out)


def _foreign_children(parent: etree._Element, own: tuple[str, ...]) -> tuple[etree._Element, ...]:
    """Element children outside the envelope namespaces (comments and PIs skipped)."""
    return tuple(c for c in parent if isinstance(c.tag, str) and _namespace(c.tag) not in own)


def _read_header(el: etree._Element) -> Header:
    verb = _text(el, "Verb")
    if verb is None:
        found = [etree.QName(c).text for c in el if isinstance(c.tag, str)][:5]
        raise CimError("2.9", f"Header has no {{{MSG}}}Verb (children found: {found})")
    if verb not in VERBS:
        raise CimError("2.9", f"Header/Verb {verb!r} is not one of: {', '.join(VERBS)}")
    noun = _text(el, "Noun")
    if noun is None:
        raise CimError("2.5", f"Header has no {{{MSG}}}Noun, or it is empty")
    user = el.find(f"{{{MSG}}}User")
    return Header(
        verb=verb,
        noun=noun,
        revision=_text(el, "Revision"),
        context=_text(el, "Context"),
        timestamp=_text(el, "Timestamp"),
        source=_text(el, "Source"),
        async_reply_flag=_bool(el, "AsyncReplyFlag"),
        reply_address=_text(el, "ReplyAddress"),
        ack_required=_bool(el, "AckRequired"),
        user_id=_text(user, "UserID") if user is not None else None,
        organization=_text(user, "Organization") if user is not None else None,
        message_id=_text(el, "MessageID"),
        correlation_id=_text(el, "CorrelationID"),
        comment=_text(el, "Comment"),
        properties=_pairs(el, "Property", "Name", "Value"),
    )


def read_request(root: etree._Element) -> InboundMessage:
    """Read the envelope of an inbound message, or raise CimError (1.5, 1.6, 1.8, 2.5, 2.9)."""
    tag = root.tag
    if not isinstance(tag, str):
        raise CimError("1.8", f"root is not an element; accepted roots: {_ACCEPTED}")
    ns, local = _namespace(tag), etree.QName(tag).localname
    typed: tuple[str, str] | None = None
    if ns == MSG:
        if local not in GENERIC_ROOTS:
            raise CimError("1.8", f"unexpected root element {tag}; accepted roots: {_ACCEPTED}")
        part_ns: tuple[str, ...] = (MSG,)
    else:
        typed = _typed_verb_noun(ns, local)
        if typed is None:
            raise CimError("1.8", f"unexpected root element {tag}; accepted roots: {_ACCEPTED}")
        part_ns = (ns, MSG)

    def part(name: str) -> etree._Element | None:
        return _find(root, name, part_ns)

    header_el = part("Header")
    if header_el is None:
        raise CimError("1.5", f"{tag} has no Header")
    header = _read_header(header_el)
    if typed is not None:
        if header.verb != typed[0]:
            raise CimError(
                "2.9", f"Header/Verb {header.verb!r} contradicts the root {local} (verb {typed[0]!r})"
            )
        if header.noun != typed[1]:
            raise CimError(
                "2.5", f"Header/Noun {header.noun!r} contradicts the root {local} (noun {typed[1]!r})"
            )

    request_el = part("Request")
    request = None
    if request_el is not None:
        request = RequestPart(
            start_time=_time(request_el, "StartTime", part_ns),
            end_time=_time(request_el, "EndTime", part_ns),
            options=_pairs(request_el, "Option", "name", "value", part_ns),
            ids=tuple(_id_ref(e) for e in _findall(request_el, "ID", part_ns)),
            elements=_foreign_children(request_el, part_ns),
        )
    elif typed is not None and typed[0] == "get":
        raise CimError("1.6", f"{local} requires a Request element")

    payload_el = part("Payload")
    payload_elements: tuple[etree._Element, ...] = ()
    payload_ids: tuple[IdRef, ...] = ()
    if payload_el is not None:
        payload_elements = _foreign_children(payload_el, part_ns)
        payload_ids = tuple(_id_ref(e) for e in _findall(payload_el, "ID", part_ns))
    return InboundMessage(
        kind="generic" if typed is None else "typed",
        root_qname=tag,
        header=header,
        request=request,
        payload_elements=payload_elements,
        payload_ids=payload_ids,
    )


def validate_request(root: etree._Element, schema_name: str, max_listed: int = 3) -> None:
    """Full XSD check against our profiles; raises CimError 1.8 listing the first errors."""
    from simulator.cim import schemas  # imported late: loading the schemas costs ~100 ms

    errors = schemas.validate(root, schema_name)
    if errors:
        more = f" (and {len(errors) - max_listed} more)" if len(errors) > max_listed else ""
        raise CimError(
            "1.8",
            f"request fails {schema_name} schema validation: " + "; ".join(errors[:max_listed]) + more,
            details="\n".join(errors[:50]),
        )


@dataclass(frozen=True, slots=True)
class HeaderPeek:
    """Routing facts of an outbound message, for transports that carry them beside the body (JMS)."""

    verb: str | None = None
    noun: str | None = None
    correlation_id: str | None = None
    message_id: str | None = None


_PEEKED = {f"{{{MSG}}}{name}": name for name in ("Verb", "Noun", "CorrelationID", "MessageID")}


def peek_header(body: bytes) -> HeaderPeek:
    """Verb, Noun, CorrelationID and MessageID of a message we built, reading only up to its Header.

    Parsing stops at the end of the first Header, so a 10 MB MeterReadings costs what its first
    kilobytes cost. Anything unreadable gives empty fields; the message goes out without them.
    """
    found: dict[str, str] = {}
    context = etree.iterparse(BytesIO(body), events=("end",), resolve_entities=False, no_network=True,
                              load_dtd=False, huge_tree=False)
    try:
        for _, el in context:
            tag = el.tag
            if tag in _PEEKED and el.text and el.text.strip():
                found.setdefault(_PEEKED[tag], el.text.strip())
            elif isinstance(tag, str) and tag.endswith("}Header"):
                break
    except etree.XMLSyntaxError:
        pass
    return HeaderPeek(found.get("Verb"), found.get("Noun"), found.get("CorrelationID"), found.get("MessageID"))

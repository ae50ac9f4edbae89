"""Building IEC 61968-100 ed.1 messages as bytes: responses, events, requests and faults.

Replies are built on every request, and lxml trees cost about ten times more than string
templates, so everything here is concatenated text; `xml_escape` is the only way a value gets
in. No XML declaration is written, so the bytes can be embedded in a SOAP body or sent as-is.
Generic messages use the `msg:` prefix; a strongly-typed root (a Clark name such as
`{http://iec.ch/TC57/2011/GetMeterReadingsMessage}MeterReadingsResponseMessage`) puts the root
and its Header/Reply/Payload in the `m:` prefix with their children in `msg:`. The payload
document keeps its own default namespace, so its elements need no prefix at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.cim import codes
from simulator.cim.ns import MSG
from simulator.cim.xml import xml_escape
from simulator.errors import CimError

# A typed root as a Clark name "{namespace}Local" or a (namespace, local) pair; None = generic.
Wrapper = str | tuple[str, str] | None

VERBS: tuple[str, ...] = (
    "cancel", "canceled", "change", "changed", "create", "created", "close", "closed",
    "delete", "deleted", "get", "reply", "execute", "executed",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class IdRef:
    """An `ID` element with its IDatts: names an object (meter, ReadingType, transaction)."""

    value: str
    kind: str | None = None  # name | uuid | transaction | other
    object_type: str | None = None
    id_type: str | None = None
    id_authority: str | None = None


@dataclass(frozen=True, slots=True)
class OutHeader:
    """Header of a message we send; None fields are omitted, the rest written in XSD order."""

    verb: str
    noun: str
    message_id: str | None = None
    correlation_id: str | None = None
    timestamp: str | None = None  # xs:dateTime text
    source: str | None = None
    reply_address: str | None = None
    async_reply_flag: bool | None = None
    ack_required: bool | None = None
    properties: tuple[tuple[str, str | None], ...] = ()
    comment: str | None = None
    revision: str | None = None
    context: str | None = None

    def __post_init__(self) -> None:
        if self.verb not in VERBS:
            raise ValueError(f"verb {self.verb!r} is not one of {VERBS}")


@dataclass(frozen=True, slots=True)
class ErrorItem:
    """One `Reply/Error`; `id` names the object it is about (xpath is left out: it is xs:QName)."""

    code: str
    level: str | None = None
    reason: str | None = None
    details: str | None = None
    id: IdRef | None = None

    def __post_init__(self) -> None:
        if self.level is not None and self.level not in codes.LEVELS:
            raise ValueError(f"level {self.level!r} is not one of {codes.LEVELS}")


@dataclass(frozen=True, slots=True)
class Reply:
    result: str  # OK | PARTIAL | FAILED
    errors: tuple[ErrorItem, ...] = ()
    ids: tuple[IdRef, ...] = ()

    @classmethod
    def failed(cls, error: CimError) -> Reply:
        """The FAILED reply that reports a CimError (same as `reply_for_error`)."""
        return reply_for_error(error)

    def __post_init__(self) -> None:
        if self.result not in codes.RESULTS:
            raise ValueError(f"result {self.result!r} is not one of {codes.RESULTS}")


def status_item(code: str) -> ErrorItem:
    """An INFORM-level status carried as an Error (0.0, 0.1, 0.2 or the 0.3 acknowledgement)."""
    return ErrorItem(code, codes.LEVEL_INFORM, codes.reason_for(code))


def meter_error(code: str, meter_mrid: str, reason: str | None = None, level: str | None = None) -> ErrorItem:
    """A per-meter error naming the meter by its mRID, as `ID kind="uuid" objectType="EndDevice"`."""
    return ErrorItem(
        code=code,
        level=level or codes.level_for(code),
        reason=reason or codes.reason_for(code),
        id=IdRef(meter_mrid, kind="uuid", object_type="EndDevice"),
    )


def reading_type_error(
    code: str, reading_type: str, reason: str | None = None, level: str | None = None
) -> ErrorItem:
    """A per-ReadingType error naming the code, as `ID kind="name" objectType="ReadingType"`."""
    return ErrorItem(
        code=code,
        level=level or codes.level_for(code),
        reason=reason or codes.reason_for(code),
        id=IdRef(reading_type, kind="name", object_type="ReadingType"),
    )


def reply_for_error(error: CimError) -> Reply:
    """The FAILED reply that reports a CimError."""
    return Reply(
        result=codes.RESULT_FAILED,
        errors=(ErrorItem(error.code, codes.level_for(error.code), error.reason, error.details),),
    )


def typed_root(verb_title: str, noun: str, year: str = "2011") -> str:
    """Clark name of a strongly-typed root.

    ("Created", "MeterReadings") gives "{http://iec.ch/TC57/2011/MeterReadingsMessage}CreatedMeterReadings".
    """
    return f"{{http://iec.ch/TC57/{year}/{noun}Message}}{verb_title}{noun}"


def _el(prefix: str, name: str, text: str | None) -> str:
    return "" if text is None else f"<{prefix}{name}>{xml_escape(text)}</{prefix}{name}>"


def _bool_text(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def id_xml(name: str, ref: IdRef, prefix: str = "msg:") -> str:
    """An ID-typed element (`ID`, `relatedID`) with its IDatts, escaped."""
    attrs = "".join(
        f' {attr}="{xml_escape(value)}"'
        for attr, value in (
            ("idType", ref.id_type),
            ("idAuthority", ref.id_authority),
            ("kind", ref.kind),
            ("objectType", ref.object_type),
        )
        if value is not None
    )
    return f"<{prefix}{name}{attrs}>{xml_escape(ref.value)}</{prefix}{name}>"


def _header_xml(h: OutHeader) -> str:
    props = "".join(
        f"<msg:Property>{_el('msg:', 'Name', name)}{_el('msg:', 'Value', value)}</msg:Property>"
        for name, value in h.properties
    )
    return "".join(
        (
            _el("msg:", "Verb", h.verb),
            _el("msg:", "Noun", h.noun),
            _el("msg:", "Revision", h.revision),
            _el("msg:", "Context", h.context),
            _el("msg:", "Timestamp", h.timestamp),
            _el("msg:", "Source", h.source),
            _el("msg:", "AsyncReplyFlag", _bool_text(h.async_reply_flag)),
            _el("msg:", "ReplyAddress", h.reply_address),
            _el("msg:", "AckRequired", _bool_text(h.ack_required)),
            _el("msg:", "MessageID", h.message_id),
            _el("msg:", "CorrelationID", h.correlation_id),
            _el("msg:", "Comment", h.comment),
            props,
        )
    )


def _error_xml(e: ErrorItem) -> str:
    return (
        "<msg:Error>"
        + _el("msg:", "code", e.code)
        + _el("msg:", "level", e.level)
        + _el("msg:", "reason", e.reason)
        + _el("msg:", "details", e.details)
        + (id_xml("ID", e.id) if e.id is not None else "")
        + "</msg:Error>"
    )


def _reply_xml(r: Reply) -> str:
    return (
        _el("msg:", "Result", r.result)
        + "".join(_error_xml(e) for e in r.errors)
        + "".join(id_xml("ID", i) for i in r.ids)
    )


def _wrapper_parts(wrapper: Wrapper, generic_local: str) -> tuple[str, str]:
    if wrapper is None:
        return MSG, generic_local
    if isinstance(wrapper, tuple):
        return wrapper
    if not wrapper.startswith("{") or "}" not in wrapper:
        raise ValueError(f"wrapper must be a Clark name {{namespace}}Root, got {wrapper!r}")
    ns, local = wrapper[1:].split("}", 1)
    return ns, local


def _root_tags(wrapper: Wrapper, generic_local: str) -> tuple[str, str, str]:
    """(start tag, end tag, prefix of the Header/Reply/... parts) for a generic or typed root."""
    ns, local = _wrapper_parts(wrapper, generic_local)
    if ns == MSG:
        return f'<msg:{local} xmlns:msg="{MSG}">', f"</msg:{local}>", "msg:"
    return f'<m:{local} xmlns:m="{xml_escape(ns)}" xmlns:msg="{MSG}">', f"</m:{local}>", "m:"


def _strip_declaration(payload: bytes) -> bytes:
    if payload.startswith(b"<?xml"):
        end = payload.find(b"?>")
        if end >= 0:
            return payload[end + 2 :].lstrip()
    return payload


def _assemble(start: str, parts: list[str], payload: bytes | None, prefix: str, end: str) -> bytes:
    head = (start + "".join(parts)).encode()
    if payload is None:
        return head + end.encode()
    # One join: chained `+` copied a 10 MB payload once per operator.
    return b"".join((head, f"<{prefix}Payload>".encode(), _strip_declaration(payload),
                     f"</{prefix}Payload>{end}".encode()))


def build_response(wrapper: Wrapper, header: OutHeader, reply: Reply, payload: bytes | None = None) -> bytes:
    """`msg:ResponseMessage` (wrapper None) or the typed root named by `wrapper` (Clark name).

    For GetMeterReadings the typed root is `{.../GetMeterReadingsMessage}MeterReadingsResponseMessage`
    (`InboundMessage.response_root`), the element the Get WSDL names as its output.
    `payload` is a profile document (e.g. MeterReadings bytes), placed inside `Payload`.
    """
    start, end, p = _root_tags(wrapper, "ResponseMessage")
    parts = [
        f"<{p}Header>",
        _header_xml(header),
        f"</{p}Header><{p}Reply>",
        _reply_xml(reply),
        f"</{p}Reply>",
    ]
    return _assemble(start, parts, payload, p, end)


def build_event(wrapper: Wrapper, header: OutHeader, payload: bytes | None = None) -> bytes:
    """`msg:EventMessage` (wrapper None) or a typed event root such as `typed_root("Created", noun)`."""
    start, end, p = _root_tags(wrapper, "EventMessage")
    return _assemble(start, [f"<{p}Header>", _header_xml(header), f"</{p}Header>"], payload, p, end)


def build_request(
    wrapper: Wrapper,
    header: OutHeader,
    *,
    start_time: str | None = None,
    end_time: str | None = None,
    options: tuple[tuple[str, str | None], ...] = (),
    ids: tuple[IdRef, ...] = (),
    request_elements: tuple[bytes, ...] = (),
    payload: bytes | None = None,
) -> bytes:
    """`msg:RequestMessage` or a typed request root; used by tests, examples and outbound clients.

    A typed `Get<Noun>` wrapper declares its own Request type, so StartTime, EndTime, Option and
    ID are written in the wrapper namespace there (and its ID takes no attributes); every other
    root uses the message RequestType, whose children are in the message namespace.
    """
    start, end, p = _root_tags(wrapper, "RequestMessage")
    wrapper_ns = _wrapper_parts(wrapper, "RequestMessage")[0]
    q = p if wrapper_ns != MSG and wrapper_ns.rsplit("/", 1)[-1].startswith("Get") else "msg:"
    parts = [f"<{p}Header>", _header_xml(header), f"</{p}Header>"]
    has_request = start_time or end_time or options or ids or request_elements
    if has_request:
        parts.append(f"<{p}Request>")
        parts.append(_el(q, "StartTime", start_time) + _el(q, "EndTime", end_time))
        for name, value in options:
            parts.append(f"<{q}Option>{_el('msg:', 'name', name)}{_el('msg:', 'value', value)}</{q}Option>")
        parts.extend(id_xml("ID", i, q) for i in ids)
        parts.extend(_strip_declaration(e).decode() for e in request_elements)
        parts.append(f"</{p}Request>")
    return _assemble(start, parts, payload, p, end)


def build_fault_message(reply: Reply, wrapper: Wrapper = None) -> bytes:
    """`msg:FaultMessage` (Reply only, no Header) or the typed `<Noun>FaultMessage` named by `wrapper`."""
    start, end, p = _root_tags(wrapper, "FaultMessage")
    return f"{start}<{p}Reply>{_reply_xml(reply)}</{p}Reply>{end}".encode()

"""Reply codes, error levels and Result values of the IEC 61968-100 ed.1 Reply.

The codes follow the public `<category>.<n>` numbering (category 0 OK, 1 bad or missing
element, 2 invalid parameter, 3 too many values, 4 aborted, 5 application error, 6 business
rule, 7 security). Which Result goes with which code is not published; the pairing used by
the head-end is `result_for`, and every reason text here is ours.
"""

from __future__ import annotations

from typing import Final, Literal

Result = Literal["OK", "PARTIAL", "FAILED"]
RESULT_OK: Final = "OK"
RESULT_PARTIAL: Final = "PARTIAL"
RESULT_FAILED: Final = "FAILED"
RESULTS: Final[tuple[str, ...]] = (RESULT_OK, RESULT_PARTIAL, RESULT_FAILED)

Level = Literal["INFORM", "WARNING", "FATAL", "CATASTROPHIC"]
LEVEL_INFORM: Final = "INFORM"
LEVEL_WARNING: Final = "WARNING"
LEVEL_FATAL: Final = "FATAL"
LEVEL_CATASTROPHIC: Final = "CATASTROPHIC"
LEVELS: Final[tuple[str, ...]] = (LEVEL_INFORM, LEVEL_WARNING, LEVEL_FATAL, LEVEL_CATASTROPHIC)

# Category 0: success and progress.
OK: Final = "0.0"
PARTIAL_MORE_FOLLOW: Final = "0.1"
PARTIAL_NONE_FOLLOW: Final = "0.2"
ACKNOWLEDGED: Final = "0.3"
# Category 1: the message itself is incomplete or unreadable.
HEADER_MISSING: Final = "1.5"
REQUEST_MISSING: Final = "1.6"
PAYLOAD_MISSING: Final = "1.7"
SCHEMA_INVALID: Final = "1.8"
REVISION_UNSUPPORTED: Final = "1.9"
# Category 2: a value in the request is not acceptable.
INVALID_METER: Final = "2.4"
INVALID_NOUN: Final = "2.5"
INVALID_READING_TYPE: Final = "2.6"
INVALID_VERB: Final = "2.9"
UNSUPPORTED_READING_TYPE: Final = "2.10"
INVALID_USAGE_POINT: Final = "2.12"
METER_USAGE_POINT_MISMATCH: Final = "2.13"
INVALID_SOURCE: Final = "2.14"
INVALID_REQUEST_ID: Final = "2.15"
# Category 3: too much.
TOO_MANY_ITEMS: Final = "3.1"
TOO_MANY_PENDING: Final = "3.2"
# Category 4: aborted.
TIMED_OUT: Final = "4.1"
# Category 5: the application could not do it.
BUSY: Final = "5.1"
NOT_ATTEMPTED: Final = "5.2"
ATTEMPTED_AND_FAILED: Final = "5.3"
MULTIPLE_ERRORS: Final = "5.4"
READING_TYPES_UNAVAILABLE_MDMS: Final = "5.5"
READING_TYPES_UNAVAILABLE_AMI: Final = "5.6"
DATA_UNAVAILABLE: Final = "5.7"
MANDATORY_FIELD_MISSING: Final = "5.8"
ABORTED_FOR_INTEGRITY: Final = "5.9"
# Category 6: business rules.
CANCELLED_BY_RULE: Final = "6.1"
CANCELLED_BY_USER: Final = "6.5"
# Category 7: security.
AUTHENTICATION_REQUIRED: Final = "7.2"
AUTHENTICATION_FAILED: Final = "7.4"
NOT_AUTHORISED: Final = "7.5"

REASONS: Final[dict[str, str]] = {
    OK: "no errors",
    PARTIAL_MORE_FOLLOW: "partial result; further results follow in separate messages",
    PARTIAL_NONE_FOLLOW: "partial result; no further results follow",
    ACKNOWLEDGED: "request received and accepted",
    HEADER_MISSING: "mandatory Header element missing",
    REQUEST_MISSING: "mandatory Request element missing",
    PAYLOAD_MISSING: "mandatory Payload element missing",
    SCHEMA_INVALID: "request does not conform to the schema",
    REVISION_UNSUPPORTED: "unsupported message revision in Header",
    INVALID_METER: "invalid meter",
    INVALID_NOUN: "invalid Noun",
    INVALID_READING_TYPE: "invalid ReadingType",
    INVALID_VERB: "invalid Verb",
    UNSUPPORTED_READING_TYPE: "unsupported ReadingType",
    INVALID_USAGE_POINT: "invalid UsagePoint",
    METER_USAGE_POINT_MISMATCH: "meter and UsagePoint do not match",
    INVALID_SOURCE: "invalid Source",
    INVALID_REQUEST_ID: "invalid request ID",
    TOO_MANY_ITEMS: "too many items in request",
    TOO_MANY_PENDING: "too many pending requests",
    TIMED_OUT: "request timed out",
    BUSY: "cannot process the request: high system activity",
    NOT_ATTEMPTED: "cannot process the request: transaction not attempted",
    ATTEMPTED_AND_FAILED: "transaction attempted and failed",
    MULTIPLE_ERRORS: "multiple error types",
    READING_TYPES_UNAVAILABLE_MDMS: "some or all requested ReadingTypes are unavailable in the MDMS",
    READING_TYPES_UNAVAILABLE_AMI: "some or all requested ReadingTypes are unavailable in the AMI",
    DATA_UNAVAILABLE: "some or all requested data is unavailable",
    MANDATORY_FIELD_MISSING: "cannot process the request: mandatory field missing",
    ABORTED_FOR_INTEGRITY: "transaction aborted to keep transactional integrity",
    CANCELLED_BY_RULE: "request cancelled by a business rule",
    CANCELLED_BY_USER: "request cancelled by the user",
    AUTHENTICATION_REQUIRED: "authentication required",
    AUTHENTICATION_FAILED: "authentication failed",
    NOT_AUTHORISED: "action not authorised for the user",
}


def reason_for(code: str) -> str:
    """The default reason text for a code; unknown (local) codes get a neutral text."""
    return REASONS.get(code, f"error {code}")


def level_for(code: str) -> str:
    """Category 0 informs; errors that name one object (meter, ReadingType) warn; the rest are fatal.

    The level is our convention (not published): a per-meter error inside a PARTIAL reply is a
    warning about that meter, while a request-wide error stops the request.
    """
    if code.startswith("0."):
        return LEVEL_INFORM
    if code in _PER_OBJECT:
        return LEVEL_WARNING
    return LEVEL_FATAL


_PER_OBJECT: Final = frozenset(
    {
        INVALID_METER,
        INVALID_READING_TYPE,
        UNSUPPORTED_READING_TYPE,
        INVALID_USAGE_POINT,
        METER_USAGE_POINT_MISMATCH,
        TIMED_OUT,
        ATTEMPTED_AND_FAILED,
        READING_TYPES_UNAVAILABLE_AMI,
        DATA_UNAVAILABLE,
    }
)


def result_for(code: str) -> str:
    """The Result a reply carrying only this code should have (our pairing, see the module note)."""
    if code in (OK, ACKNOWLEDGED):
        return RESULT_OK
    if code in (PARTIAL_MORE_FOLLOW, PARTIAL_NONE_FOLLOW):
        return RESULT_PARTIAL
    return RESULT_FAILED


def is_client_error(code: str) -> bool:
    """Whether the sender is to blame (SOAP Client/Sender) rather than us (Server/Receiver)."""
    return code.split(".", 1)[0] in {"1", "2", "3", "6", "7"}

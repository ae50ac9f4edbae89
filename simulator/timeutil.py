"""Time as the rest of the package sees it: integer Unix seconds (UTC) and ISO 8601 text.

The model works in integer seconds so that interval arithmetic is exact; only the codec
turns them into xs:dateTime text.
"""

from __future__ import annotations

from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_datetime(text: str) -> int:
    """xs:dateTime text to Unix seconds; a value without an offset is taken as UTC."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int((dt - _EPOCH).total_seconds() // 1)


def format_datetime(ts: int) -> str:
    """Unix seconds to xs:dateTime in UTC with a `Z`, e.g. 2026-01-01T00:15:00Z."""
    d = datetime.fromtimestamp(int(ts), UTC)
    # Not strftime: its %Y does not pad years before 1000, which xs:dateTime requires.
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"


def format_datetime_ms(ts: float) -> str:
    """Wall-clock header timestamps keep milliseconds."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"

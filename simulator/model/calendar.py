"""Local calendar arithmetic on integer day numbers.

The fleet lives at a fixed UTC offset (no daylight saving), so a local day is exactly 86,400 s
and holds exactly 96 fifteen-minute intervals. Days are counted from the local 1970-01-01
("epoch day"); the proleptic Gregorian calendar comes from `datetime.date`.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

DAY_S = 86_400
SLOT_S = 900
SLOTS_PER_DAY = DAY_S // SLOT_S
_ORDINAL_1970 = date(1970, 1, 1).toordinal()


def civil(day: int) -> tuple[int, int, int]:
    """(year, month, day of month) of an epoch day."""
    d = date.fromordinal(day + _ORDINAL_1970)
    return d.year, d.month, d.day


def epoch_day(year: int, month: int, dom: int) -> int:
    return date(year, month, dom).toordinal() - _ORDINAL_1970


@lru_cache(maxsize=512)
def month_starts(year: int) -> tuple[int, ...]:
    """Epoch day of the 1st of each month, plus the next year's Jan 1 (13 entries)."""
    return (*(epoch_day(year, m, 1) for m in range(1, 13)), epoch_day(year + 1, 1, 1))


def weekday(day: int) -> int:
    """Monday = 0; 1970-01-01 was a Thursday."""
    return (day + 3) % 7

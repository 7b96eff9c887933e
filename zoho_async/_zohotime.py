"""Zoho's printed sync times ("03 August, 2024 03:39:16 PM IST"), read without guessing.

Zoho prints ``lastDataSyncTime`` in the user's own zone, named by an abbreviation, and in
English whatever the machine's locale. Abbreviations are ambiguous: CST is UTC-6 in
Chicago and UTC+8 in Shanghai, IST is India, Ireland or Israel. So a time is read against
every offset its abbreviation can mean and is returned only when exactly one reading fits:
the abbreviation has one meaning, or ``near`` (a moment the time must lie close to, such
as the trigger of the sync) rules out all readings but one. Otherwise it is ``None``: an
unknown time is better than a wrong one, and nothing that decides whether a sync finished
depends on it (that is decided by the text changing; see ``_bulk._waiter``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

__all__ = ["parse_zoho_time", "zone_offsets"]

# English month names: strptime's %B follows LC_TIME and fails under a non-English locale.
_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
}

# Every offset (hours) an abbreviation is used for. The first-listed reading is not
# preferred: an abbreviation with several is resolved only by `near`.
_ZONES: dict[str, tuple[float, ...]] = {
    "UTC": (0,),
    "GMT": (0,),
    "Z": (0,),
    "WET": (0,),
    "WEST": (1,),
    "BST": (1, 6),  # British Summer Time; Bangladesh
    "IST": (5.5, 1, 2),  # India; Irish Standard Time; Israel
    "CET": (1,),
    "CEST": (2,),
    "EET": (2,),
    "EEST": (3,),
    "MSK": (3,),
    "AST": (-4, 3),  # Atlantic; Arabia
    "ADT": (-3,),
    "GST": (4, -2),  # Gulf; South Georgia
    "PKT": (5,),
    "NPT": (5.75,),
    "ICT": (7,),
    "WIB": (7,),
    "SGT": (8,),
    "HKT": (8,),
    "AWST": (8,),
    "CST": (-6, 8, -5),  # US Central; China; Cuba
    "CDT": (-5, -4),  # US Central daylight; Cuba daylight
    "JST": (9,),
    "KST": (9,),
    "ACST": (9.5,),
    "ACDT": (10.5,),
    "AEST": (10,),
    "AEDT": (11,),
    "NZST": (12,),
    "NZDT": (13,),
    "EST": (-5,),
    "EDT": (-4,),
    "MST": (-7,),
    "MDT": (-6,),
    "PST": (-8, 8),  # US Pacific; Philippines
    "PDT": (-7,),
    "AKST": (-9,),
    "AKDT": (-8,),
    "HST": (-10,),
    "BRT": (-3,),
    "ART": (-3,),
}

_TIME_RE = re.compile(
    r"^\s*(\d{1,2}) ([A-Za-z]+),? (\d{4}) (\d{1,2}):(\d{2}):(\d{2}) ([AaPp][Mm])"
    r"\s*([A-Za-z]{1,5})?\s*(?:(?:GMT|UTC)?([+-]\d{1,2}):?(\d{2}))?\s*$"
)

# Clock skew allowed between us and Zoho when a reading is checked against a window. The
# readings of one abbreviation lie at least an hour apart, so a window shorter than
# 50 minutes (plus this slack on both sides) picks at most one.
SKEW = timedelta(minutes=5)


def zone_offsets(abbreviation: str) -> tuple[timedelta, ...]:
    """Every UTC offset ``abbreviation`` is used for (empty when unknown).

    >>> [o.total_seconds() / 3600 for o in zone_offsets("CST")]
    [-6.0, 8.0, -5.0]
    """
    return tuple(timedelta(hours=h) for h in _ZONES.get(abbreviation.upper(), ()))


def parse_zoho_time(
    text: object, *, between: tuple[datetime, datetime] | None = None
) -> datetime | None:
    """An aware datetime for Zoho's printed time, or ``None`` when it cannot be known.

    An abbreviation with one meaning (or an explicit ``+05:30``) is read at once. An
    ambiguous one (CST: Chicago or Shanghai) needs ``between``, the moments the time must
    lie between (a sync's trigger, and when its end was seen): the one reading inside it,
    give or take 5 minutes of clock skew, is taken; none or several give ``None``. Month
    names are read in English whatever the locale.

    >>> parse_zoho_time("03 August, 2024 03:39:16 PM JST").isoformat()
    '2024-08-03T15:39:16+09:00'
    >>> parse_zoho_time("03 August, 2024 03:39:16 PM CST") is None  # Chicago or Shanghai?
    True
    """
    if not isinstance(text, str):
        return None
    match = _TIME_RE.match(text)
    if match is None:
        return None
    day, month_name, year, hour, minute, second, half, abbr, off_h, off_m = match.groups()
    month = _MONTHS.get(month_name.lower())
    if month is None:
        return None
    hour12 = int(hour)
    if not 1 <= hour12 <= 12:
        return None
    hour24 = hour12 % 12 + (12 if half.upper() == "PM" else 0)
    try:
        naive = datetime(int(year), month, int(day), hour24, int(minute), int(second))
    except ValueError:
        return None
    if off_h is not None:
        sign = -1 if off_h.startswith("-") else 1
        offset = sign * timedelta(hours=abs(int(off_h)), minutes=int(off_m))
        if abs(offset) >= timedelta(hours=24):
            return None
        return naive.replace(tzinfo=timezone(offset))
    readings = [naive.replace(tzinfo=timezone(o)) for o in zone_offsets(abbr or "")]
    if len(readings) == 1:
        return readings[0]
    if between is None or not readings:
        return None
    earliest, latest = between
    fitting = [r for r in readings if earliest - SKEW <= r <= latest + SKEW]
    return fitting[0] if len(fitting) == 1 else None

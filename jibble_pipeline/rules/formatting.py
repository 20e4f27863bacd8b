"""Durations as people read them."""

from __future__ import annotations

import math


def format_hours(seconds: float) -> str:
    """Seconds as ``h:mm`` rounded to the nearest minute (half a minute rounds up).

    >>> format_hours(5400), format_hours(0), format_hours(36000), format_hours(3599.6)
    ('1:30', '0:00', '10:00', '1:00')
    """
    minutes = math.floor(abs(float(seconds)) / 60 + 0.5)
    hours, rest = divmod(minutes, 60)
    sign = "-" if seconds < 0 and minutes else ""
    return f"{sign}{hours}:{rest:02d}"

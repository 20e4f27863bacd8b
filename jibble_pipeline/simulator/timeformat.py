"""Jibble's text formats for instants, local times and UTC offsets, as epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MS_PER_DAY = 86_400_000


@lru_cache(maxsize=100_000)
def _day_text(day_number: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + day_number).isoformat()


def utc_text(ms: int) -> str:
    """``2025-01-06T01:02:03.000Z`` for an instant in epoch milliseconds."""
    day, rest = divmod(ms, MS_PER_DAY)
    seconds, milli = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_day_text(day)}T{hours:02d}:{minutes:02d}:{seconds:02d}.{milli:03d}Z"


def wall_text(ms: int) -> str:
    """``2025-01-06T09:02:03`` for a wall clock given as milliseconds since the epoch's midnight."""
    day, rest = divmod(ms // 1000, 86_400)
    hours, seconds = divmod(rest, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_day_text(day)}T{hours:02d}:{minutes:02d}:{seconds:02d}"


@lru_cache(maxsize=256)
def offset_suffix(offset_seconds: int) -> str:
    """``+08:00`` / ``-05:00`` / ``+05:30``."""
    sign = "-" if offset_seconds < 0 else "+"
    hours, minutes = divmod(abs(offset_seconds) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


@lru_cache(maxsize=256)
def offset_duration(offset_seconds: int) -> str:
    """ISO 8601 duration of a UTC offset: ``PT8H``, ``-PT5H``, ``PT5H30M``, ``PT0S``."""
    if offset_seconds == 0:
        return "PT0S"
    hours, minutes = divmod(abs(offset_seconds) // 60, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return ("-" if offset_seconds < 0 else "") + text


def instant_ms(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 instant; no zone means UTC, a bare date means midnight."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def datetime_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def ms_datetime(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL

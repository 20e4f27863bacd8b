"""Jibble's own totals (the time-attendance host's ``TrackedTimeReport``), read into plain values.

Some plans refuse the report (402 ``feature_restricted_subscription``) and some tenants do not
have it (404): the client answers those with ``ReportUnavailable`` (a reason people read), not
an exception, so a caller can say "skipped" without parsing errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

_ISO_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
# .NET's TimeSpan text, which some Jibble answers use: [-][d.]hh:mm:ss[.fffffff]
_TIMESPAN = re.compile(
    r"^(?P<sign>-)?(?:(?P<days>\d+)\.)?(?P<hours>\d+):(?P<minutes>\d{2}):(?P<seconds>\d{2}(?:\.\d+)?)$"
)


@dataclass(frozen=True)
class ReportUnavailable:
    """The report cannot be had from this tenant; ``reason`` says why, for people."""

    reason: str
    status: int


def parse_duration_seconds(text: str) -> float:
    """Seconds of an ISO 8601 duration (``PT38H12M5S``, ``P1DT2H``, ``PT0S``) or a TimeSpan
    (``38:12:05``, ``1.02:00:00``).

    >>> parse_duration_seconds("PT38H12M5S"), parse_duration_seconds("P1DT30M")
    (137525.0, 88200.0)
    >>> parse_duration_seconds("PT0.5S"), parse_duration_seconds("1.02:03:04")
    (0.5, 93784.0)
    """
    value = text.strip()
    match = _ISO_DURATION.match(value) or _TIMESPAN.match(value)
    if match is None or value in ("P", "PT", "-P", "-PT") or value.endswith("T"):
        raise ValueError(f"{text!r} is not a duration like PT38H12M5S")
    seconds = (
        int(match["days"] or 0) * 86_400
        + int(match["hours"] or 0) * 3600
        + int(match["minutes"] or 0) * 60
        + float(match["seconds"] or 0)
    )
    return -seconds if match["sign"] else seconds


def logged_seconds(hour_entries: Iterable[Mapping[str, Any]]) -> list[tuple[str, date, float]]:
    """(person id, work date, seconds) of each Active hour entry (hours logged as durations:
    ``duration`` an ISO 8601 duration or a TimeSpan; the date ``belongsToDate`` or
    ``date``); entries that say neither are left out."""
    logged = []
    for entry in hour_entries:
        if entry.get("status") not in (None, "Active"):
            continue
        person, day = entry.get("personId"), entry.get("belongsToDate") or entry.get("date")
        try:
            work_date = date.fromisoformat(str(day)[:10])
            seconds = parse_duration_seconds(str(entry.get("duration")))
        except ValueError:
            continue
        if isinstance(person, str):
            logged.append((person, work_date, seconds))
    return logged


def duration_format(rows: Iterable[Mapping[str, Any]]) -> str | None:
    """How a report writes its durations: ``ISO 8601`` (``PT38H12M5S``) or ``TimeSpan``
    (``1.02:03:04``); None when it has no row to tell."""
    for row in rows:
        tracked = row.get("trackedTime", row.get("time"))
        if isinstance(tracked, str):
            return "TimeSpan" if _TIMESPAN.match(tracked.strip()) else "ISO 8601"
    return None


def tracked_seconds_by_member(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Each member's ``trackedTime`` in seconds, from a ``groupBy=Member`` report's rows (the
    person id is the row's ``id``, or its subject's)."""
    totals: dict[str, float] = {}
    for row in rows:
        subject = row.get("subject")
        person = row.get("id") or (subject.get("id") if isinstance(subject, Mapping) else None)
        tracked = row.get("trackedTime", row.get("time"))
        if not isinstance(person, str) or not isinstance(tracked, str):
            raise ValueError(f"a report row without a member id or trackedTime: {dict(row)!r}")
        totals[person] = totals.get(person, 0.0) + parse_duration_seconds(tracked)
    return totals

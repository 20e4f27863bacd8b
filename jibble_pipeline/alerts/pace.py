"""Clients behind their contract's pace, mid-week (docs/rules.md, Daily operations alert):
pure, no I/O.

On the alert of the day before ``JIBBLE_ALERT_PACE_DAY`` (the alert sent that morning), each
client with a contract has its week-to-date hours (Monday to the alert's work date)
projected over the week's working days: ``delivered / working days so far × working days of
the week``. A projection below the contract by more than ``JIBBLE_ALERT_PACE_MARGIN``
percent names the client.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from jibble_pipeline.rules.formatting import format_hours


@dataclass(frozen=True)
class ClientPace:
    """A client's week so far against its contract."""

    client: str
    delivered_seconds: int
    contracted_seconds: int
    first: date  # Monday
    last: date  # the alert's work date
    working_days_so_far: int
    working_days_in_week: int

    @property
    def projected_seconds(self) -> int:
        share = self.working_days_so_far / self.working_days_in_week
        return round(self.delivered_seconds / share)

    @property
    def projected_percent(self) -> float:
        return 100 * self.projected_seconds / self.contracted_seconds

    @property
    def text(self) -> str:
        """``30:30 delivered Mon 6 – Tue 7 Jan: on pace for 76:15 of 200:00 (38.1 %)``."""
        span = f"{self.first:%a} {self.first.day} – {self.last:%a} {self.last.day} {self.last:%b}"
        return (
            f"{format_hours(self.delivered_seconds)} delivered {span}: on pace for "
            f"{format_hours(self.projected_seconds)} of {format_hours(self.contracted_seconds)}"
            f" contracted ({self.projected_percent:.1f} %)"
        )


def is_pace_day(day: date, pace_weekday: int | None) -> bool:
    """Whether the alert of work date ``day`` (sent the morning after) checks the pace;
    ``pace_weekday`` is the ISO weekday the alert is sent on (Wednesday = 3), None: never."""
    return pace_weekday is not None and (day + timedelta(days=1)).isoweekday() == pace_weekday


def behind_pace(
    day: date,
    delivered: Mapping[str, int],
    contracts: Mapping[str, int],
    names: Mapping[str, str],
    working_days: Sequence[int],
    holidays: Collection[date] = (),
    margin_percent: float = 10.0,
) -> list[ClientPace]:
    """The clients (by email) whose week to ``day`` projects below their contract's seconds
    (``contracts``) by more than ``margin_percent``; ``delivered``: seconds Monday..``day``.

    >>> week = dict(working_days=[1, 2, 3, 4, 5])
    >>> [p.client for p in behind_pace(date(2025, 1, 7), {"a": 8 * 3600, "b": 20 * 3600},
    ...  {"a": 40 * 3600, "b": 40 * 3600}, {"a": "A", "b": "B"}, **week)]
    ['A']
    """
    monday = day - timedelta(days=day.weekday())
    week = [monday + timedelta(days=n) for n in range(7)]
    working = [d for d in week if d.isoweekday() in working_days and d not in holidays]
    so_far = sum(d <= day for d in working)
    if not so_far:
        return []
    found = []
    for email, contracted in sorted(contracts.items(), key=lambda c: names[c[0]].lower()):
        pace = ClientPace(
            names[email], delivered.get(email, 0), contracted, monday, day, so_far, len(working)
        )
        if pace.projected_seconds < contracted * (1 - margin_percent / 100):
            found.append(pace)
    return found

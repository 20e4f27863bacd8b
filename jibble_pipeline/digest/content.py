"""A client's week, built from the warehouse's DataFrames: pure, no I/O.

Hours come from ``weekly_hours`` (complete work sessions; docs/rules.md, Weekly hours) of the
client's groups; hours per day and the Notes come from the week's ``sessions``. A session
belongs to a client through its ``group_id``: the group the agent was in when it started.
Open and incomplete sessions count no hours (docs/rules.md, Sessions); they and automatic clock-outs
are listed in the Notes with the start in the agent's own local time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from jibble_pipeline.digest.directory.clients import Client, Contract
from jibble_pipeline.rules.formatting import format_hours
from jibble_pipeline.warehouse.display_names import Names

NoteKind = Literal["incomplete", "open", "auto_out"]
NOTE_LABELS: dict[str, str] = {
    "incomplete": "No clock-out (incomplete)",
    "open": "Still clocked in (open)",
    "auto_out": "Automatic clock-out",
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class ActivityHours(_Model):
    activity: str
    seconds: int
    activity_id: str | None = None  # None: no activity (or a digest stored before ids)


class AgentHours(_Model):
    person_id: str
    agent: str
    groups: list[str]
    seconds: int
    activities: list[ActivityHours]


class Delivery(_Model):
    """Hours delivered against a contract's: the share, and the shortfall (negative: over)."""

    delivered_seconds: int
    contracted_seconds: int
    contract_label: str  # ``3 seats × 40:00``, ``120:00 a week``

    @property
    def percent(self) -> float:
        return 100 * self.delivered_seconds / self.contracted_seconds

    @property
    def shortfall_seconds(self) -> int:
        return self.contracted_seconds - self.delivered_seconds

    @property
    def text(self) -> str:
        """``112:30 of 120:00 contracted (3 seats × 40:00): 93.8 %, short 7:30``.

        >>> Delivery(delivered_seconds=405000, contracted_seconds=432000,
        ...          contract_label="3 seats × 40:00").text
        '112:30 of 120:00 contracted (3 seats × 40:00): 93.8 %, short 7:30'
        >>> Delivery(delivered_seconds=7200, contracted_seconds=3600, contract_label="x").text
        '2:00 of 1:00 contracted (x): 200.0 %, over by 1:00'
        >>> Delivery(delivered_seconds=35980, contracted_seconds=36000, contract_label="x").text
        '10:00 of 10:00 contracted (x): 99.9 %, met'
        """
        short = self.shortfall_seconds
        gap = "met"  # within half a minute: the figures print the same
        if format_hours(abs(short)) != "0:00":
            gap = f"short {format_hours(short)}" if short > 0 else f"over by {format_hours(-short)}"
        return (
            f"{format_hours(self.delivered_seconds)} of {format_hours(self.contracted_seconds)}"
            f" contracted ({self.contract_label}): {self.percent:.1f} %, {gap}"
        )


def delivery(delivered_seconds: int, contract: Contract | None) -> Delivery | None:
    """Delivered against ``contract``; None without one (or with a contract of no hours)."""
    if contract is None or contract.seconds <= 0:
        return None
    return Delivery(
        delivered_seconds=delivered_seconds,
        contracted_seconds=contract.seconds,
        contract_label=contract.label,
    )


class DayHours(_Model):
    day: date
    seconds: int


class Note(_Model):
    kind: NoteKind
    person_id: str
    agent: str
    group: str
    activity: str
    start_local: datetime  # the agent's wall clock
    offset_minutes: int | None

    @property
    def label(self) -> str:
        return NOTE_LABELS[self.kind]

    @property
    def start_text(self) -> str:
        """``Tue 7 Jan 09:00 (UTC+08:00)``."""
        moment, zone = self.start_local, utc_offset(self.offset_minutes)
        return f"{moment:%a} {moment.day} {moment:%b} {moment:%H:%M} ({zone})"


class ClientDigest(_Model):
    week_start: date
    client_email: str
    client_name: str
    group_ids: list[str]
    group_names: list[str]
    total_seconds: int
    agents: list[AgentHours]
    days: list[DayHours]
    notes: list[Note]
    attachments: list[str] = []  # file names of the week's exports the email carries
    delivery: Delivery | None = None  # against the client's contract, when it has one

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)

    @property
    def week_label(self) -> str:
        return week_label(self.week_start)


def week_label(week_start: date) -> str:
    """``6 Jan – 12 Jan 2025`` (both years shown when they differ).

    >>> week_label(date(2025, 1, 6)), week_label(date(2024, 12, 30))
    ('6 Jan – 12 Jan 2025', '30 Dec 2024 – 5 Jan 2025')
    """
    first, last = week_start, week_start + timedelta(days=6)
    left = f"{first.day} {first:%b}" + (f" {first.year}" if first.year != last.year else "")
    return f"{left} – {last.day} {last:%b} {last.year}"


def utc_offset(minutes: int | None) -> str:
    """``UTC+08:00``, ``UTC-05:00``, ``UTC+05:30``; ``UTC`` when unknown.

    >>> utc_offset(480), utc_offset(-300), utc_offset(330), utc_offset(None)
    ('UTC+08:00', 'UTC-05:00', 'UTC+05:30', 'UTC')
    """
    if minutes is None:
        return "UTC"
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(int(minutes)), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def local_start(row: Mapping) -> tuple[datetime, int | None]:
    """A session's start on the agent's wall clock, and its UTC offset in minutes."""
    offset = row.get("offset_minutes")
    offset = None if offset is None or pd.isna(offset) else int(offset)
    local = row.get("start_local")
    if local is not None and not pd.isna(local):
        return pd.Timestamp(local).to_pydatetime().replace(tzinfo=None), offset
    start = pd.Timestamp(row["start_utc"]).tz_convert("UTC")
    return (start + pd.Timedelta(minutes=offset or 0)).to_pydatetime().replace(tzinfo=None), offset


def client_name(client: Client, names: Names) -> str:
    if client.name:
        return client.name
    return ", ".join(names.group(g) for g in client.group_ids) or client.email


def week_sessions(sessions: pd.DataFrame, week_start: date) -> pd.DataFrame:
    days = pd.Series(sessions["belongs_to_date"])
    inside = (days >= week_start) & (days <= week_start + timedelta(days=6))
    return sessions[inside.to_numpy(dtype=bool)]


def build_client_digest(
    week_start: date,
    client: Client,
    weekly: pd.DataFrame,
    sessions: pd.DataFrame,
    names: Names,
) -> ClientDigest:
    """The digest of ``client`` for the week starting ``week_start`` (a Monday).

    ``weekly``: ``weekly_hours`` rows; ``sessions``: ``sessions`` rows; either may hold other
    weeks and groups, which are left out."""
    groups = set(client.group_ids)
    hours = weekly[(weekly["week_start"] == week_start) & weekly["group_id"].isin(groups)]
    mine = week_sessions(sessions, week_start)
    mine = mine[mine["group_id"].isin(groups)]

    agents = []
    for person_id, rows in hours.groupby("person_id", sort=False):
        per_activity = rows.groupby("activity_id", dropna=False)["work_seconds"].sum()
        activities = [
            ActivityHours(
                activity=names.activity(_text(activity_id)),
                seconds=int(seconds),
                activity_id=_text(activity_id),
            )
            for activity_id, seconds in per_activity.items()
            if seconds > 0
        ]
        activities.sort(key=lambda a: (-a.seconds, a.activity, a.activity_id or ""))
        group_names = sorted({names.group(g) for g in rows["group_id"]})
        agents.append(
            AgentHours(
                person_id=str(person_id),
                agent=names.agent(str(person_id)),
                groups=group_names,
                seconds=int(rows["work_seconds"].sum()),
                activities=activities,
            )
        )
    agents.sort(key=lambda a: (-a.seconds, a.agent.lower(), a.person_id))

    complete_work = mine[(mine["status"] == "complete") & (mine["kind"] == "work")]
    per_day = complete_work.groupby("belongs_to_date")["duration_seconds"].sum()
    days = [
        DayHours(day=day, seconds=int(per_day.get(day, 0)))
        for day in (week_start + timedelta(days=n) for n in range(7))
    ]

    flagged = mine[mine["status"].isin(["open", "incomplete"]) | mine["auto_out"].astype(bool)]
    notes = []
    for row in flagged.sort_values(["start_utc", "person_id"]).to_dict(orient="records"):
        start, offset = local_start(row)
        kind: NoteKind = row["status"] if row["status"] in ("open", "incomplete") else "auto_out"
        notes.append(
            Note(
                kind=kind,
                person_id=str(row["person_id"]),
                agent=names.agent(str(row["person_id"])),
                group=names.group(row["group_id"]),
                activity=names.activity(_text(row["activity_id"]), str(row["kind"])),
                start_local=start,
                offset_minutes=offset,
            )
        )
    total = int(hours["work_seconds"].sum())
    return ClientDigest(
        week_start=week_start,
        client_email=client.email,
        client_name=client_name(client, names),
        group_ids=list(client.group_ids),
        group_names=[names.group(g) for g in client.group_ids],
        total_seconds=total,
        delivery=delivery(total, client.contract),
        agents=agents,
        days=days,
        notes=notes,
    )


def build_week_digests(
    week_start: date,
    clients: Sequence[Client],
    weekly: pd.DataFrame,
    sessions: pd.DataFrame,
    names: Names,
) -> list[ClientDigest]:
    """One digest per client for the week (clients with no hours too: they hear "0:00")."""
    hours = weekly[weekly["week_start"] == week_start]
    mine = week_sessions(sessions, week_start)
    return [build_client_digest(week_start, c, hours, mine, names) for c in clients]


def groups_without_client(
    weekly: pd.DataFrame, clients: Sequence[Client], week_start: date
) -> list[str]:
    """Groups with hours in the week that no client receives (no digest covers them)."""
    covered = {g for c in clients for g in c.group_ids}
    hours = weekly[(weekly["week_start"] == week_start) & (weekly["work_seconds"] > 0)]
    return sorted({g for g in hours["group_id"] if g is not None and g not in covered})


def _text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)

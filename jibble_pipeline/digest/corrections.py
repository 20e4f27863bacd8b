"""Corrections of weeks already reported (docs/rules.md, Corrections): pure, no I/O.

A client was told a week's figures (the latest version of the as-reported ledger); the week
as it stands now is the digest built today. Where an agent's hours on an activity moved by
more than the tolerance, the week has changed, and the client is told again: once the week
has been quiet for a while (a burst of edits makes one correction), and only while it is
recent enough (older weeks go to the operations alert and the site instead).

Each changed row names the causes the warehouse can show, from the agent's entries of the
week that landed after the report (``CHANGE_COLUMNS``): entries edited, archived or added
late, sessions closed by Jibble's automatic clock-out, and the agent's group corrected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from jibble_pipeline.digest.content import ClientDigest, Delivery

CAUSES: dict[str, str] = {
    "edited": "entries edited after the report",
    "archived": "entries archived",
    "added": "entries added late",
    "auto_out": "a session closed by an automatic clock-out after the report",
    "group": "the agent's group corrected",
}
EDITED_AFTER = pd.Timedelta(seconds=1)  # updated this long after its creation: edited
# The agent's entries of the week, as ``digest/ledger.py`` reads them (``activity_id``:
# the entry's own, else the one of the session it ends).
CHANGE_COLUMNS = [
    "entry_id", "person_id", "type", "activity_id", "status", "client_type", "created_at",
    "updated_at", "fetched_at", "removed_at",
]  # fmt: skip


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class RowChange(_Model):
    """An agent's hours on an activity, as reported and now, with what explains the change."""

    person_id: str
    agent: str
    activity_id: str | None
    activity: str
    before_seconds: int
    after_seconds: int
    causes: list[str] = []  # keys of CAUSES

    @property
    def cause_text(self) -> str:
        return "; ".join(CAUSES[c] for c in self.causes) or "not recorded in the entries"


class DayChange(_Model):
    day: date
    before_seconds: int
    after_seconds: int


class Correction(_Model):
    """Version ``version`` of a client's week: what changed since version ``previous``."""

    week_start: date
    client_email: str
    client_name: str
    version: int
    previous: int
    previous_reported_at: datetime
    rows: list[RowChange]
    days: list[DayChange]
    total_before: int
    total_after: int
    delivery: Delivery | None = None  # now, against the contract

    @property
    def number(self) -> int:
        """The correction's number: the first after the digest is 1."""
        return self.version - 1

    @property
    def causes(self) -> list[str]:
        return sorted({c for row in self.rows for c in row.causes}, key=list(CAUSES).index)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


@dataclass(frozen=True)
class Reported:
    """The latest version of a client's week in the ledger."""

    version: int
    reported_at: datetime
    digest: ClientDigest


@dataclass(frozen=True)
class Policy:
    """``tolerance_seconds``: an agent-activity moving by more is a change. ``quiet``: how
    long the week's entries must have stayed as they are. ``cutoff_weeks``: weeks ended more
    than this many weeks ago are not corrected by email."""

    tolerance_seconds: float = 60
    quiet: timedelta = timedelta(hours=2)
    cutoff_weeks: int = 8


Verdict = Literal["unchanged", "waiting", "past_cutoff", "send"]


@dataclass(frozen=True)
class Decision:
    """What to do about a client's week; with a correction, the digest now (``digest``)."""

    client_email: str
    verdict: Verdict
    correction: Correction | None = None
    wait_until: datetime | None = None
    digest: ClientDigest | None = None


def _activity_hours(digest: ClientDigest) -> dict[tuple[str, str | None], tuple[str, str, int]]:
    """(person, activity id) -> (agent, activity, seconds) of a digest."""
    return {
        (agent.person_id, activity.activity_id): (agent.agent, activity.activity, activity.seconds)
        for agent in digest.agents
        for activity in agent.activities
    }


def changed_rows(
    before: ClientDigest, after: ClientDigest, tolerance_seconds: float
) -> list[RowChange]:
    """The agent-activity rows whose hours moved by more than ``tolerance_seconds``, in the
    order of the current digest, then rows gone from it."""
    old, new = _activity_hours(before), _activity_hours(after)
    rows = []
    for key in [*new, *(k for k in old if k not in new)]:
        agent, activity, after_seconds = new.get(key) or (*old[key][:2], 0)
        before_seconds = old[key][2] if key in old else 0
        if abs(after_seconds - before_seconds) > tolerance_seconds:
            rows.append(
                RowChange(
                    person_id=key[0],
                    agent=agent,
                    activity_id=key[1],
                    activity=activity,
                    before_seconds=before_seconds,
                    after_seconds=after_seconds,
                )
            )
    return rows


def _instant(value: object) -> pd.Timestamp | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value)


def entry_cause(entry: Mapping) -> str:
    """Why an entry that landed changed after a report differs from what the report saw.

    Only the entry's own fields decide, never Jibble's clock against ours: archived (or gone
    from Jibble); else edited, when Jibble updated it after creating it; else it is new to
    the warehouse: added late, or, for Jibble's own clock-out, a session closed by it.

    >>> entry = dict(type="Out", status="Active", client_type="Web", removed_at=None,
    ...   created_at="2025-01-10T09:00Z", updated_at="2025-01-14T09:00Z")
    >>> entry_cause(entry), entry_cause({**entry, "status": "Archived"})
    ('edited', 'archived')
    >>> new = {**entry, "updated_at": entry["created_at"]}
    >>> entry_cause(new), entry_cause({**new, "client_type": "AutoOut"})
    ('added', 'auto_out')
    """
    if _instant(entry.get("removed_at")) is not None or (entry.get("status") or "Active") != (
        "Active"
    ):
        return "archived"
    created, updated = _instant(entry.get("created_at")), _instant(entry.get("updated_at"))
    if created is None or updated is None or updated - created > EDITED_AFTER:
        return "edited"
    if entry.get("type") == "Out" and entry.get("client_type") == "AutoOut":
        return "auto_out"
    return "added"


def landed_after(changes: pd.DataFrame, moment: datetime) -> pd.DataFrame:
    """The entries of ``changes`` that landed changed (or were found gone) after ``moment``,
    on the warehouse's own clock."""
    landed = pd.concat(
        [pd.to_datetime(changes[c], utc=True) for c in ("fetched_at", "removed_at")], axis=1
    ).max(axis=1)
    return changes[(landed > pd.Timestamp(moment)).to_numpy(dtype=bool)]


def with_causes(
    rows: list[RowChange],
    changes: pd.DataFrame,
    reported_at: datetime,
    before: ClientDigest,
    after: ClientDigest,
) -> list[RowChange]:
    """``rows`` with their causes: the agent's entries that landed changed after
    ``reported_at`` (an entry of another activity than the row's does not count; one whose
    activity is not known counts for every row of the agent), and the agent's groups, when
    they differ between the two digests (and no entry explains a row, or the agent is in
    both)."""
    causes: dict[str, list[tuple[str | None, str]]] = {}
    for entry in landed_after(changes, reported_at).to_dict(orient="records"):
        activity = entry.get("activity_id")
        activity = None if activity is None or pd.isna(activity) else str(activity)
        causes.setdefault(str(entry["person_id"]), []).append((activity, entry_cause(entry)))
    groups_before = {a.person_id: set(a.groups) for a in before.agents}
    groups_after = {a.person_id: set(a.groups) for a in after.agents}
    named = []
    for row in rows:
        found = causes.get(row.person_id, [])
        own = {c for activity, c in found if activity in (None, row.activity_id)}
        was, now = groups_before.get(row.person_id, set()), groups_after.get(row.person_id, set())
        if was != now and (not own or (was and now)):
            own.add("group")
        named.append(row.model_copy(update={"causes": sorted(own, key=list(CAUSES).index)}))
    return named


def is_past_cutoff(week_start: date, now: datetime, cutoff_weeks: int) -> bool:
    """Whether the week ended more than ``cutoff_weeks`` weeks before ``now``.

    >>> now = datetime.fromisoformat("2025-03-10T12:00:00+00:00")
    >>> is_past_cutoff(date(2025, 1, 6), now, 8), is_past_cutoff(date(2025, 1, 13), now, 8)
    (True, False)
    """
    return now.date() - (week_start + timedelta(days=6)) > timedelta(weeks=cutoff_weeks)


def quiet_until(last_change: datetime | None, quiet: timedelta) -> datetime | None:
    """When the week will have been quiet long enough (None: no change landed at all)."""
    return None if last_change is None else last_change + quiet


def decide(
    reported: Reported,
    current: ClientDigest,
    changes: pd.DataFrame,
    last_change: datetime | None,
    now: datetime,
    policy: Policy,
    version: int,
) -> Decision:
    """What to do about a client's week: nothing (unchanged, or within the tolerance), wait
    for it to be quiet, note it for operations (past the cut-off), or send correction
    ``version``."""
    before = reported.digest
    rows = changed_rows(before, current, policy.tolerance_seconds)
    if not rows:
        return Decision(current.client_email, "unchanged")
    until = quiet_until(last_change, policy.quiet)
    if until is not None and now < until:
        return Decision(current.client_email, "waiting", wait_until=until)
    days_before = {d.day: d.seconds for d in before.days}
    correction = Correction(
        week_start=current.week_start,
        client_email=current.client_email,
        client_name=current.client_name,
        version=version,
        previous=reported.version,
        previous_reported_at=reported.reported_at,
        rows=with_causes(rows, changes, reported.reported_at, before, current),
        days=[
            DayChange(day=d.day, before_seconds=days_before.get(d.day, 0), after_seconds=d.seconds)
            for d in current.days
            if d.seconds != days_before.get(d.day, 0)
        ],
        total_before=before.total_seconds,
        total_after=current.total_seconds,
        delivery=current.delivery,
    )
    verdict: Verdict = (
        "past_cutoff" if is_past_cutoff(current.week_start, now, policy.cutoff_weeks) else "send"
    )
    return Decision(current.client_email, verdict, correction, digest=current)


def ready_weeks(changed: pd.DataFrame, now: datetime, quiet: timedelta) -> dict[date, str]:
    """Of the changed client-weeks (``week_start``, ``client_email``, ``last_change``: when an
    entry of theirs last landed changed), the weeks with a client quiet for ``quiet``, each
    with a fingerprint of its changes (the same changes, the same fingerprint)."""
    ready: dict[date, list[str]] = {}
    for row in changed.to_dict(orient="records"):
        last = row["last_change"]
        last = None if last is None or pd.isna(last) else pd.Timestamp(last).to_pydatetime()
        until = quiet_until(last, quiet)
        if until is None or now >= until:
            ready.setdefault(row["week_start"], []).append(f"{row['client_email']}@{last}")
    return {
        week: hashlib.sha256("|".join(sorted(parts)).encode()).hexdigest()[:12]
        for week, parts in ready.items()
    }

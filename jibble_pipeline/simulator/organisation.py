"""A deterministic synthetic Jibble organisation: agents, client groups, activities and punches.

The same seed gives the same people, groups, activities, ids and timestamps. Time entries are
generated per work date (``belongsToDate``) on first use and kept in per-date buckets, so a
query for a date range reads only those dates. An entry exists once its ``time`` and
``createdAt`` are not after the organisation's "now"; entries edited or archived later show
their earlier version until the edit's ``updatedAt`` is reached. So at a given "now" the
dataset is fixed, and a moving "now" makes the day in progress grow like the real one.

This module keeps that state and its mutations (edits, archives, deletes, new entries, people
moving group); ``workspace`` makes the workspace, ``generate`` the punches of a date, ``fields``
and ``names`` hold the API's field schemas and the names drawn from.
"""

from __future__ import annotations

import random
import threading
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from jibble_pipeline.simulator.generate import (
    GeneratedEntry,
    generate_day,
    hour_entries_of_day,
    time_fields,
)
from jibble_pipeline.simulator.timeformat import datetime_ms, instant_ms, ms_datetime, utc_text
from jibble_pipeline.simulator.workspace import build_workspace, seeded_uuid


@dataclass
class _DayBucket:
    """The entries of one work date, in the order they come into existence."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    visible_from: list[int] = field(default_factory=list)  # ms, parallel to entries
    # id -> (ms of the later revision, the entry as it was before it)
    earlier_versions: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def rebuild(self) -> None:
        keyed = sorted(
            ((_visible_from(e), e["id"], e) for e in self.entries), key=lambda k: (k[0], k[1])
        )
        self.entries = [e for _, _, e in keyed]
        self.visible_from = [v for v, _, _ in keyed]

    @classmethod
    def of(cls, generated: Iterable[GeneratedEntry]) -> _DayBucket:
        """The bucket of a freshly generated work date."""
        keyed: list[tuple[int, str, dict[str, Any]]] = []
        earlier_versions: dict[str, tuple[int, dict[str, Any]]] = {}
        for visible_from, entry, earlier in generated:
            keyed.append((visible_from, entry["id"], entry))
            if earlier is not None:
                earlier_versions[entry["id"]] = earlier
        keyed.sort(key=lambda k: (k[0], k[1]))
        return cls([k[2] for k in keyed], [k[0] for k in keyed], earlier_versions)

    def visible(self, now_ms: int) -> list[dict[str, Any]]:
        entries = self.entries[: bisect_right(self.visible_from, now_ms)]
        if not self.earlier_versions:
            return entries
        earlier = self.earlier_versions
        return [
            earlier[e["id"]][1] if e["id"] in earlier and earlier[e["id"]][0] > now_ms else e
            for e in entries
        ]

    def find(self, entry_id: str) -> int:
        return next(i for i, e in enumerate(self.entries) if e["id"] == entry_id)


def _visible_from(entry: dict[str, Any]) -> int:
    created = entry.get("createdAt")
    if not isinstance(entry.get("time"), str):  # a malformed entry: no time, or not text
        return instant_ms(created) if isinstance(created, str) else 0
    time_ms = instant_ms(entry["time"])
    return max(time_ms, instant_ms(created)) if created else time_ms


def _row_copies(entity: str) -> property:
    """A read-only property: copies of the entity's rows as they are now."""

    def copies(org: SyntheticOrganisation) -> list[dict[str, Any]]:
        return [dict(row) for row in org.records(entity)]

    return property(copies)


class SyntheticOrganisation:
    """A Jibble organisation of ``agents`` people with punches for work dates start..end.

    ``now=None`` follows the real clock (UTC, whole seconds) on each call."""

    def __init__(
        self,
        seed: int = 7,
        agents: int = 40,
        start: date = date(2025, 1, 1),
        end: date = date(2025, 3, 31),
        now: datetime | None = None,
        name: str = "Northwind Offshore Staffing",
    ):
        if agents < 1:
            raise ValueError("agents must be at least 1")
        if end < start:
            raise ValueError("end must not be before start")
        self.seed = seed
        self.agent_count = agents
        self.start = start
        self.end = end
        self._fixed_now_ms = None if now is None else _aware_ms(now)
        self._lock = threading.RLock()
        self._version = 0
        self._buckets: dict[date, _DayBucket] = {}
        self._entry_dates: dict[str, date] = {}
        self._added_ids = random.Random(f"{seed}:added entries")
        self._workspace = build_workspace(seed, agents, start, name)
        self.organization_id = self._workspace.organization_id
        self.break_ids = self._workspace.break_ids  # (short break, lunch)
        self._rows: dict[str, list[dict[str, Any]]] = {
            "People": self._workspace.people,
            "Groups": self._workspace.groups,
            "Activities": self._workspace.activities,
            "Organizations": self._workspace.organizations,
        }
        self._agents_by_person = {a.person_id: a for a in self._workspace.agents}

    # ------------------------------------------------------------------------- the clock

    @property
    def now(self) -> datetime:
        return ms_datetime(self._now_ms())

    def _now_ms(self) -> int:
        if self._fixed_now_ms is not None:
            return self._fixed_now_ms
        return datetime_ms(datetime.now(UTC).replace(microsecond=0))

    def set_now(self, moment: datetime | None) -> None:
        """Move the organisation's clock (None: follow the real clock)."""
        with self._lock:
            self._fixed_now_ms = None if moment is None else _aware_ms(moment)
            self._version += 1

    def state_key(self) -> tuple[int, int]:
        """(data version, now in ms): a query's result is fixed while this is unchanged."""
        with self._lock:
            return self._version, self._now_ms()

    # ----------------------------------------------------------------------- read access

    people = _row_copies("People")
    groups = _row_copies("Groups")
    activities = _row_copies("Activities")
    organizations = _row_copies("Organizations")

    def time_entries_for_dates(self, first: date, last: date) -> list[dict[str, Any]]:
        """Entries existing now whose belongsToDate is in [first, last], by date then creation."""
        return [dict(e) for e in self.records("TimeEntries", first, last)]

    def records(
        self,
        entity: str,
        first: date | None = None,
        last: date | None = None,
        at_ms: int | None = None,
    ) -> list[dict[str, Any]]:
        """The stored rows of an entity (read-only, not copies); time entries limited to work
        dates [first, last] and to what exists at ``at_ms`` (default: now)."""
        with self._lock:
            if entity != "TimeEntries":
                return list(self._rows[entity])  # a KeyError for an unknown entity
            now_ms = self._now_ms() if at_ms is None else at_ms
            rows: list[dict[str, Any]] = []
            for day in self._dates_between(first, last):
                bucket = self._bucket(day)
                if bucket is not None:
                    rows.extend(bucket.visible(now_ms))
            return rows

    def hour_entries(
        self, first: date | None = None, last: date | None = None, at_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Hours logged as durations (``HourEntries``) of the work dates [first, last] that
        exist at ``at_ms`` (default: now); generated, never edited."""
        with self._lock:
            now_ms = self._now_ms() if at_ms is None else at_ms
            rows: list[dict[str, Any]] = []
            for day in self._dates_between(first, last):
                if self.start <= day <= self.end:
                    rows += [
                        e
                        for e in hour_entries_of_day(self._workspace, day)
                        if instant_ms(e["createdAt"]) <= now_ms
                    ]
            return rows

    def _dates_between(self, first: date | None, last: date | None) -> list[date]:
        low = min(self.start, min(self._buckets, default=self.start))
        high = max(self.end, max(self._buckets, default=self.end))
        low = max(low, first) if first else low
        high = min(high, last) if last else high
        return [low + timedelta(days=n) for n in range((high - low).days + 1)]

    def _bucket(self, day: date) -> _DayBucket | None:
        bucket = self._buckets.get(day)
        if bucket is None and self.start <= day <= self.end:
            bucket = _DayBucket.of(generate_day(self._workspace, day))
            self._buckets[day] = bucket
            for entry in bucket.entries:
                self._entry_dates[entry["id"]] = day
        return bucket

    # ------------------------------------------------------------------------ mutations

    def edit_entry(
        self, entry_id: str, *, drop: Iterable[str] = (), **fields: Any
    ) -> dict[str, Any]:
        """Change fields of an entry as it is now; updatedAt becomes "now". A new ``time``
        recomputes localTime and offset unless they are given too (or it is not text: a
        malformed ``time`` is stored as given). ``drop`` removes fields, making the malformed
        entries a buggy client can send (no ``personId``, no ``time``)."""
        drop = set(drop)
        if drop & {"id", "belongsToDate", "createdAt"}:
            raise ValueError("entries are kept by id, belongsToDate and createdAt: keep those")
        with self._lock:
            now_ms = self._now_ms()
            day = self._locate(entry_id)
            bucket = self._buckets[day]
            current = bucket.entries[bucket.find(entry_id)]
            earlier = bucket.earlier_versions.get(entry_id)
            if earlier is not None and earlier[0] > now_ms:
                current = earlier[1]
            revised = {**current, **fields}
            if isinstance(fields.get("time"), str):
                agent = self._agents_by_person.get(revised.get("personId", ""))
                computed = time_fields(agent, instant_ms(fields["time"]))
                revised.update({k: v for k, v in computed.items() if k not in fields})
            if "updatedAt" not in fields:
                revised["updatedAt"] = utc_text(now_ms)
            for name in drop:
                revised.pop(name, None)
            self._remove(entry_id)
            self._insert(revised)
            return dict(revised)

    def archive_entry(self, entry_id: str) -> dict[str, Any]:
        return self.edit_entry(entry_id, status="Archived")

    def delete_entry(self, entry_id: str) -> None:
        """Hard delete: the entry disappears from the API."""
        with self._lock:
            self._locate(entry_id)
            self._remove(entry_id)

    def add_entry(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A new entry (``personId``, ``type`` and ``time`` required). Missing fields get the
        usual defaults: a new id, the person's localTime/offset/belongsToDate, Active status,
        createdAt/updatedAt = now."""
        missing = [name for name in ("personId", "type", "time") if name not in payload]
        if missing:
            raise ValueError(f"add_entry needs {', '.join(missing)}")
        with self._lock:
            now_text = utc_text(self._now_ms())
            agent = self._agents_by_person.get(payload["personId"])
            moment = instant_ms(payload["time"])
            computed = time_fields(agent, moment)
            entry: dict[str, Any] = {
                "id": seeded_uuid(self._added_ids),
                "organizationId": self.organization_id,
                **computed,
                "belongsToDate": computed["localTime"][:10],
                "activityId": None,
                "projectId": None,
                "breakId": None,
                "clientType": "Web",
                "status": "Active",
                "note": None,
                "createdAt": now_text,
                "updatedAt": now_text,
            }
            entry.update(payload)
            date.fromisoformat(entry["belongsToDate"])  # reject a malformed work date early
            if entry["id"] in self._entry_dates:
                raise ValueError(f"an entry with id {entry['id']!r} already exists")
            self._bucket(date.fromisoformat(entry["belongsToDate"]))
            self._insert(entry)
            return dict(entry)

    def move_person(self, person_id: str, group_id: str) -> None:
        """The person joins another client group (updatedAt becomes now)."""
        with self._lock:
            people = self._rows["People"]
            if group_id not in {g["id"] for g in self._rows["Groups"]}:
                raise KeyError(f"no group {group_id!r}")
            position = next((i for i, p in enumerate(people) if p["id"] == person_id), None)
            if position is None:
                raise KeyError(f"no person {person_id!r}")
            now_text = utc_text(self._now_ms())
            people[position] = {
                **people[position],
                "groupId": group_id,
                "updatedAt": now_text,
            }
            self._version += 1

    def _locate(self, entry_id: str) -> date:
        day = self._entry_dates.get(entry_id)
        if day is None:
            for pending in self._dates_between(None, None):
                self._bucket(pending)
            day = self._entry_dates.get(entry_id)
        if day is None:
            raise KeyError(f"no time entry {entry_id!r}")
        return day

    def _remove(self, entry_id: str) -> None:
        day = self._entry_dates.pop(entry_id)
        bucket = self._buckets[day]
        del bucket.entries[bucket.find(entry_id)]
        bucket.earlier_versions.pop(entry_id, None)
        bucket.rebuild()
        self._version += 1

    def _insert(self, entry: dict[str, Any]) -> None:
        day = date.fromisoformat(entry["belongsToDate"])
        bucket = self._buckets.setdefault(day, _DayBucket())
        bucket.entries.append(entry)
        bucket.rebuild()
        self._entry_dates[entry["id"]] = day
        self._version += 1


def _aware_ms(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return datetime_ms(moment)

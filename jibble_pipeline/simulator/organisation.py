"""A deterministic synthetic Jibble organisation: agents, client groups, activities and punches.

The same seed gives the same people, groups, activities, ids and timestamps. Time entries are
generated per work date (``belongsToDate``) on first use and kept in per-date buckets, so a
query for a date range reads only those dates. An entry exists once its ``time`` and
``createdAt`` are not after the organisation's "now"; entries edited or archived later show
their earlier version until the edit's ``updatedAt`` is reached. So at a given "now" the
dataset is fixed, and a moving "now" makes the day in progress grow like the real one.
"""

from __future__ import annotations

import random
import threading
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jibble_pipeline.simulator.odata import FieldType
from jibble_pipeline.simulator.timeformat import (
    datetime_ms,
    instant_ms,
    ms_datetime,
    offset_duration,
    offset_suffix,
    utc_text,
    wall_text,
)

STR, DAY, INSTANT, BOOL, NUM, OBJ = (
    FieldType.STRING,
    FieldType.DATE,
    FieldType.DATETIME,
    FieldType.BOOL,
    FieldType.NUMBER,
    FieldType.OBJECT,
)
TIME_ENTRY_FIELDS: dict[str, FieldType] = {
    "id": STR,
    "personId": STR,
    "organizationId": STR,
    "type": STR,
    "time": INSTANT,
    "localTime": STR,
    "offset": STR,
    "belongsToDate": DAY,
    "activityId": STR,
    "projectId": STR,
    "breakId": STR,
    "clientType": STR,
    "status": STR,
    "note": STR,
    "createdAt": INSTANT,
    "updatedAt": INSTANT,
    "isOffline": BOOL,
    "isManual": BOOL,
    "isAutomatic": BOOL,
    "platform": OBJ,
    "coordinates": OBJ,
}
PERSON_FIELDS: dict[str, FieldType] = {
    "id": STR,
    "organizationId": STR,
    "fullName": STR,
    "preferredName": STR,
    "email": STR,
    "groupId": STR,
    "status": STR,
    "code": STR,
    "role": STR,
    "timeZone": STR,
    "weeklyHoursTarget": NUM,
    "createdAt": INSTANT,
    "updatedAt": INSTANT,
    "removedAt": INSTANT,
}
GROUP_FIELDS: dict[str, FieldType] = {
    "id": STR,
    "organizationId": STR,
    "name": STR,
    "code": STR,
    "status": STR,
    "createdAt": INSTANT,
    "updatedAt": INSTANT,
}
ACTIVITY_FIELDS: dict[str, FieldType] = {
    "id": STR,
    "organizationId": STR,
    "name": STR,
    "code": STR,
    "color": STR,
    "status": STR,
    "createdAt": INSTANT,
    "updatedAt": INSTANT,
}
ORGANIZATION_FIELDS: dict[str, FieldType] = {
    "id": STR,
    "name": STR,
    "timeZone": STR,
    "country": STR,
    "status": STR,
    "createdAt": INSTANT,
    "updatedAt": INSTANT,
}
ENTITY_FIELDS: dict[str, dict[str, FieldType]] = {
    "People": PERSON_FIELDS,
    "Groups": GROUP_FIELDS,
    "Activities": ACTIVITY_FIELDS,
    "Organizations": ORGANIZATION_FIELDS,
    "TimeEntries": TIME_ENTRY_FIELDS,
}

# Offshore-heavy, with DST zones (America/*, Europe/*) and fixed ones (Asia/*, UTC).
_ZONE_WEIGHTS = {
    "Asia/Manila": 34, "Asia/Kolkata": 14, "Asia/Karachi": 10, "America/New_York": 10,
    "America/Chicago": 8, "Europe/London": 8, "Europe/Berlin": 8, "UTC": 8,
}  # fmt: skip
# The first agents cover every zone and the shifts that cross local and UTC midnight.
_FIRST_PROFILES = [
    ("Asia/Manila", "night"),  # crosses local midnight
    ("America/New_York", "evening"),  # crosses UTC midnight
    ("Europe/London", "night"),  # crosses both, and the DST changes mid-shift
    ("Asia/Kolkata", "day"),
    ("America/Chicago", "day"),
    ("Europe/Berlin", "day"),
    ("Asia/Karachi", "evening"),
    ("UTC", "night"),
]
_SHIFT_START_HOURS = {"day": (7, 10), "evening": (14, 17), "night": (20, 23)}
_ACTIVITIES = [
    ("Inbound Calls", "INB", "#1f77b4"), ("Outbound Calls", "OUT", "#ff7f0e"),
    ("Email Support", "EML", "#2ca02c"), ("Chat Support", "CHT", "#d62728"),
    ("Data Entry", "DAT", "#9467bd"), ("Back Office", "BKO", "#8c564b"),
    ("Scheduling", "SCH", "#e377c2"), ("Quality Review", "QAR", "#7f7f7f"),
    ("Training", "TRN", "#bcbd22"), ("Team Meeting", "MTG", "#17becf"),
    ("Lead Research", "RES", "#393b79"), ("Legacy Ticketing", "LEG", "#637939"),
]  # fmt: skip
_ARCHIVED_ACTIVITY = "Legacy Ticketing"
_CLIENTS = [
    "Acme Dental",
    "Brightside Realty",
    "Cobalt Logistics",
    "Dunmore Legal",
    "Evergreen Clinics",
    "Fairway Insurance",
    "Granite Roofing",
    "Harbor Freight Brokers",
    "Ivy Tutoring",
    "Juniper Home Care",
    "Keystone Plumbing",
    "Lumen Solar",
    "Maple Accounting",
    "Northstar Movers",
    "Orchid Spa Group",
    "Pinnacle HVAC",
    "Quarry Outdoor",
    "Redwood Vets",
]
_FIRST_NAMES = [
    "Maria",
    "Jose",
    "Angel",
    "Mark",
    "Kristine",
    "Paolo",
    "Aisha",
    "Rahul",
    "Priya",
    "Ayesha",
    "Bilal",
    "Sara",
    "John",
    "Emily",
    "Hannah",
    "Lukas",
    "Sophie",
    "Oliver",
    "Grace",
    "Daniel",
]
_LAST_NAMES = [
    "Santos",
    "Reyes",
    "Cruz",
    "Bautista",
    "Garcia",
    "Sharma",
    "Patel",
    "Iyer",
    "Khan",
    "Ahmed",
    "Malik",
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Muller",
    "Schmidt",
    "Wilson",
    "Lopez",
    "Lim",
]
_CLIENT_TYPES = ["Web", "Mobile", "Desktop"]
_PLATFORMS = [
    {"clientVersion": "5.14.2", "os": "Windows 11", "deviceModel": None},
    {"clientVersion": "5.13.0", "os": "Android 14", "deviceModel": "Pixel 7"},
    {"clientVersion": "5.14.1", "os": "macOS 14.5", "deviceModel": "MacBook Air"},
]
_UTC_ZONE = ZoneInfo("UTC")
_SECOND = timedelta(seconds=1)
_MINUTE = 60_000
_HOUR = 60 * _MINUTE


@dataclass(frozen=True)
class _Agent:
    index: int
    person_id: str
    zone: ZoneInfo
    shift: str
    start_minute: int  # local wall clock of a usual clock-in, minutes after midnight
    shift_minutes: int
    activity_ids: tuple[str, ...]
    project_id: str | None
    client_type: str
    platform: dict[str, Any]
    local_time_with_offset: bool  # this agent's app writes localTime with a "+08:00" suffix


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


# (ms from which the entry exists, the entry, (ms of its later revision, the entry before it))
_GeneratedEntry = tuple[int, dict[str, Any], tuple[int, dict[str, Any]] | None]


def _visible_from(entry: dict[str, Any]) -> int:
    created = entry.get("createdAt")
    if not isinstance(entry.get("time"), str):  # a malformed entry: no time, or not text
        return instant_ms(created)
    time_ms = instant_ms(entry["time"])
    return max(time_ms, instant_ms(created)) if created else time_ms


def _uuid(rng: random.Random) -> str:
    """A version-4-looking UUID drawn from a seeded generator."""
    hexa = f"{rng.getrandbits(128):032x}"
    return f"{hexa[:8]}-{hexa[8:12]}-4{hexa[13:16]}-a{hexa[17:20]}-{hexa[20:]}"


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
        self._build_workspace(random.Random(seed))

    # ------------------------------------------------------------------ workspace objects

    def _build_workspace(self, rng: random.Random) -> None:
        self.organization_id = _uuid(rng)
        founded_ms = datetime_ms(datetime.combine(self.start, datetime.min.time(), UTC))
        founded_ms -= 120 * 24 * _HOUR
        founded = utc_text(founded_ms)
        self._organizations = [
            {
                "id": self.organization_id,
                "name": "Northwind Offshore Staffing",
                "timeZone": "Asia/Manila",
                "country": "PH",
                "status": "Active",
                "createdAt": founded,
                "updatedAt": founded,
            }
        ]
        self._activities = []
        for name, code, color in _ACTIVITIES:
            self._activities.append(
                {
                    "id": _uuid(rng),
                    "organizationId": self.organization_id,
                    "name": name,
                    "code": code,
                    "color": color,
                    "status": "Archived" if name == _ARCHIVED_ACTIVITY else "Active",
                    "createdAt": founded,
                    "updatedAt": founded,
                }
            )
        usable = [a["id"] for a in self._activities if a["status"] == "Active"]
        self.break_ids = (_uuid(rng), _uuid(rng))  # "Lunch", "Short break"

        sizes = [1, 6] if self.agent_count >= 7 else []
        while sum(sizes) < self.agent_count:
            sizes.append(rng.randint(1, 6))
        sizes[-1] -= sum(sizes) - self.agent_count
        order = list(range(self.agent_count))
        rng.shuffle(order)
        group_of: dict[int, int] = {}
        position = 0
        for group_index, size in enumerate(sizes):
            for agent_index in order[position : position + size]:
                group_of[agent_index] = group_index
            position += size

        self._groups = []
        group_activities: list[tuple[str, ...]] = []
        group_projects: list[str | None] = []
        for group_index in range(len(sizes)):
            client = _CLIENTS[group_index % len(_CLIENTS)]
            if group_index >= len(_CLIENTS):
                client = f"{client} {group_index // len(_CLIENTS) + 1}"
            group = {
                "id": _uuid(rng),
                "organizationId": self.organization_id,
                "name": client,
                "code": "".join(word[0] for word in client.split()).upper() + f"{group_index:02d}",
                "status": "Active",
                "createdAt": founded,
                "updatedAt": founded,
            }
            if group_index % 4 == 3:
                del group["code"]
            self._groups.append(group)
            group_activities.append(tuple(rng.sample(usable, rng.randint(3, 5))))
            group_projects.append(_uuid(rng) if rng.random() < 0.5 else None)

        zones, weights = list(_ZONE_WEIGHTS), list(_ZONE_WEIGHTS.values())
        self._people = []
        self._agents: list[_Agent] = []
        for index in range(self.agent_count):
            if index < len(_FIRST_PROFILES):
                zone_name, shift = _FIRST_PROFILES[index]
            else:
                zone_name = rng.choices(zones, weights)[0]
                shift = rng.choices(["day", "evening", "night"], [50, 20, 30])[0]
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
            person_id = _uuid(rng)
            group_index = group_of[index]
            low, high = _SHIFT_START_HOURS[shift]
            joined = utc_text(founded_ms + rng.randint(1, 100) * 24 * _HOUR)
            person = {
                "id": person_id,
                "organizationId": self.organization_id,
                "fullName": f"{first} {last}",
                "preferredName": first,
                "email": f"{first}.{last}.{index + 1}@agents.example.com".lower(),
                "groupId": self._groups[group_index]["id"],
                "status": "Joined",
                "code": f"AG{index + 1:03d}",
                "role": "Owner" if index == 0 else ("Admin" if index < 3 else "Member"),
                "timeZone": zone_name,
                "weeklyHoursTarget": 40,
                "createdAt": joined,
                "updatedAt": joined,
                "removedAt": None,
            }
            if index % 13 == 12:
                del person["timeZone"]  # a few people never set one
            self._people.append(person)
            self._agents.append(
                _Agent(
                    index=index,
                    person_id=person_id,
                    zone=ZoneInfo(zone_name),
                    shift=shift,
                    start_minute=rng.randint(low * 60, high * 60),
                    shift_minutes=rng.randint(480, 540),
                    activity_ids=group_activities[group_index],
                    project_id=group_projects[group_index],
                    client_type=rng.choice(_CLIENT_TYPES),
                    platform=rng.choice(_PLATFORMS),
                    local_time_with_offset=index % 5 == 4,
                )
            )
        self._agents_by_person = {a.person_id: a for a in self._agents}

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

    @property
    def people(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self._people]

    @property
    def groups(self) -> list[dict[str, Any]]:
        return [dict(g) for g in self._groups]

    @property
    def activities(self) -> list[dict[str, Any]]:
        return [dict(a) for a in self._activities]

    @property
    def organizations(self) -> list[dict[str, Any]]:
        return [dict(o) for o in self._organizations]

    def time_entries_for_dates(self, first: date, last: date) -> list[dict[str, Any]]:
        """Entries existing now whose belongsToDate is in [first, last], by date then creation."""
        return [dict(e) for e in self.records("TimeEntries", first, last)]

    def all_time_entries(self) -> list[dict[str, Any]]:
        return [dict(e) for e in self.records("TimeEntries")]

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
            if entity == "People":
                return list(self._people)
            if entity == "Groups":
                return list(self._groups)
            if entity == "Activities":
                return list(self._activities)
            if entity == "Organizations":
                return list(self._organizations)
            if entity != "TimeEntries":
                raise KeyError(entity)
            now_ms = self._now_ms() if at_ms is None else at_ms
            rows: list[dict[str, Any]] = []
            for day in self._dates_between(first, last):
                bucket = self._bucket(day)
                if bucket is not None:
                    rows.extend(bucket.visible(now_ms))
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
            bucket = self._generate_day(day)
            self._buckets[day] = bucket
            for entry in bucket.entries:
                self._entry_dates[entry["id"]] = day
        return bucket

    # ---------------------------------------------------------------------- generation

    def _generate_day(self, day: date) -> _DayBucket:
        keyed: list[tuple[int, str, dict[str, Any]]] = []
        earlier_versions: dict[str, tuple[int, dict[str, Any]]] = {}
        day_text = day.isoformat()
        for agent in self._agents:
            for visible_from, entry, earlier in self._agent_day(agent, day, day_text):
                keyed.append((visible_from, entry["id"], entry))
                if earlier is not None:
                    earlier_versions[entry["id"]] = earlier
        keyed.sort(key=lambda k: (k[0], k[1]))
        return _DayBucket([k[2] for k in keyed], [k[0] for k in keyed], earlier_versions)

    def _agent_day(self, agent: _Agent, day: date, day_text: str) -> list[_GeneratedEntry]:
        """One agent's punches of one work date: clock-in, activity switches, two short breaks
        and lunch, clock-out; now and then the irregularities real data has."""
        rng = random.Random((self.seed * 1_000_003 + agent.index) * 10_000_000 + day.toordinal())
        draw = rng.random
        if draw() < (0.93 if day.weekday() >= 5 else 0.03):
            return []  # weekends mostly off, a few absences
        start_seconds = (agent.start_minute - 20) * 60 + int(draw() * 2460)
        local_midnight = datetime.combine(day, datetime.min.time(), agent.zone)
        clock_in = datetime_ms(local_midnight + timedelta(seconds=start_seconds))
        clock_in += int(draw() * 1000)
        length = (agent.shift_minutes - 15) * _MINUTE + int(draw() * 45 * _MINUTE)
        short_break, lunch = self.break_ids
        breaks = []
        for low, spread, minutes, break_id in (
            (0.2, 0.1, 10, short_break),
            (0.45, 0.1, 30, lunch),
            (0.72, 0.08, 10, short_break),
        ):
            begin = int(length * (low + spread * draw()))
            breaks.append((begin, begin + int((minutes + draw() * minutes) * _MINUTE), break_id))
        if draw() < 0.15:
            breaks.pop()  # skipped the afternoon break
        switches: list[int] = []
        for moment in sorted(20 * _MINUTE + int(draw() * (length - 40 * _MINUTE)) for _ in "1234"):
            clear_of_breaks = all(
                not begin - 10 * _MINUTE <= moment <= end + 10 * _MINUTE for begin, end, _ in breaks
            )
            if clear_of_breaks and (not switches or moment - switches[-1] >= 10 * _MINUTE):
                switches.append(moment)
        del switches[1 + int(draw() * 4) :]

        missing_out_roll = draw()
        missing_out, auto_out = missing_out_roll < 0.012, 0.012 <= missing_out_roll < 0.027
        orphan_out, same_instant = draw() < 0.006, draw() < 0.006
        archived_switch, no_status = draw() < 0.01, draw() < 0.008
        edited_clock_in, with_note = draw() < 0.02, draw() < 0.03

        activity = rng.choice(agent.activity_ids)
        timeline: list[tuple[int, str, str | None, str | None]] = [(0, "In", activity, None)]
        switch_positions, break_returns = [], []
        marks = sorted([(m, -1) for m in switches] + [(b[0], i) for i, b in enumerate(breaks)])
        for moment, which in marks:
            if which < 0:
                activity = rng.choice([a for a in agent.activity_ids if a != activity])
                switch_positions.append(len(timeline))
                timeline.append((moment, "In", activity, None))
            else:
                begin, end, break_id = breaks[which]
                timeline.append((begin, "In", None, break_id))
                break_returns.append(len(timeline))
                timeline.append((end, "In", activity, None))
        client_types = [agent.client_type] * len(timeline)
        if auto_out:
            timeline.append((12 * _HOUR + int(draw() * _MINUTE), "Out", None, None))
            client_types.append("AutoOut")
        elif not missing_out:
            timeline.append((length, "Out", None, None))
            client_types.append(agent.client_type)
        if not missing_out and orphan_out:
            orphan_at = timeline[-1][0] + (1 + int(draw() * 30)) * _MINUTE
            timeline.append((orphan_at, "Out", None, None))
            client_types.append(agent.client_type)
        if not missing_out and same_instant:
            pair_at = timeline[-1][0] + (30 + int(draw() * 60)) * _MINUTE
            timeline += [(pair_at, "In", activity, None), (pair_at, "Out", None, None)]
            client_types += [agent.client_type] * 2

        ids = [_uuid(rng) for _ in timeline]
        if not missing_out and same_instant and ids[-2] > ids[-1]:
            ids[-2], ids[-1] = ids[-1], ids[-2]  # same instant: the In must sort first by id
        generated: list[_GeneratedEntry] = []
        for (offset, kind, activity_id, break_id), client_type, entry_id in zip(
            timeline, client_types, ids, strict=True
        ):
            moment = clock_in + offset
            created = moment + int(draw() * 2500)
            entry = {
                "id": entry_id,
                "personId": agent.person_id,
                "organizationId": self.organization_id,
                "type": kind,
                **self._time_fields(agent, moment),
                "belongsToDate": day_text,
                "activityId": activity_id,
                "projectId": agent.project_id if activity_id is not None else None,
                "breakId": break_id,
                "clientType": client_type,
                "status": "Active",
                "note": None,
                "createdAt": utc_text(created),
                "updatedAt": utc_text(created),
                "isOffline": False,
                "isManual": False,
                "isAutomatic": client_type == "AutoOut",
                "platform": agent.platform,
                "coordinates": None,
            }
            generated.append((created, entry, None))
        if with_note:
            generated[0][1]["note"] = "Covering the morning queue"
        if no_status:
            del generated[break_returns[0]][1]["status"]
        if edited_clock_in:
            created, original, _ = generated[0]
            revised_at = created + (1 + int(draw() * 40)) * _HOUR
            revised = {
                **original,
                **self._time_fields(agent, clock_in - (1 + int(draw() * 15)) * _MINUTE),
                "note": "Clock-in corrected by team lead",
                "isManual": True,
                "updatedAt": utc_text(revised_at),
            }
            generated[0] = (created, revised, (revised_at, original))
        if archived_switch and switch_positions:
            created, original, _ = generated[switch_positions[0]]
            revised_at = created + (1 + int(draw() * 40)) * _HOUR
            revised = {**original, "status": "Archived", "updatedAt": utc_text(revised_at)}
            generated[switch_positions[0]] = (created, revised, (revised_at, original))
        return generated

    @staticmethod
    def _time_fields(agent: _Agent | None, moment: int) -> dict[str, str]:
        """time/localTime/offset of an instant in the agent's zone (UTC for strangers)."""
        zone = agent.zone if agent else _UTC_ZONE
        offset_seconds = datetime.fromtimestamp(moment // 1000, zone).utcoffset() // _SECOND
        local_text = wall_text(moment + offset_seconds * 1000)
        if agent is not None and agent.local_time_with_offset:
            local_text += offset_suffix(offset_seconds)
        return {
            "time": utc_text(moment),
            "localTime": local_text,
            "offset": offset_duration(offset_seconds),
        }

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
                computed = self._time_fields(agent, instant_ms(fields["time"]))
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
            time_fields = self._time_fields(agent, moment)
            entry: dict[str, Any] = {
                "id": _uuid(self._added_ids),
                "organizationId": self.organization_id,
                **time_fields,
                "belongsToDate": time_fields["localTime"][:10],
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
            if group_id not in {g["id"] for g in self._groups}:
                raise KeyError(f"no group {group_id!r}")
            position = next((i for i, p in enumerate(self._people) if p["id"] == person_id), None)
            if position is None:
                raise KeyError(f"no person {person_id!r}")
            now_text = utc_text(self._now_ms())
            self._people[position] = {
                **self._people[position],
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

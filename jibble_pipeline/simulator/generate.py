"""The generators of the synthetic organisation, deterministic for a seed: the workspace (the
organisation, its activities, client groups and people, and the agent behind each person) and
every agent's punches of a work date."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jibble_pipeline.simulator.names import (
    ACTIVITIES,
    ARCHIVED_ACTIVITY,
    CLIENT_TYPES,
    CLIENTS,
    FIRST_NAMES,
    LAST_NAMES,
    PLATFORMS,
    ZONE_WEIGHTS,
)
from jibble_pipeline.simulator.timeformat import (
    datetime_ms,
    offset_duration,
    offset_suffix,
    utc_text,
    wall_text,
)

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
_UTC_ZONE = ZoneInfo("UTC")
_SECOND = timedelta(seconds=1)
_MINUTE = 60_000
_HOUR = 60 * _MINUTE


@dataclass(frozen=True)
class Agent:
    """How one person works: where, which shift, on what, from which app."""

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
class Workspace:
    """The rows of the workspace entities, and the agents whose punches are generated."""

    seed: int
    organization_id: str
    break_ids: tuple[str, str]  # (short break, lunch)
    organizations: list[dict[str, Any]]
    activities: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    people: list[dict[str, Any]]
    agents: list[Agent]


# (ms from which the entry exists, the entry, (ms of its later revision, the entry before it))
GeneratedEntry = tuple[int, dict[str, Any], tuple[int, dict[str, Any]] | None]


def seeded_uuid(rng: random.Random) -> str:
    """A version-4-looking UUID drawn from a seeded generator."""
    hexa = f"{rng.getrandbits(128):032x}"
    return f"{hexa[:8]}-{hexa[8:12]}-4{hexa[13:16]}-a{hexa[17:20]}-{hexa[20:]}"


def build_workspace(
    seed: int, agent_count: int, start: date, name: str = "Northwind Offshore Staffing"
) -> Workspace:
    """``agent_count`` people in client groups of 1 to 6, founded 120 days before ``start``."""
    rng = random.Random(seed)
    organization_id = seeded_uuid(rng)
    founded_ms = datetime_ms(datetime.combine(start, datetime.min.time(), UTC))
    founded_ms -= 120 * 24 * _HOUR
    founded = utc_text(founded_ms)
    organizations = [
        {
            "id": organization_id,
            "name": name,
            "timeZone": "Asia/Manila",
            "country": "PH",
            "status": "Active",
            "createdAt": founded,
            "updatedAt": founded,
        }
    ]
    activities = []
    for name, code, color in ACTIVITIES:
        activities.append(
            {
                "id": seeded_uuid(rng),
                "organizationId": organization_id,
                "name": name,
                "code": code,
                "color": color,
                "status": "Archived" if name == ARCHIVED_ACTIVITY else "Active",
                "createdAt": founded,
                "updatedAt": founded,
            }
        )
    usable = [a["id"] for a in activities if a["status"] == "Active"]
    break_ids = (seeded_uuid(rng), seeded_uuid(rng))

    sizes = [1, 6] if agent_count >= 7 else []
    while sum(sizes) < agent_count:
        sizes.append(rng.randint(1, 6))
    sizes[-1] -= sum(sizes) - agent_count
    order = list(range(agent_count))
    rng.shuffle(order)
    group_of: dict[int, int] = {}
    position = 0
    for group_index, size in enumerate(sizes):
        for agent_index in order[position : position + size]:
            group_of[agent_index] = group_index
        position += size

    groups = []
    group_activities: list[tuple[str, ...]] = []
    group_projects: list[str | None] = []
    for group_index in range(len(sizes)):
        client = CLIENTS[group_index % len(CLIENTS)]
        if group_index >= len(CLIENTS):
            client = f"{client} {group_index // len(CLIENTS) + 1}"
        group = {
            "id": seeded_uuid(rng),
            "organizationId": organization_id,
            "name": client,
            "code": "".join(word[0] for word in client.split()).upper() + f"{group_index:02d}",
            "status": "Active",
            "createdAt": founded,
            "updatedAt": founded,
        }
        if group_index % 4 == 3:
            del group["code"]
        groups.append(group)
        group_activities.append(tuple(rng.sample(usable, rng.randint(3, 5))))
        group_projects.append(seeded_uuid(rng) if rng.random() < 0.5 else None)

    zones, weights = list(ZONE_WEIGHTS), list(ZONE_WEIGHTS.values())
    people = []
    agents: list[Agent] = []
    for index in range(agent_count):
        if index < len(_FIRST_PROFILES):
            zone_name, shift = _FIRST_PROFILES[index]
        else:
            zone_name = rng.choices(zones, weights)[0]
            shift = rng.choices(["day", "evening", "night"], [50, 20, 30])[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        person_id = seeded_uuid(rng)
        group_index = group_of[index]
        low, high = _SHIFT_START_HOURS[shift]
        joined = utc_text(founded_ms + rng.randint(1, 100) * 24 * _HOUR)
        person = {
            "id": person_id,
            "organizationId": organization_id,
            "fullName": f"{first} {last}",
            "preferredName": first,
            "email": f"{first}.{last}.{index + 1}@agents.example.com".lower(),
            "phoneNumber": f"+63 917 {100 + index:03d} {index * 7919 % 10_000:04d}",
            "groupId": groups[group_index]["id"],
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
        people.append(person)
        agents.append(
            Agent(
                index=index,
                person_id=person_id,
                zone=ZoneInfo(zone_name),
                shift=shift,
                start_minute=rng.randint(low * 60, high * 60),
                shift_minutes=rng.randint(480, 540),
                activity_ids=group_activities[group_index],
                project_id=group_projects[group_index],
                client_type=rng.choice(CLIENT_TYPES),
                platform=rng.choice(PLATFORMS),
                local_time_with_offset=index % 5 == 4,
            )
        )
    return Workspace(
        seed=seed,
        organization_id=organization_id,
        break_ids=break_ids,
        organizations=organizations,
        activities=activities,
        groups=groups,
        people=people,
        agents=agents,
    )


def generate_day(workspace: Workspace, day: date) -> list[GeneratedEntry]:
    """Every agent's punches of one work date, agent after agent."""
    day_text = day.isoformat()
    return [
        generated
        for agent in workspace.agents
        for generated in _agent_day(workspace, agent, day, day_text)
    ]


def _agent_day(
    workspace: Workspace, agent: Agent, day: date, day_text: str
) -> list[GeneratedEntry]:
    """One agent's punches of one work date: clock-in, activity switches, two short breaks
    and lunch, clock-out; now and then the irregularities real data has."""
    rng = random.Random((workspace.seed * 1_000_003 + agent.index) * 10_000_000 + day.toordinal())
    draw = rng.random
    if draw() < (0.93 if day.weekday() >= 5 else 0.03):
        return []  # weekends mostly off, a few absences
    start_seconds = (agent.start_minute - 20) * 60 + int(draw() * 2460)
    local_midnight = datetime.combine(day, datetime.min.time(), agent.zone)
    clock_in = datetime_ms(local_midnight + timedelta(seconds=start_seconds))
    clock_in += int(draw() * 1000)
    length = (agent.shift_minutes - 15) * _MINUTE + int(draw() * 45 * _MINUTE)
    short_break, lunch = workspace.break_ids
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

    ids = [seeded_uuid(rng) for _ in timeline]
    if not missing_out and same_instant and ids[-2] > ids[-1]:
        ids[-2], ids[-1] = ids[-1], ids[-2]  # same instant: the In must sort first by id
    generated: list[GeneratedEntry] = []
    for (offset, kind, activity_id, entry_break), client_type, entry_id in zip(
        timeline, client_types, ids, strict=True
    ):
        moment = clock_in + offset
        created = moment + int(draw() * 2500)
        entry = {
            "id": entry_id,
            "personId": agent.person_id,
            "organizationId": workspace.organization_id,
            "type": kind,
            **time_fields(agent, moment),
            "belongsToDate": day_text,
            "activityId": activity_id,
            "projectId": agent.project_id if activity_id is not None else None,
            "breakId": entry_break,
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
            **time_fields(agent, clock_in - (1 + int(draw() * 15)) * _MINUTE),
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


def hour_entries_of_day(workspace: Workspace, day: date) -> list[dict[str, Any]]:
    """Hours some agents log as durations on a weekday (a timesheet-mode tenant's
    ``HourEntries``): every eighth agent, now and then, 30 minutes to 3 hours on one of its
    activities."""
    entries: list[dict[str, Any]] = []
    if day.weekday() >= 5:
        return entries
    for agent in workspace.agents:
        if agent.index % 8 != 5:
            continue
        rng = random.Random(f"{workspace.seed}:hours:{agent.index}:{day.toordinal()}")
        if rng.random() >= 0.6:
            continue
        minutes = 15 * rng.randint(2, 12)
        logged = datetime.combine(day, datetime.min.time(), agent.zone) + timedelta(hours=18)
        stamp = utc_text(datetime_ms(logged))
        entries.append(
            {
                "id": seeded_uuid(rng),
                "personId": agent.person_id,
                "organizationId": workspace.organization_id,
                "belongsToDate": day.isoformat(),
                "duration": f"PT{minutes // 60}H{minutes % 60}M"
                if minutes % 60
                else f"PT{minutes // 60}H",
                "activityId": rng.choice(agent.activity_ids),
                "projectId": agent.project_id,
                "note": "Logged from the timesheet",
                "status": "Active",
                "createdAt": stamp,
                "updatedAt": stamp,
            }
        )
    return entries


def time_fields(agent: Agent | None, moment: int) -> dict[str, str]:
    """time/localTime/offset of an instant in the agent's zone (UTC for strangers)."""
    zone = agent.zone if agent else _UTC_ZONE
    offset = datetime.fromtimestamp(moment // 1000, zone).utcoffset() or timedelta(0)
    offset_seconds = offset // _SECOND
    local_text = wall_text(moment + offset_seconds * 1000)
    if agent is not None and agent.local_time_with_offset:
        local_text += offset_suffix(offset_seconds)
    return {
        "time": utc_text(moment),
        "localTime": local_text,
        "offset": offset_duration(offset_seconds),
    }

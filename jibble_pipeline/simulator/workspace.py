"""The workspace of the synthetic organisation, deterministic for a seed: the organisation,
its activities, client groups and people, and the agent behind each person (how and when
they work, which ``generate`` follows to make their punches)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
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
from jibble_pipeline.simulator.timeformat import datetime_ms, utc_text

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
_HOUR = 3_600_000  # ms


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

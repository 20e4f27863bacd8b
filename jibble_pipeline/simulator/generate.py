"""Every agent's punches of a work date, and the hours some log as durations, deterministic
for the workspace's seed (``workspace`` says who works when)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jibble_pipeline.simulator.timeformat import (
    datetime_ms,
    offset_duration,
    offset_suffix,
    utc_text,
    wall_text,
)
from jibble_pipeline.simulator.workspace import Agent, Workspace, seeded_uuid

_UTC_ZONE = ZoneInfo("UTC")
_SECOND = timedelta(seconds=1)
_MINUTE = 60_000
_HOUR = 60 * _MINUTE

# (ms from which the entry exists, the entry, (ms of its later revision, the entry before it))
GeneratedEntry = tuple[int, dict[str, Any], tuple[int, dict[str, Any]] | None]


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

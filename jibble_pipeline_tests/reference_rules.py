"""A plain, row-by-row reading of docs/rules.md used to cross-check the vectorised rules, and the
builders of time-entry frames the rule tests share.

Written from the rules alone: it imports nothing from ``jibble_pipeline``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pandas as pd

RAW_ENTRY_COLUMNS = [
    "entry_id", "person_id", "type", "time_utc", "local_time", "offset_minutes",
    "belongs_to_date", "activity_id", "project_id", "break_id", "client_type", "status", "note",
    "raw_payload",
]  # fmt: skip


def instant(text: str) -> datetime:
    """``"2025-03-03T08:00:00Z"`` as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def entry(
    entry_id: str,
    person_id: str,
    kind: str,
    at: str | datetime,
    *,
    offset: int = 0,
    day: date | None = None,
    activity: str | None = None,
    break_id: str | None = None,
    client: str | None = None,
    status: str | None = "Active",
) -> dict:
    """One raw entry; ``day`` (belongsToDate) defaults to the local date of ``at``."""
    time_utc = instant(at) if isinstance(at, str) else at
    local = (time_utc + timedelta(minutes=offset)).replace(tzinfo=None)
    return {
        "entry_id": entry_id,
        "person_id": person_id,
        "type": kind,
        "time_utc": time_utc,
        "local_time": local,
        "offset_minutes": offset,
        "belongs_to_date": day or local.date(),
        "activity_id": activity,
        "project_id": None,
        "break_id": break_id,
        "client_type": client,
        "status": status,
        "note": None,
        "raw_payload": "{}",
    }


# The work date of the rule tests' examples, and a "now" long after it (every session of it
# with no end is incomplete by then).
DAY = date(2025, 3, 3)
NOW = instant("2025-03-20T00:00:00Z")


def on_day(entry_id: str, kind: str, at: str, *, person: str = "p1", **fields) -> dict:
    """An entry of ``person`` at ``at`` (``"HH:MM"``, UTC) on ``DAY``; ``fields`` as ``entry``."""
    return entry(entry_id, person, kind, f"{DAY.isoformat()}T{at}Z", **fields)


def entries_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows shaped like the warehouse's raw_time_entries as the IO manager returns them."""
    frame = pd.DataFrame(rows, columns=RAW_ENTRY_COLUMNS)
    frame["time_utc"] = pd.to_datetime(frame["time_utc"], utc=True)
    frame["local_time"] = pd.to_datetime(frame["local_time"])
    frame["offset_minutes"] = frame["offset_minutes"].astype("Int64")
    text = [c for c in RAW_ENTRY_COLUMNS if c not in {"time_utc", "local_time", "offset_minutes"}]
    return frame.astype({c: object for c in text})


def random_entries(seed: int, count: int) -> list[dict]:
    """Messy but plausible entries: several agents and dates, ties, odd statuses and offsets."""
    rng = random.Random(seed)
    persons = [f"person-{i}" for i in range(8)]
    offsets = {p: rng.choice([0, 60, -300, 330, 480, -240, 120]) for p in persons}
    first_day = date(2025, 3, 6)
    ids = rng.sample(range(10 * count), count)
    rows, last_time = [], {}
    for number in ids:
        person = rng.choice(persons)
        day = first_day + timedelta(days=rng.randrange(10))
        key = (person, day)
        if key in last_time and rng.random() < 0.1:
            at = last_time[key]
        else:
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
            at = midnight + timedelta(
                minutes=rng.randrange(-600, 1800), seconds=rng.choice([0, 30])
            )
        last_time[key] = at
        kind = "In" if rng.random() < 0.6 else "Out"
        rows.append(
            entry(
                f"e{number:06d}",
                person,
                kind,
                at,
                offset=offsets[person],
                day=day,
                activity=rng.choice([None, "act-1", "act-2", "act-3"]),
                break_id="brk" if kind == "In" and rng.random() < 0.15 else None,
                client="AutoOut"
                if kind == "Out" and rng.random() < 0.15
                else rng.choice([None, "Web"]),
                status=rng.choices(["Active", None, "Archived", "Deleted"], [80, 10, 5, 5])[0],
            )
        )
    return rows


def _plain(value):
    """pandas scalars as plain Python values (None for every missing value)."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def frame_records(frame: pd.DataFrame) -> list[dict]:
    """Rows of ``frame`` as dicts of plain Python values, for comparisons."""
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _local(at: datetime, offset: int | None) -> datetime | None:
    return None if offset is None else (at + timedelta(minutes=offset)).replace(tzinfo=None)


def _seconds(delta: timedelta) -> int:
    micros = delta // timedelta(microseconds=1)
    return (micros + 500_000) // 1_000_000


def _active(entries: pd.DataFrame) -> tuple[list[dict], int]:
    rows = frame_records(entries)
    active = [r for r in rows if r["status"] is None or r["status"] == "Active"]
    return active, len(rows) - len(active)


def _by_day(rows: list[dict]) -> dict[tuple, list[dict]]:
    days = defaultdict(list)
    for row in rows:
        days[(row["person_id"], row["belongs_to_date"])].append(row)
    for day_rows in days.values():
        day_rows.sort(key=lambda r: (r["time_utc"], r["entry_id"]))
    return days


def reference_sessions(
    entries: pd.DataFrame, now: datetime, open_after: timedelta
) -> tuple[list[dict], list[dict], int]:
    """(sessions, orphan Outs, ignored count), walking each agent-day entry by entry."""
    active, ignored = _active(entries)
    sessions, orphans = [], []
    for (person, day), rows in _by_day(active).items():
        current = None
        for row in rows:
            if current is not None:
                if row["time_utc"] > current["start_utc"]:
                    current.update(
                        end_utc=row["time_utc"],
                        end_entry_id=row["entry_id"],
                        end_local=_local(row["time_utc"], row["offset_minutes"]),
                        duration_seconds=_seconds(row["time_utc"] - current["start_utc"]),
                        status="complete",
                        auto_out=row["type"] == "Out" and row["client_type"] == "AutoOut",
                    )
                    sessions.append(current)
                current = None
            elif row["type"] == "Out":
                orphans.append(
                    {
                        "entry_id": row["entry_id"],
                        "person_id": person,
                        "belongs_to_date": day,
                        "time_utc": row["time_utc"],
                    }
                )
            if row["type"] == "In":
                current = {
                    "session_id": row["entry_id"],
                    "person_id": person,
                    "group_id": None,
                    "activity_id": row["activity_id"],
                    "belongs_to_date": day,
                    "kind": "break" if row["break_id"] else "work",
                    "start_utc": row["time_utc"],
                    "end_utc": None,
                    "duration_seconds": None,
                    "status": "open" if now - row["time_utc"] < open_after else "incomplete",
                    "auto_out": False,
                    "start_entry_id": row["entry_id"],
                    "end_entry_id": None,
                    "offset_minutes": row["offset_minutes"],
                    "start_local": _local(row["time_utc"], row["offset_minutes"]),
                    "end_local": None,
                }
        if current is not None:
            sessions.append(current)
    return sessions, orphans, ignored


def reference_group(history: list[dict], person: str, at: datetime) -> str | None:
    """The group of ``person`` at ``at``: last row started by then, else the earliest row."""
    rows = sorted((r for r in history if r["person_id"] == person), key=lambda r: r["valid_from"])
    if not rows:
        return None
    started = [r for r in rows if r["valid_from"] <= at]
    return (started[-1] if started else rows[0])["group_id"]


def reference_attendance(entries: pd.DataFrame, sessions: list[dict], orphans: list[dict]):
    """One dict per agent-day with an Active entry."""
    active, _ = _active(entries)
    days = []
    for (person, day), rows in _by_day(active).items():
        ins = [r for r in rows if r["type"] == "In"]
        outs = [r for r in rows if r["type"] == "Out"]
        own = sorted(
            (s for s in sessions if (s["person_id"], s["belongs_to_date"]) == (person, day)),
            key=lambda s: s["start_utc"],
        )
        complete = [s for s in own if s["status"] == "complete"]
        work = sum(s["duration_seconds"] for s in complete if s["kind"] == "work")
        pause = sum(s["duration_seconds"] for s in complete if s["kind"] == "break")
        first_in = ins[0] if ins else None
        last_out = outs[-1] if outs else None
        days.append(
            {
                "person_id": person,
                "belongs_to_date": day,
                "group_id": own[0]["group_id"] if own else None,
                "clock_in_utc": first_in["time_utc"] if first_in else None,
                "clock_out_utc": last_out["time_utc"] if last_out else None,
                "clock_in_local": _local(first_in["time_utc"], first_in["offset_minutes"])
                if first_in
                else None,
                "clock_out_local": _local(last_out["time_utc"], last_out["offset_minutes"])
                if last_out
                else None,
                "work_seconds": work,
                "break_seconds": pause,
                "work_hours": work / 3600,
                "break_hours": pause / 3600,
                "session_count": len(own),
                "orphan_out_count": sum(
                    1 for o in orphans if (o["person_id"], o["belongs_to_date"]) == (person, day)
                ),
                "has_open": any(s["status"] == "open" for s in own),
                "has_incomplete": any(s["status"] == "incomplete" for s in own),
                "has_auto_out": any(s["auto_out"] for s in own),
            }
        )
    return days


def reference_weekly(sessions: list[dict]) -> list[dict]:
    """One dict per (Monday, person, group, activity)."""
    grains: dict[tuple, dict] = {}
    for s in sessions:
        monday = s["belongs_to_date"] - timedelta(days=s["belongs_to_date"].weekday())
        key = (monday, s["person_id"], s["group_id"], s["activity_id"])
        totals = grains.setdefault(
            key,
            {"work_seconds": 0, "break_seconds": 0, "session_count": 0, "incomplete_count": 0},
        )
        totals["session_count"] += 1
        if s["status"] == "complete":
            totals["work_seconds" if s["kind"] == "work" else "break_seconds"] += s[
                "duration_seconds"
            ]
        else:
            totals["incomplete_count"] += 1
    return [
        {
            "week_start": key[0],
            "person_id": key[1],
            "group_id": key[2],
            "activity_id": key[3],
            **totals,
            "work_hours": totals["work_seconds"] / 3600,
            "break_hours": totals["break_seconds"] / 3600,
        }
        for key, totals in grains.items()
    ]

"""Validated Jibble payloads as DataFrames shaped like their warehouse tables."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

import orjson
import pandas as pd

from jibble_pipeline.jibble.models import Activity, Group, Person, Rejected, TimeEntry

AGENT_COLUMNS = [
    "person_id", "full_name", "preferred_name", "email", "group_id", "status", "code", "role",
    "time_zone", "created_at", "updated_at", "removed_at", "raw_payload", "synced_at",
]  # fmt: skip
GROUP_COLUMNS = ["group_id", "name", "code", "status", "raw_payload", "synced_at"]
ACTIVITY_COLUMNS = ["activity_id", "name", "code", "color", "status", "raw_payload", "synced_at"]
ENTRY_COLUMNS = [
    "entry_id", "person_id", "type", "time_utc", "local_time", "offset_minutes",
    "belongs_to_date", "activity_id", "project_id", "break_id", "client_type", "status", "note",
    "created_at", "updated_at", "raw_payload", "fetched_at", "removed_at",
]  # fmt: skip
QUARANTINE_COLUMNS = [
    "partition_date", "entry_id", "reason", "raw_payload", "run_id", "quarantined_at",
    "quarantine_key",
]  # fmt: skip
TIMESTAMP_COLUMNS = {
    "created_at", "updated_at", "removed_at", "synced_at", "time_utc", "fetched_at",
}  # fmt: skip


def payload_json(payload: dict) -> str:
    """A payload as compact JSON text (orjson: the raw payload of every entry is written)."""
    try:
        return orjson.dumps(payload, default=str).decode()
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits, which json handles
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for column in TIMESTAMP_COLUMNS.intersection(columns):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.astype({c: object for c in columns if c not in TIMESTAMP_COLUMNS})


def agents_frame(people: Sequence[Person], synced_at: datetime) -> pd.DataFrame:
    rows = [
        {
            "person_id": p.id,
            "full_name": p.full_name,
            "preferred_name": p.preferred_name,
            "email": p.email,
            "group_id": p.group_id,
            "status": p.status,
            "code": p.code,
            "role": p.role,
            "time_zone": p.time_zone,
            "created_at": p.created_at,
            "updated_at": p.updated_at,
            "removed_at": p.removed_at,
            "raw_payload": payload_json(p.raw),
            "synced_at": synced_at,
        }
        for p in people
    ]
    return _frame(rows, AGENT_COLUMNS)


def groups_frame(groups: Sequence[Group], synced_at: datetime) -> pd.DataFrame:
    rows = [
        {
            "group_id": g.id,
            "name": g.name,
            "code": g.code,
            "status": g.status,
            "raw_payload": payload_json(g.raw),
            "synced_at": synced_at,
        }
        for g in groups
    ]
    return _frame(rows, GROUP_COLUMNS)


def activities_frame(activities: Sequence[Activity], synced_at: datetime) -> pd.DataFrame:
    rows = [
        {
            "activity_id": a.id,
            "name": a.name,
            "code": a.code,
            "color": a.color,
            "status": a.status,
            "raw_payload": payload_json(a.raw),
            "synced_at": synced_at,
        }
        for a in activities
    ]
    return _frame(rows, ACTIVITY_COLUMNS)


def entries_frame(entries: Sequence[TimeEntry], fetched_at: datetime) -> pd.DataFrame:
    """One row per entry; the local wall time is derived from the UTC instant and offset.

    Built column by column (no row dicts, no dtype inference): it runs for every entry."""
    columns = {
        "entry_id": [e.id for e in entries],
        "person_id": [e.person_id for e in entries],
        "type": [e.type for e in entries],
        "time_utc": [e.time for e in entries],
        "local_time": None,
        "offset_minutes": [e.offset_minutes for e in entries],
        "belongs_to_date": [e.belongs_to_date for e in entries],
        "activity_id": [e.activity_id for e in entries],
        "project_id": [e.project_id for e in entries],
        "break_id": [e.break_id for e in entries],
        "client_type": [e.client_type for e in entries],
        "status": [e.status for e in entries],
        "note": [e.note for e in entries],
        "created_at": [e.created_at for e in entries],
        "updated_at": [e.updated_at for e in entries],
        "raw_payload": [payload_json(e.raw) for e in entries],
        "fetched_at": fetched_at,
        "removed_at": None,
    }
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(entries)), dtype=object)
    for column in TIMESTAMP_COLUMNS.intersection(ENTRY_COLUMNS):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["offset_minutes"] = frame["offset_minutes"].astype("Int64")
    offsets = pd.to_timedelta(frame["offset_minutes"].fillna(0).astype("int64"), unit="m")
    frame["local_time"] = (frame["time_utc"] + offsets).dt.tz_localize(None)
    return frame


def quarantine_key(payload: dict) -> str:
    """What identifies a quarantined payload: its entry id, or a digest of a payload without
    a usable one (the same bad payload fetched again gets the same key)."""
    entry_id = payload.get("id")
    if isinstance(entry_id, str) and entry_id:
        return entry_id
    return "sha256:" + hashlib.sha256(payload_json(payload).encode()).hexdigest()


def quarantine_frame(
    rejected: Sequence[Rejected], partition_dates: Sequence, run_id: str, at: datetime
) -> pd.DataFrame:
    """Rejected payloads with why they were rejected and the work date they were fetched for."""
    rows = [
        {
            "partition_date": day,
            "entry_id": _text_or_none(r.payload.get("id")),
            "reason": r.reason,
            "raw_payload": payload_json(r.payload),
            "run_id": run_id,
            "quarantined_at": at,
            "quarantine_key": quarantine_key(r.payload),
        }
        for r, day in zip(rejected, partition_dates, strict=True)
    ]
    frame = pd.DataFrame(rows, columns=QUARANTINE_COLUMNS)
    frame["quarantined_at"] = pd.to_datetime(frame["quarantined_at"], utc=True)
    return frame.astype({c: object for c in QUARANTINE_COLUMNS if c != "quarantined_at"})


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)

"""Validated Jibble payloads as DataFrames shaped like their warehouse tables."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson
import pandas as pd

from jibble_pipeline.jibble.models import (
    JibblePayload,
    Person,
    Rejected,
    TimeEntry,
)
from jibble_pipeline.jibble.time_zones import find_zone
from jibble_pipeline.schema import (
    AGENTS,
    QUARANTINED_ENTRIES,
    RAW_TIME_ENTRIES,
    Table,
)


def payload_json(payload: dict) -> str:
    """A payload as compact JSON text (orjson: the raw payload of every entry is written)."""
    try:
        return orjson.dumps(payload, default=str).decode()
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits, which json handles
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)


def _frame(data: list[dict] | dict[str, list], spec: Table) -> pd.DataFrame:
    """Rows (or columns) as a frame of the table's columns: instants as UTC timestamps, the
    rest as Python objects."""
    frame = pd.DataFrame(data, columns=spec.column_names)
    instants = spec.instant_columns
    for column in instants:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.astype({c: object for c in spec.column_names if c not in instants})


def snapshot_frame(
    items: Sequence[JibblePayload],
    spec: Table,
    synced_at: datetime,
    derived: Mapping[str, list] | None = None,
) -> pd.DataFrame:
    """A snapshot table's rows: its key is the payload's ``id``, ``raw_payload`` the payload
    as JSON, ``synced_at`` the time of the sync, ``derived`` columns as given, every other
    column the model's field of the same name."""
    (key,) = spec.primary_key
    derived = derived or {}

    def values(column: str) -> list:
        if column in derived:
            return derived[column]
        if column == key:
            return [item.id for item in items]
        if column == "raw_payload":
            return [payload_json(item.raw) for item in items]
        if column == "synced_at":
            return [synced_at] * len(items)
        return [getattr(item, column) for item in items]

    return _frame({column: values(column) for column in spec.column_names}, spec)


def agents_frame(
    people: Sequence[Person], synced_at: datetime, organisation: Mapping | None = None
) -> pd.DataFrame:
    """People with the time zone found in their payload, else their organisation's
    (``time_zone_source`` says where; ``jibble.time_zones``)."""
    found = [find_zone(person.raw, organisation) for person in people]
    zones = {
        "time_zone": [f.zone for f in found],
        "time_zone_source": [f.source for f in found],
    }
    return snapshot_frame(people, AGENTS, synced_at, zones)


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
    for column in RAW_TIME_ENTRIES.instant_columns:
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
    return _frame(rows, QUARANTINED_ENTRIES)


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)

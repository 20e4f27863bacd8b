"""Attendance per (person, work date) with an Active entry (docs/rules.md, Daily attendance)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jibble_pipeline.rules.entries import (
    MISSING_INSTANT,
    order_active_entries,
    text_series,
    utc_series,
    wall_clock_series,
)
from jibble_pipeline.schema import DAILY_ATTENDANCE

ATTENDANCE_COLUMNS = DAILY_ATTENDANCE.column_names
DAY_KEYS = ["person_id", "belongs_to_date"]
SECONDS_PER_HOUR = 3600


def _first_per_day(day: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(day, row) of the first of ``rows`` in each day (``day`` and ``rows`` ascending)."""
    days = day[rows]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = days[1:] != days[:-1]
    return days[first], rows[first]


def _last_per_day(day: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(day, row) of the last of ``rows`` in each day (``day`` and ``rows`` ascending)."""
    days = day[rows]
    last = np.ones(len(rows), dtype=bool)
    last[:-1] = days[1:] != days[:-1]
    return days[last], rows[last]


def _per_day(
    day_count: int, day: np.ndarray, rows: np.ndarray, values: np.ndarray, missing: int
) -> np.ndarray:
    out = np.full(day_count, missing, dtype=values.dtype)
    out[day] = values[rows]
    return out


def _session_totals(sessions: pd.DataFrame) -> pd.DataFrame:
    """Per (person, work date): hours of complete sessions, counts, flags, first session's group."""
    complete = (sessions["status"] == "complete").to_numpy(dtype=bool)
    is_work = (sessions["kind"] == "work").to_numpy(dtype=bool)
    seconds = pd.to_numeric(sessions["duration_seconds"]).fillna(0).to_numpy(dtype=np.int64)
    frame = pd.DataFrame(
        {
            "person_id": text_series(sessions["person_id"]),
            "belongs_to_date": pd.Series(np.asarray(sessions["belongs_to_date"], dtype=object)),
            "work_seconds": np.where(complete & is_work, seconds, 0),
            "break_seconds": np.where(complete & ~is_work, seconds, 0),
            "session_count": 1,
            "has_open": (sessions["status"] == "open").to_numpy(dtype=bool),
            "has_incomplete": (sessions["status"] == "incomplete").to_numpy(dtype=bool),
            "has_auto_out": sessions["auto_out"].fillna(False).to_numpy(dtype=bool),
            "start": pd.to_datetime(sessions["start_utc"], utc=True).reset_index(drop=True),
            "group_id": text_series(sessions["group_id"]),
        }
    )
    grouped = frame.groupby(DAY_KEYS, sort=False)
    totals = grouped.agg(
        work_seconds=("work_seconds", "sum"),
        break_seconds=("break_seconds", "sum"),
        session_count=("session_count", "sum"),
        has_open=("has_open", "any"),
        has_incomplete=("has_incomplete", "any"),
        has_auto_out=("has_auto_out", "any"),
    )
    # Two sessions of one day never start at the same instant (the first would be zero-length).
    first_session = frame.loc[grouped["start"].idxmin(), [*DAY_KEYS, "group_id"]]
    return totals.join(first_session.set_index(DAY_KEYS)).reset_index()


def derive_attendance(
    entries: pd.DataFrame, sessions: pd.DataFrame, orphan_outs: pd.DataFrame
) -> pd.DataFrame:
    """Clock-in (first Active In), clock-out (last Active Out), hours and flags per agent-day.

    Work and break seconds count complete sessions only; ``group_id`` is that of the day's
    first session (None when the day has no session).
    """
    ordered = order_active_entries(entries)
    starts_day = np.ones(len(ordered), dtype=bool)
    starts_day[1:] = ordered.day[1:] != ordered.day[:-1]
    first_rows = np.flatnonzero(starts_day)
    day_count = len(first_rows)

    in_days, first_in = _first_per_day(ordered.day, np.flatnonzero(ordered.is_in))
    out_days, last_out = _last_per_day(ordered.day, np.flatnonzero(~ordered.is_in))

    days = pd.DataFrame(
        {
            "person_id": text_series(ordered.person_id[first_rows]),
            "belongs_to_date": pd.Series(ordered.belongs_to_date[first_rows], dtype=object),
            "clock_in_utc": utc_series(
                _per_day(day_count, in_days, first_in, ordered.time_ns, MISSING_INSTANT)
            ),
            "clock_out_utc": utc_series(
                _per_day(day_count, out_days, last_out, ordered.time_ns, MISSING_INSTANT)
            ),
            "clock_in_local": wall_clock_series(
                _per_day(day_count, in_days, first_in, ordered.local_ns, MISSING_INSTANT)
            ),
            "clock_out_local": wall_clock_series(
                _per_day(day_count, out_days, last_out, ordered.local_ns, MISSING_INSTANT)
            ),
        }
    )
    orphans = (
        pd.DataFrame(
            {
                "person_id": text_series(orphan_outs["person_id"]),
                "belongs_to_date": pd.Series(
                    np.asarray(orphan_outs["belongs_to_date"], dtype=object)
                ),
            }
        )
        .groupby(DAY_KEYS, sort=False)
        .size()
        .rename("orphan_out_count")
        .reset_index()
    )
    attendance = days.merge(_session_totals(sessions), on=DAY_KEYS, how="left").merge(
        orphans, on=DAY_KEYS, how="left"
    )
    for column in ("work_seconds", "break_seconds", "session_count", "orphan_out_count"):
        attendance[column] = attendance[column].fillna(0).astype(np.int64)
    for column in ("has_open", "has_incomplete", "has_auto_out"):
        attendance[column] = attendance[column].fillna(False).astype(bool)
    attendance["group_id"] = text_series(attendance["group_id"])
    attendance["work_hours"] = attendance["work_seconds"] / SECONDS_PER_HOUR
    attendance["break_hours"] = attendance["break_seconds"] / SECONDS_PER_HOUR
    return attendance[ATTENDANCE_COLUMNS]

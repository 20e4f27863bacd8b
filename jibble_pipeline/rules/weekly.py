"""Weekly hours per (week, person, group, activity), and roll-ups (docs/rules.md, Weekly hours)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from jibble_pipeline.rules.entries import text_values
from jibble_pipeline.schema import WEEKLY_HOURS

GRAIN = ["week_start", "person_id", "group_id", "activity_id"]
WEEKLY_COLUMNS = WEEKLY_HOURS.column_names
TOTAL_COLUMNS = [c for c in WEEKLY_COLUMNS if c not in GRAIN]
ROLLUP_KEYS = ("person_id", "group_id", "activity_id")
COUNTED = ["work_seconds", "break_seconds", "session_count", "incomplete_count"]
SECONDS_PER_HOUR = 3600
THURSDAY_EPOCH_OFFSET = 3  # 1970-01-01 was a Thursday: (days + 3) % 7 is 0 on Mondays


def week_start(dates: pd.Series) -> pd.Series:
    """The Monday of each date's ISO week, as ``datetime.date`` objects (None stays None)."""
    series = pd.Series(dates)
    codes, uniques = pd.factorize(series)
    days = np.asarray(uniques, dtype="datetime64[D]").astype(np.int64)
    mondays = (days - (days + THURSDAY_EPOCH_OFFSET) % 7).astype("datetime64[D]").astype(object)
    values = np.full(len(series), None, dtype=object)
    present = codes >= 0
    values[present] = mondays[codes[present]]
    return pd.Series(values, index=series.index, dtype=object)


def _with_hours(totals: pd.DataFrame) -> pd.DataFrame:
    for column in COUNTED:
        totals[column] = totals[column].astype(np.int64)
    totals["work_hours"] = totals["work_seconds"] / SECONDS_PER_HOUR
    totals["break_hours"] = totals["break_seconds"] / SECONDS_PER_HOUR
    return totals


def _sum_by(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sums of ``COUNTED`` per ``keys``; missing key values form groups of their own."""
    totals = frame.groupby(keys, dropna=False, sort=True)[COUNTED].sum().reset_index()
    for key in keys:
        totals[key] = pd.Series(text_values(totals[key]), dtype=object)
    return _with_hours(totals)


def sum_weekly_hours(sessions: pd.DataFrame) -> pd.DataFrame:
    """Hours of complete work and break sessions, and session counts, per weekly grain.

    ``session_count`` counts every session of the grain (any kind and status);
    ``incomplete_count`` the ones with no end (open or incomplete).
    """
    status = sessions["status"]
    complete = (status == "complete").to_numpy(dtype=bool)
    is_work = (sessions["kind"] == "work").to_numpy(dtype=bool)
    seconds = pd.to_numeric(sessions["duration_seconds"]).fillna(0).to_numpy(dtype=np.int64)
    frame = pd.DataFrame(
        {
            "week_start": week_start(sessions["belongs_to_date"]).reset_index(drop=True),
            "person_id": pd.Series(text_values(sessions["person_id"]), dtype=object),
            "group_id": pd.Series(text_values(sessions["group_id"]), dtype=object),
            "activity_id": pd.Series(text_values(sessions["activity_id"]), dtype=object),
            "work_seconds": np.where(complete & is_work, seconds, 0),
            "break_seconds": np.where(complete & ~is_work, seconds, 0),
            "session_count": np.ones(len(sessions), dtype=np.int64),
            "incomplete_count": status.isin(["open", "incomplete"]).to_numpy(dtype=np.int64),
        }
    )
    return _sum_by(frame, GRAIN)[WEEKLY_COLUMNS]


def rollup(
    weekly: pd.DataFrame, by: Literal["person_id", "group_id", "activity_id"]
) -> pd.DataFrame:
    """``weekly`` totals per (week_start, ``by``); a missing ``by`` value is a group too."""
    if by not in ROLLUP_KEYS:
        raise ValueError(f"rollup by must be one of {ROLLUP_KEYS}, not {by!r}")
    return _sum_by(weekly, ["week_start", by])[["week_start", by, *TOTAL_COLUMNS]]

"""Active time entries in session order, as plain arrays shared by the session and
attendance rules (docs/rules.md, Sessions: Active or no status; per person and work date; by time,
then entry id)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ACTIVE_STATUS = "Active"
ENTRY_TYPES = ("In", "Out")
REQUIRED_COLUMNS = ("entry_id", "person_id", "type", "time_utc", "belongs_to_date")
NANOS_PER_MINUTE = 60 * 1_000_000_000
MISSING_INSTANT = np.iinfo(np.int64).min  # the int64 value of NaT


def is_active(entries: pd.DataFrame) -> np.ndarray:
    """True for entries the rules use: status ``Active`` or no status at all."""
    if "status" not in entries.columns:
        return np.ones(len(entries), dtype=bool)
    status = entries["status"]
    return (status.isna() | (status == ACTIVE_STATUS)).to_numpy(dtype=bool)


def text_values(values: pd.Series | np.ndarray) -> np.ndarray:
    """Object array of str with None for every kind of missing value (None, NaN, <NA>)."""
    array = np.asarray(values, dtype=object).copy()
    array[pd.isna(array)] = None
    return array


def text_series(values: pd.Series | np.ndarray) -> pd.Series:
    """An object-dtype Series of str / None (pandas would otherwise infer its str dtype)."""
    return pd.Series(text_values(values), dtype=object)


def utc_nanos(values: pd.Series) -> np.ndarray:
    """Instants as int64 nanoseconds since the epoch (NaT as ``MISSING_INSTANT``)."""
    instants = pd.to_datetime(values, utc=True)
    return np.asarray(instants.dt.as_unit("ns").array.asi8, dtype=np.int64)


def utc_series(nanos: np.ndarray) -> pd.Series:
    """int64 nanoseconds (``MISSING_INSTANT`` = NaT) as a tz-aware UTC Series."""
    return pd.Series(nanos.view("datetime64[ns]")).dt.tz_localize("UTC")


def wall_clock_series(nanos: np.ndarray) -> pd.Series:
    """int64 nanoseconds of local wall clock as a naive datetime Series."""
    return pd.Series(nanos.view("datetime64[ns]"))


@dataclass(frozen=True)
class OrderedEntries:
    """Active entries sorted by (person id, work date, time, entry id), column by column.

    ``day`` numbers the (person, work date) groups 0..n-1 in that order, so rows of one
    group are contiguous and ``day`` is non-decreasing.
    """

    entry_id: np.ndarray
    person_id: np.ndarray
    belongs_to_date: np.ndarray
    is_in: np.ndarray
    time_ns: np.ndarray
    local_ns: np.ndarray
    offset_minutes: pd.arrays.IntegerArray
    activity_id: np.ndarray
    is_break: np.ndarray
    is_auto_out: np.ndarray
    day: np.ndarray

    def __len__(self) -> int:
        return len(self.entry_id)

    def same_day_as_next(self) -> np.ndarray:
        """True where the next row belongs to the same (person, work date)."""
        same = np.zeros(len(self), dtype=bool)
        same[:-1] = self.day[1:] == self.day[:-1]
        return same


def _optional(entries: pd.DataFrame, column: str) -> pd.Series:
    if column in entries.columns:
        return entries[column]
    return pd.Series([None] * len(entries), index=entries.index, dtype=object)


def _check(entries: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in entries.columns]
    if missing:
        raise ValueError(f"time entries lack required columns: {missing}")
    incomplete = entries[list(REQUIRED_COLUMNS)].isna().any(axis=1)
    if incomplete.any():
        raise ValueError(
            f"{int(incomplete.sum())} active time entries have no id, person, type, time or "
            f"work date, e.g. entry {entries.loc[incomplete, 'entry_id'].iloc[0]!r}"
        )
    unknown = ~entries["type"].isin(ENTRY_TYPES)
    if unknown.any():
        kinds = sorted(map(str, entries.loc[unknown, "type"].unique()))
        raise ValueError(f"{int(unknown.sum())} active time entries have an unknown type: {kinds}")


def order_active_entries(entries: pd.DataFrame) -> OrderedEntries:
    """The Active entries of ``entries`` in session order (raises on unusable entries)."""
    active = entries[is_active(entries)]
    if active.empty:
        active = pd.DataFrame(columns=list(REQUIRED_COLUMNS))
    _check(active)
    person_codes, _ = pd.factorize(active["person_id"], sort=True)
    date_codes, dates = pd.factorize(active["belongs_to_date"], sort=True)
    id_ranks, _ = pd.factorize(active["entry_id"], sort=True)
    time_ns = utc_nanos(active["time_utc"])
    order = np.lexsort((id_ranks, time_ns, date_codes, person_codes))

    group_key = person_codes.astype(np.int64) * max(len(dates), 1) + date_codes
    group_key = group_key[order]
    new_day = np.ones(len(order), dtype=bool)
    new_day[1:] = group_key[1:] != group_key[:-1]

    time_ns = time_ns[order]
    offsets = pd.array(pd.to_numeric(_optional(active, "offset_minutes")), dtype="Int64")[order]
    local_ns = np.where(
        offsets.isna(),
        MISSING_INSTANT,
        time_ns + offsets.to_numpy(dtype=np.int64, na_value=0) * NANOS_PER_MINUTE,
    )
    break_ids = text_values(_optional(active, "break_id"))[order]
    client_types = text_values(_optional(active, "client_type"))[order]
    return OrderedEntries(
        entry_id=text_values(active["entry_id"])[order],
        person_id=text_values(active["person_id"])[order],
        belongs_to_date=np.asarray(active["belongs_to_date"], dtype=object)[order],
        is_in=(active["type"] == "In").to_numpy(dtype=bool)[order],
        time_ns=time_ns,
        local_ns=local_ns,
        offset_minutes=offsets,
        activity_id=text_values(_optional(active, "activity_id"))[order],
        is_break=pd.notna(break_ids) & (break_ids != ""),
        is_auto_out=client_types == "AutoOut",
        day=np.cumsum(new_day) - 1,
    )

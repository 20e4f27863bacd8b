"""Time entries to work and break sessions (docs/rules.md, Sessions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from jibble_pipeline.rules.entries import (
    MISSING_INSTANT,
    is_active,
    order_active_entries,
    text_series,
    utc_series,
    wall_clock_series,
)
from jibble_pipeline.schema import SESSIONS

# The sessions table's columns but the time of the derivation, which the asset adds.
SESSION_COLUMNS = [c for c in SESSIONS.column_names if c != "derived_at"]
ORPHAN_COLUMNS = ["entry_id", "person_id", "belongs_to_date", "time_utc"]
NANOS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True)
class SessionResult:
    """Sessions, the Out entries that closed nothing, and how many entries were not Active."""

    sessions: pd.DataFrame
    orphan_outs: pd.DataFrame
    ignored_count: int


def derive_sessions(
    entries: pd.DataFrame, *, now: datetime, open_after: timedelta = timedelta(hours=16)
) -> SessionResult:
    """Sessions of every (person, work date) in ``entries``.

    Every In starts a session that ends at the next entry of the same person and work date,
    whatever its type. A session with no later entry is ``open`` while it started less than
    ``open_after`` before ``now``, else ``incomplete``. Zero-length sessions are dropped; an
    Out with no session to end is an orphan.
    """
    ordered = order_active_entries(entries)
    has_next = ordered.same_day_as_next()
    next_row = np.minimum(np.arange(1, len(ordered) + 1), max(len(ordered) - 1, 0))
    time_ns = ordered.time_ns
    zero_length = ordered.is_in & has_next & (time_ns[next_row] == time_ns)

    after_in = np.zeros(len(ordered), dtype=bool)
    after_in[1:] = ordered.is_in[:-1] & has_next[:-1]
    orphans = np.flatnonzero(~ordered.is_in & ~after_in)

    starts = np.flatnonzero(ordered.is_in & ~zero_length)
    ended = has_next[starts]
    ends = next_row[starts]
    start_ns = time_ns[starts]
    end_ns = np.where(ended, time_ns[ends], MISSING_INSTANT)
    now_ns = pd.Timestamp(now).tz_convert("UTC").as_unit("ns").value
    still_open = (now_ns - start_ns) < pd.Timedelta(open_after).value
    status = np.where(ended, "complete", np.where(still_open, "open", "incomplete"))
    durations = (end_ns - start_ns + NANOS_PER_SECOND // 2) // NANOS_PER_SECOND
    end_entry_id = np.where(ended, ordered.entry_id[ends], np.array(None, dtype=object))
    end_local_ns = np.where(ended, ordered.local_ns[ends], MISSING_INSTANT)

    sessions = pd.DataFrame(
        {
            "session_id": text_series(ordered.entry_id[starts]),
            "person_id": text_series(ordered.person_id[starts]),
            "group_id": text_series(np.full(len(starts), None, dtype=object)),
            "activity_id": text_series(ordered.activity_id[starts]),
            "belongs_to_date": pd.Series(ordered.belongs_to_date[starts], dtype=object),
            "kind": text_series(np.where(ordered.is_break[starts], "break", "work")),
            "start_utc": utc_series(start_ns),
            "end_utc": utc_series(end_ns),
            "duration_seconds": pd.arrays.IntegerArray(np.where(ended, durations, 0), ~ended),
            "status": text_series(status),
            "auto_out": ended & ~ordered.is_in[ends] & ordered.is_auto_out[ends],
            "start_entry_id": text_series(ordered.entry_id[starts]),
            "end_entry_id": text_series(end_entry_id),
            "offset_minutes": ordered.offset_minutes[starts],
            "start_local": wall_clock_series(ordered.local_ns[starts]),
            "end_local": wall_clock_series(end_local_ns),
        },
        columns=SESSION_COLUMNS,
    )
    orphan_outs = pd.DataFrame(
        {
            "entry_id": text_series(ordered.entry_id[orphans]),
            "person_id": text_series(ordered.person_id[orphans]),
            "belongs_to_date": pd.Series(ordered.belongs_to_date[orphans], dtype=object),
            "time_utc": utc_series(time_ns[orphans]),
        },
        columns=ORPHAN_COLUMNS,
    )
    ignored = int(len(entries) - is_active(entries).sum())
    return SessionResult(sessions=sessions, orphan_outs=orphan_outs, ignored_count=ignored)

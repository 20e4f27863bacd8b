"""Sessions, attendance and weekly hours from N synthetic raw entries, in memory.

    .venv/bin/python benchmarks/derive_hours.py --entries 1000000

Prints entries/s of the derivation (the pure rules, as the daily and weekly assets call
them) and the process's peak memory. The entries look like the warehouse's: agents in
several offsets, work and break Ins, activity switches, Outs, a few orphans and archived
entries.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import current_rss_mib, describe_machine, peak_rss_mib  # noqa: E402
from jibble_pipeline.rules.attendance import derive_attendance  # noqa: E402
from jibble_pipeline.rules.groups import assign_groups  # noqa: E402
from jibble_pipeline.rules.sessions import derive_sessions  # noqa: E402
from jibble_pipeline.rules.weekly import sum_weekly_hours  # noqa: E402

ENTRIES_PER_DAY = 12  # In, 4 switches/breaks and back, Out: a typical agent-day


def synthetic_entries(count: int, seed: int = 1) -> pd.DataFrame:
    """``count`` entries: agent-days of 12 punches spread over 8 hours."""
    rng = np.random.default_rng(seed)
    days = count // ENTRIES_PER_DAY
    agents = 400
    person = rng.integers(0, agents, days)
    day_number = np.arange(days) // agents
    offsets = np.array([480, 330, 300, -300, -360, 0, 60, 480])[person % 8]
    start = (
        np.datetime64("2025-01-01T00:00:00", "ns")
        + day_number.astype("timedelta64[D]")
        + (rng.integers(6 * 60, 10 * 60, days) - offsets).astype("timedelta64[m]")
    )
    steps = np.sort(rng.integers(1, 8 * 3600, (days, ENTRIES_PER_DAY - 1)), axis=1)
    times = np.concatenate([np.zeros((days, 1), dtype=np.int64), steps], axis=1)
    time_utc = start[:, None] + times.astype("timedelta64[s]")
    kinds = np.full((days, ENTRIES_PER_DAY), "In", dtype=object)
    kinds[:, -1] = "Out"
    is_break = np.zeros((days, ENTRIES_PER_DAY), dtype=bool)
    is_break[:, [3, 7]] = True
    activities = rng.integers(0, 12, (days, ENTRIES_PER_DAY)).astype(str).astype(object)
    activities[is_break | (kinds == "Out")] = None
    work_date = np.datetime64("2025-01-01", "D") + day_number.astype("timedelta64[D]")
    n = days * ENTRIES_PER_DAY
    status = np.where(rng.random(n) < 0.01, "Archived", "Active").astype(object)
    return pd.DataFrame(
        {
            "entry_id": pd.Series(np.char.add("e", np.arange(n).astype(str)), dtype=object),
            "person_id": pd.Series(
                np.repeat(np.char.add("p", person.astype(str)), 12), dtype=object
            ),
            "type": kinds.ravel(),
            "time_utc": pd.to_datetime(time_utc.ravel()).tz_localize(UTC),
            "offset_minutes": pd.array(np.repeat(offsets, 12), dtype="Int64"),
            "belongs_to_date": pd.Series(np.repeat(work_date, 12).astype(object)),
            "activity_id": activities.ravel(),
            "break_id": np.where(is_break.ravel(), "b1", None),
            "client_type": "Web",
            "status": status,
        }
    )


def group_history(entries: pd.DataFrame) -> pd.DataFrame:
    people = entries["person_id"].unique()
    return pd.DataFrame(
        {
            "person_id": people,
            "group_id": [f"g{i % 60}" for i in range(len(people))],
            "valid_from": pd.Timestamp("2024-12-01", tz=UTC),
            "valid_to": pd.NaT,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    entries = synthetic_entries(args.entries)
    history = group_history(entries)
    now = datetime(2025, 12, 31, tzinfo=UTC)
    before = current_rss_mib()

    started = time.perf_counter()
    result = derive_sessions(entries, now=now, open_after=timedelta(hours=16))
    sessions = assign_groups(result.sessions, history)
    derived = time.perf_counter()
    attendance = derive_attendance(entries, sessions, result.orphan_outs)
    attended = time.perf_counter()
    weekly = sum_weekly_hours(sessions)
    finished = time.perf_counter()

    total = finished - started
    print(f"machine: {describe_machine()}")
    print(f"entries: {len(entries):,}  sessions: {len(sessions):,}  "
          f"agent-days: {len(attendance):,}  weekly rows: {len(weekly):,}")  # fmt: skip
    print(f"sessions + groups: {derived - started:6.2f} s")
    print(f"daily attendance:  {attended - derived:6.2f} s")
    print(f"weekly hours:      {finished - attended:6.2f} s")
    print(f"total:             {total:6.2f} s  = {len(entries) / total:,.0f} entries/s")
    print(f"memory (RSS): {before:,.0f} MiB holding the input, {peak_rss_mib():,.0f} MiB at peak")


if __name__ == "__main__":
    main()

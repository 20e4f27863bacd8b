"""Entries -> sessions (docs/rules.md, Sessions), one case per rule, plus a cross-check against the
row-by-row reference on random entries."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from jibble_pipeline.rules.sessions import SESSION_COLUMNS, derive_sessions
from jibble_pipeline_tests.reference_rules import (
    NOW,
    entries_frame,
    entry,
    frame_records,
    instant,
    random_entries,
    reference_sessions,
)
from jibble_pipeline_tests.reference_rules import on_day as e


@dataclass
class Case:
    """Entries and the sessions expected from them, as (session_id, kind, activity_id,
    duration_seconds, status, auto_out, end_entry_id)."""

    name: str
    rows: list[dict]
    sessions: list[tuple]
    orphans: list[str] = field(default_factory=list)
    ignored: int = 0
    now: datetime = NOW


CASES = [
    Case(
        "activity switch ends the previous session",
        [e("e1", "In", "08:00", activity="a1"), e("e2", "In", "10:00", activity="a2"),
         e("e3", "Out", "12:00")],
        [("e1", "work", "a1", 7200, "complete", False, "e2"),
         ("e2", "work", "a2", 7200, "complete", False, "e3")],
    ),
    Case(
        "break In starts a break session with its own activity",
        [e("e1", "In", "08:00", activity="a1"), e("e2", "In", "10:00", break_id="b1"),
         e("e3", "In", "10:30", activity="a1"), e("e4", "Out", "12:00")],
        [("e1", "work", "a1", 7200, "complete", False, "e2"),
         ("e2", "break", None, 1800, "complete", False, "e3"),
         ("e3", "work", "a1", 5400, "complete", False, "e4")],
    ),
    Case(
        "Out before any In is an orphan",
        [e("e0", "Out", "07:00"), e("e1", "In", "08:00"), e("e2", "Out", "09:00")],
        [("e1", "work", None, 3600, "complete", False, "e2")],
        orphans=["e0"],
    ),
    Case(
        "second of two consecutive Outs is an orphan",
        [e("e1", "In", "08:00"), e("e2", "Out", "09:00"), e("e3", "Out", "10:00")],
        [("e1", "work", None, 3600, "complete", False, "e2")],
        orphans=["e3"],
    ),
    Case(
        "zero-length pair is dropped and its (auto) Out is neither orphan nor auto-out",
        [e("e1", "In", "08:00"), e("e2", "Out", "08:00", client="AutoOut"),
         e("e3", "In", "09:00"), e("e4", "Out", "10:00")],
        [("e3", "work", None, 3600, "complete", False, "e4")],
    ),
    Case(
        "In switched at the same instant is a dropped zero-length session",
        [e("e1", "In", "08:00", activity="a1"), e("e2", "In", "08:00", activity="a2"),
         e("e3", "Out", "09:00")],
        [("e2", "work", "a2", 3600, "complete", False, "e3")],
    ),
    Case(
        "In with no later entry is open just under the threshold",
        [e("e1", "In", "08:00")],
        [("e1", "work", None, None, "open", False, None)],
        now=instant("2025-03-04T00:00:00Z") - timedelta(seconds=1),
    ),
    Case(
        "In with no later entry is incomplete from the threshold on",
        [e("e1", "In", "08:00")],
        [("e1", "work", None, None, "incomplete", False, None)],
        now=instant("2025-03-04T00:00:00Z"),
    ),
    Case(
        "session ended by an AutoOut is complete and flagged",
        [e("e1", "In", "08:00"), e("e2", "Out", "20:00", client="AutoOut")],
        [("e1", "work", None, 43200, "complete", True, "e2")],
    ),
    Case(
        "Out from another client type is not an auto-out",
        [e("e1", "In", "08:00"), e("e2", "Out", "09:00", client="Web")],
        [("e1", "work", None, 3600, "complete", False, "e2")],
    ),
    Case(
        "entries that are not Active are ignored",
        [e("e1", "In", "08:00"), e("e2", "Out", "09:00", status="Archived"),
         e("e3", "Out", "10:00"), e("e4", "In", "11:00", status="Deleted")],
        [("e1", "work", None, 7200, "complete", False, "e3")],
        ignored=2,
    ),
    Case(
        "missing status counts as Active",
        [e("e1", "In", "08:00", status=None), e("e2", "Out", "09:00", status=None)],
        [("e1", "work", None, 3600, "complete", False, "e2")],
    ),
    Case(
        "In without activity gives a work session with no activity",
        [e("e1", "In", "08:00", activity=None), e("e2", "Out", "08:30")],
        [("e1", "work", None, 1800, "complete", False, "e2")],
    ),
    Case(
        "an entry at the same instant orders by entry id: Out first then In",
        [e("b", "In", "08:00", activity="a1"), e("a", "Out", "10:00"),
         e("c", "In", "10:00", activity="a2"), e("d", "Out", "12:00")],
        [("b", "work", "a1", 7200, "complete", False, "a"),
         ("c", "work", "a2", 7200, "complete", False, "d")],
    ),
    Case(
        "an entry at the same instant orders by entry id: In first then Out",
        [e("b", "In", "08:00", activity="a1"), e("a", "In", "10:00", activity="a2"),
         e("c", "Out", "10:00"), e("d", "Out", "12:00")],
        [("b", "work", "a1", 7200, "complete", False, "a")],
        orphans=["d"],
    ),
    Case(
        "work dates are separate: the last In of a day has no end on the next day",
        [e("e1", "In", "08:00", day=date(2025, 3, 3)),
         e("e2", "Out", "09:00", day=date(2025, 3, 4))],
        [("e1", "work", None, None, "incomplete", False, None)],
        orphans=["e2"],
    ),
]  # fmt: skip


def _compact(sessions: pd.DataFrame) -> list[tuple]:
    columns = ["session_id", "kind", "activity_id", "duration_seconds", "status", "auto_out"]
    return [tuple(r[c] for c in [*columns, "end_entry_id"]) for r in frame_records(sessions)]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_session_rules(case: Case):
    result = derive_sessions(entries_frame(case.rows), now=case.now)
    assert _compact(result.sessions) == case.sessions
    assert list(result.orphan_outs["entry_id"]) == case.orphans
    assert result.ignored_count == case.ignored


def shift(start: str, end: str, offset: int, end_offset: int | None = None) -> list[dict]:
    """An In at ``start`` and an Out at ``end`` (UTC) with their local offsets, both of the
    In's work date (its local date: a night shift's Out belongs to the day it started)."""
    clock_in = entry("s1", "p", "In", start, offset=offset)
    out_offset = offset if end_offset is None else end_offset
    day = clock_in["belongs_to_date"]
    return [clock_in, entry("s2", "p", "Out", end, offset=out_offset, day=day)]


@pytest.mark.parametrize(
    ("name", "rows", "duration", "start_local", "end_local", "day"),
    [
        ("night shift crossing local and UTC midnight (+01:00)",
         shift("2025-03-03T21:00:00Z", "2025-03-04T05:00:00Z", 60),
         8 * 3600, datetime(2025, 3, 3, 22, 0), datetime(2025, 3, 4, 6, 0), date(2025, 3, 3)),
        ("Europe/Berlin spring forward: 22:00 -> 06:00 local is 7 hours",
         shift("2025-03-29T21:00:00Z", "2025-03-30T04:00:00Z", 60, 120),
         7 * 3600, datetime(2025, 3, 29, 22, 0), datetime(2025, 3, 30, 6, 0), date(2025, 3, 29)),
        ("America/New_York spring forward: 01:00 -> 05:00 local is 3 hours",
         shift("2025-03-09T06:00:00Z", "2025-03-09T09:00:00Z", -300, -240),
         3 * 3600, datetime(2025, 3, 9, 1, 0), datetime(2025, 3, 9, 5, 0), date(2025, 3, 9)),
        ("+05:30 offset",
         shift("2025-03-03T03:30:00Z", "2025-03-03T12:15:00Z", 330),
         8 * 3600 + 45 * 60, datetime(2025, 3, 3, 9, 0), datetime(2025, 3, 3, 17, 45),
         date(2025, 3, 3)),
        ("+08:00 night shift ends before UTC midnight",
         shift("2025-03-03T15:00:00Z", "2025-03-03T23:00:00Z", 480),
         8 * 3600, datetime(2025, 3, 3, 23, 0), datetime(2025, 3, 4, 7, 0), date(2025, 3, 3)),
    ],
)  # fmt: skip
def test_durations_are_elapsed_utc_time_and_local_clock_is_kept(
    name, rows, duration, start_local, end_local, day
):
    sessions = derive_sessions(entries_frame(rows), now=NOW).sessions
    [session] = frame_records(sessions)
    assert session["duration_seconds"] == duration, name
    assert (session["start_local"], session["end_local"]) == (start_local, end_local)
    assert session["belongs_to_date"] == day
    assert session["end_utc"] - session["start_utc"] == timedelta(seconds=duration)
    assert session["offset_minutes"] == rows[0]["offset_minutes"]


def test_persons_and_dates_interleaved_in_any_order():
    rows = [
        e("a1", "In", "08:00", person="p1", activity="x"),
        e("a2", "Out", "12:00", person="p1"),
        e("b1", "In", "09:00", person="p2", activity="y"),
        e("b2", "In", "10:00", person="p2", break_id="brk"),
        e("b3", "Out", "10:15", person="p2"),
        entry("c1", "p1", "In", "2025-03-04T08:00:00Z"),
        entry("c2", "p1", "Out", "2025-03-04T08:20:00Z"),
    ]
    random.Random(7).shuffle(rows)
    sessions = derive_sessions(entries_frame(rows), now=NOW).sessions
    got = [(r["session_id"], r["person_id"], r["belongs_to_date"], r["duration_seconds"])
           for r in frame_records(sessions)]  # fmt: skip
    assert got == [  # ordered by person, work date, start
        ("a1", "p1", date(2025, 3, 3), 4 * 3600),
        ("c1", "p1", date(2025, 3, 4), 1200),
        ("b1", "p2", date(2025, 3, 3), 3600),
        ("b2", "p2", date(2025, 3, 3), 900),
    ]


def test_output_columns_and_types():
    rows = [e("e1", "In", "08:00", activity="a1", offset=60), e("e2", "Out", "09:00", offset=60),
            e("e3", "In", "10:00")]  # fmt: skip
    sessions = derive_sessions(entries_frame(rows), now=NOW).sessions
    assert list(sessions.columns) == SESSION_COLUMNS
    assert str(sessions["start_utc"].dtype).endswith("UTC]")
    assert str(sessions["end_utc"].dtype).endswith("UTC]")
    assert str(sessions["duration_seconds"].dtype) == "Int64"
    assert sessions["auto_out"].dtype == bool
    assert sessions["group_id"].isna().all()
    first, second = frame_records(sessions)
    assert first["start_entry_id"] == "e1" and first["end_entry_id"] == "e2"
    assert second["end_utc"] is None and second["end_local"] is None
    assert isinstance(first["belongs_to_date"], date) and isinstance(first["person_id"], str)


def test_local_time_column_is_optional():
    frame = entries_frame([e("e1", "In", "08:00", offset=330), e("e2", "Out", "09:00")])
    sessions = derive_sessions(frame.drop(columns=["local_time"]), now=NOW).sessions
    assert sessions.loc[0, "start_local"] == pd.Timestamp("2025-03-03T13:30:00")


@pytest.mark.parametrize("columns", [None, ["entry_id", "person_id", "type", "time_utc"]])
def test_empty_input_gives_empty_frames_with_the_columns(columns):
    frame = entries_frame([]) if columns is None else pd.DataFrame(columns=columns)
    result = derive_sessions(frame, now=NOW)
    assert list(result.sessions.columns) == SESSION_COLUMNS
    assert list(result.orphan_outs.columns) == [
        "entry_id",
        "person_id",
        "belongs_to_date",
        "time_utc",
    ]
    assert result.sessions.empty and result.orphan_outs.empty and result.ignored_count == 0


def test_unknown_entry_type_is_an_error_not_a_silent_drop():
    with pytest.raises(ValueError, match="unknown type"):
        derive_sessions(entries_frame([e("e1", "Pause", "08:00")]), now=NOW)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_the_row_by_row_reference(seed):
    frame = entries_frame(random_entries(seed, 3000))
    now = instant("2025-03-15T06:00:00Z")
    result = derive_sessions(frame.sample(frac=1, random_state=seed), now=now)
    sessions, orphans, ignored = reference_sessions(frame, now, timedelta(hours=16))

    def key(row):
        return row["session_id"] if "session_id" in row else row["entry_id"]

    assert sorted(frame_records(result.sessions), key=key) == sorted(sessions, key=key)
    assert sorted(frame_records(result.orphan_outs), key=key) == sorted(orphans, key=key)
    assert result.ignored_count == ignored
    assert {"open", "incomplete", "complete"} <= set(result.sessions["status"])
    assert result.sessions["auto_out"].any() and len(result.orphan_outs) > 0

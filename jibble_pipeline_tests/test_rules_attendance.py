"""Daily attendance per agent and work date (docs/rules.md, Daily attendance)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from jibble_pipeline.rules.attendance import ATTENDANCE_COLUMNS, derive_attendance
from jibble_pipeline.rules.groups import assign_groups
from jibble_pipeline.rules.sessions import derive_sessions
from jibble_pipeline_tests.reference_rules import (
    DAY,
    NOW,
    entries_frame,
    entry,
    frame_records,
    instant,
    random_entries,
    reference_attendance,
    reference_group,
    reference_sessions,
)
from jibble_pipeline_tests.reference_rules import on_day as e

HISTORY = pd.DataFrame(
    {
        "person_id": ["p1", "p1"],
        "group_id": ["g1", "g2"],
        "valid_from": pd.to_datetime(["2025-03-01T00:00Z", "2025-03-03T12:00Z"], utc=True),
        "valid_to": pd.to_datetime(["2025-03-03T12:00Z", None], utc=True),
    }
).astype({"person_id": object, "group_id": object})


def attendance_of(rows: list[dict], now: datetime = NOW) -> list[dict]:
    frame = entries_frame(rows)
    result = derive_sessions(frame, now=now)
    sessions = assign_groups(result.sessions, HISTORY)
    return frame_records(derive_attendance(frame, sessions, result.orphan_outs))


def test_a_working_day_with_a_break():
    [day] = attendance_of(
        [
            e("e1", "In", "08:00", activity="a1", offset=330),
            e("e2", "In", "12:00", break_id="b", offset=330),
            e("e3", "In", "12:30", activity="a2", offset=330),
            e("e4", "Out", "17:00", offset=330),
        ]
    )
    assert day == {
        "person_id": "p1",
        "belongs_to_date": DAY,
        "group_id": "g1",  # the group at the day's first session, not at later ones
        "clock_in_utc": instant("2025-03-03T08:00:00Z"),
        "clock_out_utc": instant("2025-03-03T17:00:00Z"),
        "clock_in_local": datetime(2025, 3, 3, 13, 30),
        "clock_out_local": datetime(2025, 3, 3, 22, 30),
        "work_seconds": 8 * 3600 + 30 * 60,
        "break_seconds": 1800,
        "work_hours": 8.5,
        "break_hours": 0.5,
        "session_count": 3,
        "orphan_out_count": 0,
        "has_open": False,
        "has_incomplete": False,
        "has_auto_out": False,
    }


@pytest.mark.parametrize(
    ("name", "rows", "now", "expected"),
    [
        (
            "open session: no clock-out, no hours, flagged open",
            [e("e1", "In", "08:00"), e("e2", "In", "09:00", break_id="b")],
            instant("2025-03-03T10:00:00Z"),
            {"clock_out_utc": None, "work_seconds": 3600, "break_seconds": 0,
             "session_count": 2, "has_open": True, "has_incomplete": False},
        ),
        (
            "incomplete session after 16 hours",
            [e("e1", "In", "08:00")],
            NOW,
            {"clock_out_utc": None, "work_seconds": 0, "has_open": False,
             "has_incomplete": True},
        ),
        (
            "auto-out day",
            [e("e1", "In", "08:00"), e("e2", "Out", "20:00", client="AutoOut")],
            NOW,
            {"work_hours": 12.0, "has_auto_out": True},
        ),
        (
            "only an orphan Out: a row with no clock-in, no session and no group",
            [e("e1", "Out", "17:00")],
            NOW,
            {"clock_in_utc": None, "clock_in_local": None,
             "clock_out_utc": instant("2025-03-03T17:00:00Z"), "session_count": 0,
             "orphan_out_count": 1, "group_id": None},
        ),
        (
            "clock-in is the first Active In even when its session is zero-length",
            [e("e1", "In", "08:00"), e("e2", "Out", "08:00"), e("e3", "In", "09:00"),
             e("e4", "Out", "10:00"), e("e5", "Out", "11:00", status="Archived")],
            NOW,
            {"clock_in_utc": instant("2025-03-03T08:00:00Z"),
             "clock_out_utc": instant("2025-03-03T10:00:00Z"), "session_count": 1,
             "work_seconds": 3600, "orphan_out_count": 0},
        ),
        (
            "night shift: clock-out on the next local and UTC day belongs to the clock-in date",
            [e("e1", "In", "21:00", offset=60),
             entry("e2", "p1", "Out", "2025-03-04T05:00:00Z", offset=60, day=DAY)],
            NOW,
            {"belongs_to_date": DAY, "clock_out_local": datetime(2025, 3, 4, 6, 0),
             "work_seconds": 8 * 3600},
        ),
    ],
)  # fmt: skip
def test_attendance_rules(name, rows, now, expected):
    [day] = attendance_of(rows, now)
    assert {k: day[k] for k in expected} == expected, name


def test_days_without_any_active_entry_have_no_row():
    rows = [
        e("e1", "In", "08:00"),
        e("e2", "Out", "09:00"),
        e("x1", "In", "08:00", person="p2", status="Archived"),
        entry("x2", "p1", "In", "2025-03-04T08:00:00Z", status="Deleted"),
    ]
    assert [(d["person_id"], d["belongs_to_date"]) for d in attendance_of(rows)] == [("p1", DAY)]


def test_several_agents_and_days_in_any_order():
    rows = [
        entry("c1", "p2", "In", "2025-03-04T08:00:00Z"),
        e("a2", "Out", "12:00", person="p1"),
        e("b1", "In", "09:00", person="p2"),
        entry("c2", "p2", "Out", "2025-03-04T09:00:00Z"),
        e("a1", "In", "08:00", person="p1"),
        e("b2", "Out", "10:30", person="p2"),
    ]
    days = attendance_of(rows)
    assert [
        (d["person_id"], d["belongs_to_date"], d["work_seconds"], d["group_id"]) for d in days
    ] == [
        ("p1", DAY, 4 * 3600, "g1"),
        ("p2", DAY, 5400, None),
        ("p2", date(2025, 3, 4), 3600, None),
    ]


def test_empty_input_gives_the_columns():
    frame = entries_frame([])
    result = derive_sessions(frame, now=NOW)
    attendance = derive_attendance(frame, result.sessions, result.orphan_outs)
    assert attendance.empty and list(attendance.columns) == ATTENDANCE_COLUMNS


def test_output_types():
    frame = entries_frame([e("e1", "In", "08:00"), e("e2", "Out", "09:00")])
    result = derive_sessions(frame, now=NOW)
    attendance = derive_attendance(frame, result.sessions, result.orphan_outs)
    assert list(attendance.columns) == ATTENDANCE_COLUMNS
    assert str(attendance["clock_in_utc"].dtype).endswith("UTC]")
    assert attendance["work_seconds"].dtype == "int64"
    assert attendance["work_hours"].dtype == "float64"
    assert attendance["has_open"].dtype == bool


@pytest.mark.parametrize("seed", [4, 5])
def test_matches_the_row_by_row_reference(seed):
    frame = entries_frame(random_entries(seed, 3000))
    now = instant("2025-03-15T06:00:00Z")
    result = derive_sessions(frame, now=now)
    moves = HISTORY.assign(person_id=["person-1", "person-1"])
    attendance = derive_attendance(frame, assign_groups(result.sessions, moves), result.orphan_outs)

    sessions, orphans, _ = reference_sessions(frame, now, timedelta(hours=16))
    for session in sessions:
        session["group_id"] = reference_group(
            frame_records(moves), session["person_id"], session["start_utc"]
        )
    expected = reference_attendance(frame, sessions, orphans)

    def key(row):
        return (row["person_id"], row["belongs_to_date"])

    assert sorted(frame_records(attendance), key=key) == sorted(expected, key=key)
    assert attendance["orphan_out_count"].sum() == len(orphans) > 0

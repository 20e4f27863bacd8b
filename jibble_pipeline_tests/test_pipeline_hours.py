"""Sessions, attendance and weekly hours in the warehouse, after real Dagster runs over the
simulator's organisation, against the row-by-row reading of docs/rules.md in ``reference_rules``."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from jibble_pipeline.assets.weekly import week_metadata
from jibble_pipeline.warehouse.display_names import Names
from jibble_pipeline_tests.pipeline_harness import Pipeline, PipelineSetup
from jibble_pipeline_tests.reference_rules import (
    entries_frame,
    entry,
    frame_records,
    reference_attendance,
    reference_group,
    reference_sessions,
    reference_weekly,
)

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

FIRST, LAST = date(2025, 1, 6), date(2025, 1, 22)  # two whole weeks and a week in progress
NOW = datetime(2025, 1, 22, 9, 30, tzinfo=UTC)
OPEN_AFTER = timedelta(hours=16)
# The ``pipeline`` fixture (conftest.py): the range and its weeks derived for 40 agents.
PIPELINE_SETUP = PipelineSetup(
    seed=21, agents=40, start=date(2025, 1, 1), end=date(2025, 1, 31),
    first=FIRST, last=LAST, now=NOW, weekly=True,
)  # fmt: skip
SESSION_FIELDS = [
    "session_id", "person_id", "group_id", "activity_id", "belongs_to_date", "kind",
    "start_utc", "end_utc", "duration_seconds", "status", "auto_out", "end_entry_id",
]  # fmt: skip
ATTENDANCE_FIELDS = [
    "person_id", "belongs_to_date", "group_id", "clock_in_utc", "clock_out_utc",
    "clock_in_local", "clock_out_local", "work_seconds", "break_seconds", "session_count",
    "orphan_out_count", "has_open", "has_incomplete", "has_auto_out",
]  # fmt: skip
WEEKLY_FIELDS = [
    "week_start", "person_id", "group_id", "activity_id", "work_seconds", "break_seconds",
    "session_count", "incomplete_count",
]  # fmt: skip
_OFFSET = re.compile(r"^(-?)PT(?:(\d+)H)?(?:(\d+)M)?(?:\d+S)?$")


def offset_minutes(text: str) -> int:
    sign, hours, minutes = _OFFSET.match(text).groups()
    value = int(hours or 0) * 60 + int(minutes or 0)
    return -value if sign else value


def reference_rows(payloads: list[dict]) -> pd.DataFrame:
    """The API's payloads read directly from the fields of docs/rules.md, Jibble API."""
    return entries_frame(
        [
            entry(
                p["id"],
                p["personId"],
                p["type"],
                p["time"],
                offset=offset_minutes(p["offset"]),
                day=date.fromisoformat(p["belongsToDate"]),
                activity=p.get("activityId"),
                break_id=p.get("breakId"),
                client=p.get("clientType"),
                status=p.get("status"),
            )  # fmt: skip
            for p in payloads
        ]
    )


def expected(pipeline: Pipeline, first: date, last: date, now: datetime):
    """Reference sessions (with groups from the warehouse's history), attendance and weeks."""
    payloads = pipeline.simulator.organisation.time_entries_for_dates(first, last)
    rows = reference_rows(payloads)
    sessions, orphans, _ = reference_sessions(rows, now, OPEN_AFTER)
    history = frame_records(pipeline.table("agent_group_history", "person_id, valid_from"))
    for session in sessions:
        session["group_id"] = reference_group(history, session["person_id"], session["start_utc"])
    return sessions, reference_attendance(rows, sessions, orphans), reference_weekly(sessions)


def records(frame: pd.DataFrame, fields: list[str]) -> Counter:
    """Rows as a multiset of tuples (equal values compare equal whatever their Python type)."""
    return Counter(tuple(r[f] for f in fields) for r in frame_records(frame[fields]))


def as_rows(dicts: list[dict], fields: list[str]) -> Counter:
    return Counter(tuple(d[f] for f in fields) for d in dicts)


def assert_warehouse_matches_reference(
    pipeline: Pipeline, now: datetime, first: date = FIRST, last: date = LAST
) -> None:
    """Sessions and attendance of work dates [first, last] and the weeks starting in it
    (``first`` a Monday) equal the reference's."""
    sessions, attendance, weekly = expected(pipeline, first, last, now)

    def stored(name: str, column: str) -> pd.DataFrame:
        frame = pipeline.table(name, column)
        return frame[(frame[column] >= first) & (frame[column] <= last)]

    assert records(stored("sessions", "belongs_to_date"), SESSION_FIELDS) == as_rows(
        sessions, SESSION_FIELDS
    )
    assert records(stored("daily_attendance", "belongs_to_date"), ATTENDANCE_FIELDS) == as_rows(
        attendance, ATTENDANCE_FIELDS
    )
    assert records(stored("weekly_hours", "week_start"), WEEKLY_FIELDS) == as_rows(
        weekly, WEEKLY_FIELDS
    )


def test_sessions_attendance_and_weeks_follow_the_rules(pipeline):
    assert_warehouse_matches_reference(pipeline, NOW)
    sessions = pipeline.table("sessions", "session_id")
    # The organisation really exercises the rules: every status, both kinds, auto-outs.
    assert set(sessions["status"]) == {"complete", "open", "incomplete"}
    assert set(sessions["kind"]) == {"work", "break"}
    assert sessions["auto_out"].any()
    assert pipeline.table("daily_attendance", "person_id")["orphan_out_count"].sum() > 0


def test_rollups_add_up_to_the_same_total(pipeline):
    weekly = pipeline.table("weekly_hours", "week_start")
    total = weekly[["work_seconds", "break_seconds", "session_count"]].sum()
    assert total["work_seconds"] > 40 * 10 * 6 * 3600  # 40 agents, ~12 work days, 6 h+
    for view, key in (
        ("weekly_hours_by_agent", "person_id"),
        ("weekly_hours_by_group", "group_id"),
        ("weekly_hours_by_activity", "activity_id"),
    ):
        rolled = pipeline.table(view, f"week_start, {key}")
        assert rolled[["work_seconds", "break_seconds", "session_count"]].sum().equals(total)
        assert not rolled.duplicated(["week_start", key]).any()
    sessions = pipeline.table("sessions", "session_id")
    complete_work = sessions[(sessions["status"] == "complete") & (sessions["kind"] == "work")]
    assert complete_work["duration_seconds"].sum() == total["work_seconds"]


TABLE_ORDER = {
    "raw_time_entries": "entry_id",
    "sessions": "session_id",
    "daily_attendance": "belongs_to_date, person_id",
    "weekly_hours": "week_start, person_id, group_id, activity_id",
}


def test_rerunning_changes_nothing(pipeline):
    def snapshot() -> dict[str, pd.DataFrame]:
        return {
            name: pipeline.table(name, order).drop(columns=["derived_at"], errors="ignore")
            for name, order in TABLE_ORDER.items()
        }

    before = snapshot()
    assert pipeline.daily(FIRST, LAST, now=NOW).success
    assert pipeline.weekly(FIRST, LAST).success
    for name, frame in snapshot().items():
        pd.testing.assert_frame_equal(frame, before[name], obj=name)


def test_late_edits_deletions_and_new_entries_reach_sessions_and_weeks(pipeline):
    org = pipeline.simulator.organisation
    day = date(2025, 1, 8)
    entries = [e for e in org.time_entries_for_dates(day, day) if e.get("status") == "Active"]
    ins = [e for e in entries if e["type"] == "In"]
    later = NOW + timedelta(hours=1)
    org.set_now(later)
    moved = org.edit_entry(ins[1]["id"], time=_shift(ins[1]["time"], minutes=-7))
    org.archive_entry(ins[2]["id"])
    org.delete_entry(ins[3]["id"])
    added = org.add_entry(
        {"personId": ins[4]["personId"], "type": "In", "time": _shift(ins[4]["time"], minutes=3),
         "belongsToDate": day.isoformat(), "activityId": ins[4]["activityId"]}
    )  # fmt: skip
    week_before = pipeline.table("weekly_hours", "person_id")
    assert pipeline.daily(day, day, now=later).success
    assert pipeline.weekly(day, day).success

    # The edited day's whole week (the days after it keep getting new entries as time runs).
    monday = day - timedelta(days=day.weekday())
    assert_warehouse_matches_reference(pipeline, later, monday, monday + timedelta(days=6))
    sessions = pipeline.table("sessions", "session_id").set_index("session_id")
    assert sessions.loc[moved["id"], "start_utc"] == pd.Timestamp(moved["time"])
    assert ins[2]["id"] not in sessions.index and ins[3]["id"] not in sessions.index
    assert added["id"] in sessions.index
    week_after = pipeline.table("weekly_hours", "person_id")
    assert not week_after.equals(week_before)
    raw = pipeline.table("raw_time_entries", "entry_id").set_index("entry_id")
    assert raw.loc[ins[2]["id"], "status"] == "Archived"  # kept, with its new status
    assert pd.notna(raw.loc[ins[3]["id"], "removed_at"])  # gone at the source, kept here


def test_an_agent_moving_group_keeps_old_weeks_in_the_old_group(pipeline):
    org = pipeline.simulator.organisation
    person = org.people[0]
    new_group = next(g["id"] for g in org.groups if g["id"] != person["groupId"])
    org.move_person(person["id"], new_group)
    assert pipeline.sync_snapshots().success
    assert pipeline.daily(FIRST, LAST, now=NOW).success
    assert pipeline.weekly(FIRST, LAST).success

    history = pipeline.table("agent_group_history", "valid_from")
    rows = history[history["person_id"] == person["id"]]
    assert list(rows["group_id"]) == [person["groupId"], new_group]
    weeks = pipeline.table("weekly_hours", "week_start")
    assert set(weeks.loc[weeks["person_id"] == person["id"], "group_id"]) == {person["groupId"]}
    agents = pipeline.table("agents", "person_id").set_index("person_id")
    assert agents.loc[person["id"], "group_id"] == new_group


def test_asset_checks_pass_on_clean_data(pipeline):
    result = pipeline.daily(FIRST, LAST, now=NOW)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    for name in ("no_duplicate_entry_ids", "sessions_do_not_overlap",
                 "active_entries_accounted_for"):  # fmt: skip
        assert evaluations[name].passed, name
    assert not evaluations["orphan_outs"].passed  # the organisation has a few, by design
    weekly = pipeline.weekly(FIRST, LAST)
    weekly_checks = {e.check_name: e for e in weekly.get_asset_check_evaluations()}
    assert weekly_checks["weekly_totals_match_sessions"].passed


def _shift(instant: str, minutes: int) -> str:
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00")) + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def latest_metadata(pipeline: Pipeline, asset: str) -> dict[str, dict]:
    """Each partition's latest materialization metadata, as the UI shows it."""
    records = pipeline.instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
    latest: dict[str, dict] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        materialization = record.asset_materialization
        latest[materialization.partition] = {
            k: v.value for k, v in materialization.metadata.items()
        }
    return latest


def test_each_partition_shows_its_own_figures_not_the_runs(pipeline):
    """A range run records each partition's own rows and hours (the Plots tab would
    otherwise draw flat lines of the run's totals)."""
    raw = pipeline.table("raw_time_entries", "entry_id")
    per_date = raw[raw["removed_at"].isna()].groupby("belongs_to_date").size()
    shown = latest_metadata(pipeline, "raw_time_entries")
    days = [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
    assert {date.fromisoformat(k): v["dagster/row_count"] for k, v in shown.items()} == {
        d: int(per_date.get(d, 0)) for d in days
    }
    assert len({v["dagster/row_count"] for v in shown.values()}) > 3

    sessions = pipeline.table("sessions", "session_id")
    counted = sessions.groupby("belongs_to_date").size()
    for key, metadata in latest_metadata(pipeline, "sessions").items():
        assert metadata["dagster/row_count"] == int(counted.get(date.fromisoformat(key), 0))

    weekly = pipeline.table("weekly_hours", "week_start")
    hours = (weekly.groupby("week_start")["work_seconds"].sum() / 3600).round(2)
    weeks = latest_metadata(pipeline, "weekly_hours")
    assert {date.fromisoformat(k): v["total_work_hours"] for k, v in weeks.items()} == {
        week: float(h) for week, h in hours.items()
    }
    assert len(set(hours)) == len(hours)  # three different weeks, three different figures


def test_a_week_with_no_complete_work_yet_still_gets_its_metadata():
    """Monday morning: the week has rows (sessions still open count as incomplete) and no
    complete work session; its partition shows zero hours instead of failing the run."""
    week = date(2025, 3, 3)
    rows = pd.DataFrame(
        [{"week_start": week, "person_id": "p1", "group_id": "g1", "activity_id": None,
          "work_seconds": 0, "break_seconds": 0, "work_hours": 0.0, "break_hours": 0.0,
          "session_count": 0, "incomplete_count": 1}]
    )  # fmt: skip
    metadata = week_metadata(rows, None, [], week, Names())
    assert metadata["dagster/row_count"] == 1
    assert metadata["total_work_hours"] == 0
    assert metadata["incomplete_sessions"] == 1
    assert "work_hours_per_day" in metadata

"""Late edits: the sensor finds past work dates changed in Jibble, requests exactly those,
advances its watermark only once their runs have landed, and re-derives one change once
although its queries overlap."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from jibble_pipeline.automation.late_edits import (
    OVERLAP,
    WATERMARK_TAG,
    LateEditsCursor,
    date_ranges,
    dates_to_refetch,
    late_edits_sensor,
    unhandled,
    versions,
)
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.partitions import RANGE_END_TAG, RANGE_START_TAG
from jibble_pipeline.resources import server_jibble
from jibble_pipeline.simulator import FaultPlan, SyntheticOrganisation
from jibble_pipeline_tests.pipeline_harness import DAILY, SNAPSHOTS, Pipeline, PipelineSetup

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

FIRST, LAST = date(2025, 2, 3), date(2025, 2, 9)
T0 = datetime(2025, 2, 12, 8, tzinfo=UTC)
# The ``pipeline`` fixture (conftest.py): a week of ten agents derived.
PIPELINE_SETUP = PipelineSetup(
    seed=3, agents=10, start=date(2025, 1, 20), end=date(2025, 2, 20),
    first=FIRST, last=LAST, now=T0,
)  # fmt: skip


def test_dates_close_together_share_a_run():
    days = [date(2025, 1, d) for d in (2, 3, 6, 20, 21, 31)]
    assert date_ranges(days) == [
        (date(2025, 1, 2), date(2025, 1, 6)),
        (date(2025, 1, 20), date(2025, 1, 21)),
        (date(2025, 1, 31), date(2025, 1, 31)),
    ]
    assert date_ranges([]) == []


def test_only_past_dates_inside_the_partitions_are_refetched():
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    changed = [
        {"id": "a", "belongsToDate": "2025-03-01"},
        {"id": "b", "belongsToDate": "2025-03-09"},  # the schedule refreshes it anyway
        {"id": "c", "belongsToDate": "2024-06-01"},  # before the first partition
        {"id": "d", "belongsToDate": "not a date"},
    ]
    assert dates_to_refetch(changed, [date(2025, 2, 27)], now) == {
        date(2025, 3, 1),
        date(2025, 2, 27),  # where an entry was stored before its edit moved it
    }


def test_a_change_seen_again_is_handled_but_not_one_without_updated_at():
    changed = [
        {"id": "a", "updatedAt": "2025-03-01T10:00:00.000Z"},
        {"id": "b", "updatedAt": "2025-03-01T10:00:00+01:00"},
        {"id": "c"},  # nothing tells this change from a later one
        {"id": "d", "updatedAt": "garbled"},
    ]
    handled = versions(changed)
    assert handled == {"a": "2025-03-01T10:00:00+00:00", "b": "2025-03-01T09:00:00+00:00"}
    assert unhandled(changed, handled) == changed[2:]
    edited = {"id": "a", "updatedAt": "2025-03-01T10:04:00.000Z"}  # a new edit of ``a``
    assert unhandled([edited, *changed], handled) == [edited, *changed[2:]]


def test_a_cursor_written_before_the_handled_changes_still_loads():
    until = "2025-03-01T10:05:00+00:00"
    old = {
        "watermark": "2025-03-01T10:00:00+00:00",
        "pending_until": until,
        "pending_runs": [f"late-edits:{until}:2025-02-05"],
    }
    cursor = LateEditsCursor.load(json.dumps(old))
    assert cursor == LateEditsCursor(**old)
    assert cursor.handled == {} and cursor.pending_changes == {}
    assert LateEditsCursor.load(cursor.dump()) == cursor


def evaluate(pipeline: Pipeline, cursor: str):
    """The sensor's result and the cursor it left (set directly or through its result)."""
    resources = {k: pipeline.resources[k] for k in ("jibble", "warehouse")}
    with dg.build_sensor_context(
        instance=pipeline.instance, cursor=cursor, resources=resources
    ) as context:
        return late_edits_sensor(context), context.cursor


def first_evaluation(pipeline: Pipeline, watermark: datetime) -> dg.SensorResult:
    """The sensor's result when its cursor holds only a watermark at ``watermark``."""
    result, _ = evaluate(pipeline, LateEditsCursor(watermark=watermark.isoformat()).dump())
    return result


def run_request(pipeline: Pipeline, request: dg.RunRequest, jibble: JibbleResource | None = None):
    """Runs what the sensor asked for, tagged as the daemon would tag it."""
    return dg.materialize(
        [*SNAPSHOTS, *DAILY],
        selection=DAILY,
        instance=pipeline.instance,
        resources={**pipeline.resources, "jibble": jibble or pipeline.resources["jibble"]},
        tags=request.tags,
        raise_on_error=False,
    )


def fail_run(pipeline: Pipeline, request: dg.RunRequest) -> None:
    """Runs ``request`` while Jibble answers only errors, with few retries: the run fails."""
    pipeline.simulator.faults = FaultPlan(error_rate_5xx=1.0)
    impatient = server_jibble(pipeline.simulator, max_attempts=2)
    assert not run_request(pipeline, request, impatient).success
    pipeline.simulator.faults = FaultPlan()


def a_clock_in(org: SyntheticOrganisation, day: date) -> dict:
    return next(
        e for e in org.time_entries_for_dates(day, day) if e["type"] == "In" and e.get("status")
    )


def minutes_ago(minutes: int) -> datetime:
    """An instant just past on the real clock, the one the sensor reads: a change made then
    is inside the overlap window of the watermark the sensor sets now."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)


def past(instant: str) -> None:
    """Waits until the real clock, in the sensor's whole seconds, is past ``instant``. The
    daemon evaluates minutes apart; here a request made again within the same second would
    share the run key and watermark tag of the failed run it replaces."""
    while datetime.now(UTC).replace(microsecond=0) <= datetime.fromisoformat(instant):
        time.sleep(0.05)


def covering(requests: list[dg.RunRequest], day: date) -> dg.RunRequest:
    """The one request whose range holds ``day`` (the organisation edits other days too)."""
    (request,) = [
        r for r in requests if r.tags[RANGE_START_TAG] <= str(day) <= r.tags[RANGE_END_TAG]
    ]
    return request


def only_request(result: dg.SensorResult, day: date) -> dg.RunRequest:
    """The one request of ``result``, whose range holds ``day``."""
    (request,) = result.run_requests
    return covering([request], day)


def test_an_edit_days_later_is_rederived_and_the_watermark_follows(pipeline):
    org = pipeline.simulator.organisation
    day = FIRST + timedelta(days=2)
    clock_in = a_clock_in(org, day)
    org.set_now(T0 + timedelta(hours=1))
    org.edit_entry(clock_in["id"], time="2025-02-05T00:01:00.000Z")

    result = first_evaluation(pipeline, T0)
    covering(result.run_requests, day)
    pending = LateEditsCursor.load(result.cursor)
    assert pending.watermark == T0.isoformat()  # not advanced before the runs land
    assert {r.tags[WATERMARK_TAG] for r in result.run_requests} == {pending.pending_until}

    waiting, _ = evaluate(pipeline, result.cursor)
    assert isinstance(waiting, dg.SkipReason) and "Waiting" in waiting.skip_message

    for request in result.run_requests:
        assert run_request(pipeline, request).success
    sessions = pipeline.table("sessions", "session_id").set_index("session_id")
    assert sessions.loc[clock_in["id"], "start_utc"] == pd.Timestamp("2025-02-05T00:01:00Z")

    done, cursor = evaluate(pipeline, result.cursor)
    assert isinstance(done, dg.SkipReason)
    advanced = LateEditsCursor.load(cursor)
    assert advanced.pending_until is None
    assert advanced.watermark >= pending.pending_until
    assert not advanced.handled  # the edit is far older than the overlap: it cannot come back


def test_a_failed_run_keeps_the_watermark_and_asks_again(pipeline):
    org = pipeline.simulator.organisation
    day = FIRST + timedelta(days=1)
    entry = org.time_entries_for_dates(day, day)[0]
    org.set_now(T0 + timedelta(hours=2))
    org.archive_entry(entry["id"])
    result = first_evaluation(pipeline, T0)
    fail_run(pipeline, covering(result.run_requests, day))

    again, _ = evaluate(pipeline, result.cursor)
    covering(again.run_requests, day)
    assert LateEditsCursor.load(again.cursor).watermark == T0.isoformat()


def test_an_edit_is_rederived_once_and_its_next_edit_again(pipeline):
    """The next query overlaps by OVERLAP and returns the edit just handled: no second run.
    A new edit of the same entry has a new updatedAt: that one is re-derived."""
    org = pipeline.simulator.organisation
    day = FIRST + timedelta(days=2)
    clock_in = a_clock_in(org, day)
    edited_at = minutes_ago(5)
    org.set_now(edited_at)
    org.edit_entry(clock_in["id"], time="2025-02-05T00:01:00.000Z")

    first = first_evaluation(pipeline, edited_at)
    request = only_request(first, day)  # nothing else changed since
    pending = LateEditsCursor.load(first.cursor)
    assert clock_in["id"] in pending.pending_changes and not pending.handled
    assert run_request(pipeline, request).success

    again, cursor = evaluate(pipeline, first.cursor)
    assert isinstance(again, dg.SkipReason), again.run_requests
    assert "1 changed entries (1 already handled)" in again.skip_message  # seen, not re-run
    after = LateEditsCursor.load(cursor)
    assert after.pending_until is None and after.watermark >= pending.pending_until
    assert datetime.fromisoformat(after.handled[clock_in["id"]]) == edited_at
    assert edited_at >= datetime.fromisoformat(after.watermark) - OVERLAP  # still overlapped

    org.set_now(edited_at + timedelta(minutes=3))
    org.edit_entry(clock_in["id"], time="2025-02-05T00:02:00.000Z")
    later, _ = evaluate(pipeline, cursor)
    request = only_request(later, day)
    assert run_request(pipeline, request).success
    sessions = pipeline.table("sessions", "session_id").set_index("session_id")
    assert sessions.loc[clock_in["id"], "start_utc"] == pd.Timestamp("2025-02-05T00:02:00Z")
    done, _ = evaluate(pipeline, later.cursor)
    assert isinstance(done, dg.SkipReason), done.run_requests


def test_a_failed_run_inside_the_overlap_is_requested_again(pipeline):
    """Only succeeded runs make a change handled: after a failure, the same change is
    requested again, and once that run succeeds, no more."""
    org = pipeline.simulator.organisation
    day = FIRST + timedelta(days=1)
    entry = a_clock_in(org, day)
    edited_at = minutes_ago(3)
    org.set_now(edited_at)
    org.archive_entry(entry["id"])

    first = first_evaluation(pipeline, edited_at)
    request = only_request(first, day)
    fail_run(pipeline, request)

    past(LateEditsCursor.load(first.cursor).pending_until)
    again, _ = evaluate(pipeline, first.cursor)
    retry = only_request(again, day)
    assert retry.run_key != request.run_key
    retrying = LateEditsCursor.load(again.cursor)
    assert retrying.watermark == edited_at.isoformat() and not retrying.handled
    assert run_request(pipeline, retry).success
    raw = pipeline.table("raw_time_entries", "entry_id").set_index("entry_id")
    assert raw.loc[entry["id"], "status"] == "Archived"

    done, _ = evaluate(pipeline, again.cursor)
    assert isinstance(done, dg.SkipReason), done.run_requests


def test_a_change_landing_while_runs_are_pending_is_not_lost(pipeline):
    """A change committed late, with an updatedAt before the instant the pending runs cover,
    is not one they handled: the evaluation after they succeed requests it (and only it)."""
    org = pipeline.simulator.organisation
    early, late = FIRST, FIRST + timedelta(days=4)  # far enough apart for runs of their own
    first_entry, late_entry = a_clock_in(org, early), a_clock_in(org, late)
    edited_at = minutes_ago(5)
    org.set_now(edited_at)
    org.archive_entry(first_entry["id"])
    first = first_evaluation(pipeline, edited_at)
    request = only_request(first, early)

    org.set_now(edited_at + timedelta(minutes=2))
    org.archive_entry(late_entry["id"])  # lands while the runs are pending
    waiting, _ = evaluate(pipeline, first.cursor)
    assert isinstance(waiting, dg.SkipReason) and "Waiting" in waiting.skip_message
    assert run_request(pipeline, request).success

    then, _ = evaluate(pipeline, first.cursor)
    (request,) = then.run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (str(late), str(late))
    assert run_request(pipeline, request).success
    handled = LateEditsCursor.load(evaluate(pipeline, then.cursor)[1]).handled
    assert {first_entry["id"], late_entry["id"]} <= handled.keys()

"""Late edits: the sensor finds past work dates changed in Jibble, requests exactly those,
and advances its watermark only once their runs have landed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from jibble_pipeline.automation.late_edits import (
    WATERMARK_TAG,
    LateEditsCursor,
    date_ranges,
    dates_to_refetch,
    late_edits_sensor,
)
from jibble_pipeline.automation.schedules import RANGE_END_TAG, RANGE_START_TAG
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation
from jibble_pipeline_tests.pipeline_harness import DAILY, SNAPSHOTS, Pipeline

FIRST, LAST = date(2025, 2, 3), date(2025, 2, 9)
T0 = datetime(2025, 2, 12, 8, tzinfo=UTC)


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


@pytest.fixture
def pipeline(database_url, warehouse_schema):
    organisation = SyntheticOrganisation(
        seed=3, agents=10, start=date(2025, 1, 20), end=date(2025, 2, 20), now=T0
    )
    with JibbleSimulator(organisation, page_cap=100) as simulator:
        running = Pipeline(simulator, database_url, warehouse_schema)
        assert running.daily(FIRST, LAST, now=T0).success
        yield running


def evaluate(pipeline: Pipeline, cursor: str):
    """The sensor's result and the cursor it left (set directly or through its result)."""
    resources = {k: pipeline.resources[k] for k in ("jibble", "warehouse")}
    with dg.build_sensor_context(
        instance=pipeline.instance, cursor=cursor, resources=resources
    ) as context:
        return late_edits_sensor(context), context.cursor


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


def covering(requests: list[dg.RunRequest], day: date) -> dg.RunRequest:
    """The one request whose range holds ``day`` (the organisation edits other days too)."""
    (request,) = [
        r for r in requests if r.tags[RANGE_START_TAG] <= str(day) <= r.tags[RANGE_END_TAG]
    ]
    return request


def test_an_edit_days_later_is_rederived_and_the_watermark_follows(pipeline):
    org = pipeline.simulator.organisation
    day = FIRST + timedelta(days=2)
    clock_in = next(
        e for e in org.time_entries_for_dates(day, day) if e["type"] == "In" and e.get("status")
    )
    org.set_now(T0 + timedelta(hours=1))
    org.edit_entry(clock_in["id"], time="2025-02-05T00:01:00.000Z")

    watched = LateEditsCursor(watermark=T0.isoformat()).dump()
    result, _ = evaluate(pipeline, watched)
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


def test_a_failed_run_keeps_the_watermark_and_asks_again(pipeline):
    org = pipeline.simulator.organisation
    day = FIRST + timedelta(days=1)
    entry = org.time_entries_for_dates(day, day)[0]
    org.set_now(T0 + timedelta(hours=2))
    org.archive_entry(entry["id"])
    watched = LateEditsCursor(watermark=T0.isoformat()).dump()
    result, _ = evaluate(pipeline, watched)
    request = covering(result.run_requests, day)

    pipeline.simulator.faults = FaultPlan(error_rate_5xx=1.0)
    simulator = pipeline.simulator
    impatient = JibbleResource(
        client_id=simulator.client_id, client_secret=simulator.client_secret,
        identity_url=simulator.url, workspace_url=simulator.url,
        time_tracking_url=simulator.url, max_attempts=2,
    )  # fmt: skip
    failed = run_request(pipeline, request, impatient)
    assert not failed.success
    pipeline.simulator.faults = FaultPlan()

    again, _ = evaluate(pipeline, result.cursor)
    covering(again.run_requests, day)
    assert LateEditsCursor.load(again.cursor).watermark == T0.isoformat()

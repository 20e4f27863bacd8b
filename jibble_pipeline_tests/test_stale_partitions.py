"""No stale week: a week whose sessions change while or after its weekly run reads them is
derived again, whatever its age and however the runs overlapped; and so are a work date's
sessions and attendance whose raw entries changed under them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.automation.stale import stale_partitions_sensor
from jibble_pipeline.partitions import RANGE_END_TAG, RANGE_START_TAG, range_tags
from jibble_pipeline.rules.weekly import sum_weekly_hours
from jibble_pipeline.warehouse.resource import WarehouseResource
from jibble_pipeline.warehouse.versions import stale_partitions
from jibble_pipeline_tests.blocking import wait_for, waiters
from jibble_pipeline_tests.pipeline_harness import Pipeline, PipelineSetup

WEEK, SUNDAY = date(2025, 2, 3), date(2025, 2, 9)
T0 = datetime(2025, 2, 12, 8, tzinfo=UTC)
# The ``pipeline`` fixture (conftest.py): a week of ten agents derived, and its weekly hours.
PIPELINE_SETUP = PipelineSetup(
    seed=5, agents=10, start=date(2025, 1, 27), end=date(2025, 2, 16),
    first=WEEK, last=SUNDAY, now=T0, weekly=True,
)  # fmt: skip


def stale(pipeline: Pipeline, name: str = "weekly_hours") -> list[date]:
    warehouse: WarehouseResource = pipeline.resources["warehouse"]
    return stale_partitions(warehouse.open(), name, timedelta(0))


WEDNESDAY = WEEK + timedelta(days=2)
DAILY_TABLES = ("sessions", "daily_attendance")


def move_a_clock_out(pipeline: Pipeline, minutes: int, derive: bool = True) -> None:
    """An agent's clock-out on Wednesday moved at Jibble, and Wednesday fetched and derived
    again (or only fetched)."""
    org = pipeline.simulator.organisation
    out = next(e for e in org.time_entries_for_dates(WEDNESDAY, WEDNESDAY) if e["type"] == "Out")
    moved = pd.Timestamp(out["time"]) + pd.Timedelta(minutes=minutes)
    org.set_now(T0 + timedelta(hours=1))
    org.edit_entry(out["id"], time=moved.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    if derive:
        assert pipeline.daily(WEDNESDAY, WEDNESDAY, now=T0).success
    else:
        assert pipeline.entries(WEDNESDAY, WEDNESDAY).success


@contextmanager
def writes_of(pipeline: Pipeline, name: str) -> Iterator[None]:
    """Holds every write of table ``name`` until the block ends (its advisory lock)."""
    holder = psycopg.connect(pipeline.database_url)
    lock = sql.SQL("SELECT pg_advisory_xact_lock(hashtext(%s))")
    holder.execute(lock, (f"{pipeline.schema}.{name}",))
    try:
        yield
    finally:
        holder.commit()
        holder.close()


def waiting_to_write(pipeline: Pipeline) -> None:
    wait_for(
        lambda: any(w.wait_event == "advisory" for w in waiters(pipeline.database_url)),
        "a run waiting to write",
    )


def settle(pipeline: Pipeline) -> None:
    """The sessions' changes are older than the sensor's quiet period, as minutes later."""
    with psycopg.connect(pipeline.database_url) as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET changed_at = changed_at - interval '1 hour'").format(
                sql.Identifier(pipeline.schema, "partition_versions")
            )
        )


def evaluate(pipeline: Pipeline) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=pipeline.instance, resources={"warehouse": pipeline.resources["warehouse"]}
    ) as context:
        return stale_partitions_sensor(context)


def weekly_now(pipeline: Pipeline) -> dict[str, int]:
    """Each agent's work seconds in the week, as weekly_hours holds them."""
    return work_seconds(pipeline.resources["warehouse"].open().read("weekly_hours"))


def weekly_from_sessions(pipeline: Pipeline) -> dict[str, int]:
    """Each agent's work seconds in the week, summed from the sessions held now."""
    return work_seconds(sum_weekly_hours(pipeline.resources["warehouse"].open().read("sessions")))


def work_seconds(weekly: pd.DataFrame) -> dict[str, int]:
    return {k: int(v) for k, v in weekly.groupby("person_id")["work_seconds"].sum().items()}


def run_requested(pipeline: Pipeline, request: dg.RunRequest) -> None:
    assert request.asset_selection == [dg.AssetKey("weekly_hours")]
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (str(WEEK), str(WEEK))
    assert pipeline.weekly(WEEK, WEEK).success


def test_a_week_read_before_its_sessions_changed_is_stale_until_derived_again(pipeline):
    assert stale(pipeline) == []
    assert evaluate(pipeline).run_requests == []

    move_a_clock_out(pipeline, 40)
    assert stale(pipeline) == [WEEK]
    assert evaluate(pipeline).run_requests == []  # the sessions changed moments ago
    settle(pipeline)
    (request,) = evaluate(pipeline).run_requests
    run_requested(pipeline, request)

    assert stale(pipeline) == []
    assert weekly_now(pipeline) == weekly_from_sessions(pipeline)


def test_a_weekly_run_overlapping_a_rewrite_of_its_sessions_is_caught(pipeline):
    """The weekly run reads the sessions, a late edit rewrites them, then the weekly run
    writes: Dagster records the weekly run as the later one; the versions say otherwise."""
    before = weekly_now(pipeline)
    results: list[dg.ExecuteInProcessResult] = []
    weekly = threading.Thread(target=lambda: results.append(pipeline.weekly(WEEK, WEEK)))
    with writes_of(pipeline, "weekly_hours"):
        weekly.start()
        waiting_to_write(pipeline)
        move_a_clock_out(pipeline, 45)
    weekly.join()
    assert results[0].success

    written = weekly_now(pipeline)
    assert written == before  # the overlapped run wrote the figures of the sessions it read
    assert written != weekly_from_sessions(pipeline)
    assert stale(pipeline) == [WEEK]

    settle(pipeline)
    (request,) = evaluate(pipeline).run_requests
    run_requested(pipeline, request)
    assert stale(pipeline) == []
    assert weekly_now(pipeline) == weekly_from_sessions(pipeline)


def test_sessions_derived_from_entries_that_landed_again_under_them_are_derived_again(pipeline):
    """A run derives Wednesday from its raw entries; a late edit lands new ones before that
    run writes the sessions: the sessions and attendance of Wednesday are asked for again."""
    results: list[dg.ExecuteInProcessResult] = []
    daily = threading.Thread(
        target=lambda: results.append(pipeline.daily(WEDNESDAY, WEDNESDAY, now=T0))
    )
    with writes_of(pipeline, "sessions"):
        daily.start()
        waiting_to_write(pipeline)
        move_a_clock_out(pipeline, 50, derive=False)
    daily.join()
    assert results[0].success
    assert stale(pipeline, "sessions") == stale(pipeline, "daily_attendance") == [WEDNESDAY]

    settle(pipeline)
    (request,) = evaluate(pipeline).run_requests
    assert set(request.asset_selection) == {
        dg.AssetKey("sessions"),
        dg.AssetKey("daily_attendance"),
    }
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        str(WEDNESDAY),
        str(WEDNESDAY),
    )
    assert pipeline.derive(WEDNESDAY, WEDNESDAY, now=T0).success
    assert stale(pipeline, "sessions") == stale(pipeline, "daily_attendance") == []
    assert stale(pipeline) == [WEEK]  # and the week, once its sessions have settled


def test_weeks_that_unfinished_runs_may_rewrite_are_left_to_them(pipeline):
    move_a_clock_out(pipeline, 30)
    settle(pipeline)
    refetching = dg.DagsterRun(
        job_name="refetch_work_dates",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags=range_tags(WEDNESDAY, WEDNESDAY),
        asset_selection=frozenset({dg.AssetKey("raw_time_entries"), dg.AssetKey("sessions")}),
    )
    pipeline.instance.add_run(refetching)
    assert evaluate(pipeline).run_requests == []  # that run's own weekly follows it

    pipeline.instance.report_run_failed(refetching)
    (request,) = evaluate(pipeline).run_requests
    run_requested(pipeline, request)

"""Reliability promises of docs/operations.md, Failure modes, with real parts only: the simulator
over real HTTP, real Dagster runs, a real Postgres. Each scenario ends by comparing the
warehouse, table by table, with a clean run's over the same organisation."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from jibble_pipeline.partitions import daily_partitions
from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation
from jibble_pipeline.warehouse.landing import landed_dates
from jibble_pipeline.warehouse.store import Warehouse
from jibble_pipeline_tests.blocking import hold_row, wait_for, waiters
from jibble_pipeline_tests.pipeline_harness import Pipeline
from jibble_pipeline_tests.warehouse_state import assert_same_warehouse, warehouse_rows

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

NOW = datetime(2025, 4, 8, 12, tzinfo=UTC)  # the organisation's clock and the derivation's
FIRST, LAST = date(2025, 3, 3), date(2025, 3, 30)  # four whole weeks


def organisation(seed: int = 31, agents: int = 15) -> SyntheticOrganisation:
    return SyntheticOrganisation(
        seed=seed, agents=agents, start=date(2025, 2, 24), end=date(2025, 4, 10), now=NOW
    )


def load(pipeline: Pipeline, first: date = FIRST, last: date = LAST, now: datetime = NOW):
    """Daily assets for [first, last] in one run, then their weeks in another."""
    daily = pipeline.daily(first, last, now=now)
    assert daily.success
    assert pipeline.weekly(first, last).success
    return daily


def clean_rows(simulator: JibbleSimulator, database_url: str, schema: str, **load_options):
    """The warehouse a clean run (no faults) of the simulator's organisation leaves."""
    faults, simulator.faults = simulator.faults, FaultPlan()
    try:
        load(Pipeline(simulator, database_url, schema), **load_options)
    finally:
        simulator.faults = faults
    return warehouse_rows(database_url, schema)


def materialization_metadata(result, asset: str) -> dict:
    """The metadata of an asset's materialisation (a range run records one per partition)."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


# ------------------------------------------------------------------------ fault tolerance


def test_a_backfill_through_every_fault_at_once_equals_a_clean_run(
    database_url, warehouse_schema, schema_factory
):
    faults = FaultPlan(
        error_rate_5xx=0.2, rate_limit_per_second=30, rate_limit_burst=3, drop_rate=0.08,
        stall_rate=0.08, stall_seconds=2, token_lifetime_seconds=2, seed=17,
    )  # fmt: skip
    with JibbleSimulator(organisation(), page_cap=50, faults=faults) as simulator:
        # Stalls outlast the timeout and are retried; a steady fault rate never fails a run.
        pipeline = Pipeline(simulator, database_url, warehouse_schema, timeout_seconds=0.5)
        daily = load(pipeline)
        stats = simulator.stats
        assert stats.server_errors and stats.rate_limited and stats.dropped and stats.stalled
        tags = pipeline.instance.get_run_by_id(daily.run_id).tags  # the run's own figures
        assert int(tags["jibble/retries"]) > int(tags["jibble/rate_limited"]) > 0
        assert int(tags["jibble/requests"]) > 50

        # Every entry of the range, once (not just the same as a clean run of the same code).
        raw = pipeline.table("raw_time_entries", "entry_id")
        assert sorted(raw["entry_id"]) == sorted(
            e["id"] for e in simulator.organisation.time_entries_for_dates(FIRST, LAST)
        )
        expected = clean_rows(simulator, database_url, schema_factory())
    assert_same_warehouse(warehouse_rows(database_url, warehouse_schema), expected)


# ----------------------------------------------------------------------------- quarantine


def check(result, name: str) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def active_ins(org: SyntheticOrganisation, day: date) -> list[dict]:
    return [
        e
        for e in org.time_entries_for_dates(day, day)
        if e["type"] == "In" and e.get("status", "Active") == "Active"
    ]


def test_malformed_entries_are_quarantined_and_a_fix_at_the_source_clears_them(
    database_url, warehouse_schema, schema_factory
):
    first, last = FIRST, FIRST + timedelta(days=6)
    org = organisation(seed=41, agents=12)
    with JibbleSimulator(org, page_cap=100) as simulator:
        pipeline = Pipeline(simulator, database_url, warehouse_schema)
        load(pipeline, first, last)

        # Six entries go bad at the source, each on its own work date.
        org.set_now(NOW + timedelta(hours=1))
        days = [first + timedelta(days=n) for n in range(6)]
        host, no_offset, no_person, no_time, number_time, object_person = (
            active_ins(org, day)[2] for day in days
        )
        lunch = org.add_entry(
            {"personId": host["personId"], "type": "Lunch", "time": _later(host["time"], 3),
             "belongsToDate": days[0].isoformat()}
        )  # fmt: skip
        bad = {
            lunch["id"]: ("type", lunch),
            no_offset["id"]: ("offset", org.edit_entry(no_offset["id"], offset="UTC+05:30")),
            no_person["id"]: ("personId", org.edit_entry(no_person["id"], drop=["personId"])),
            no_time["id"]: ("time", org.edit_entry(no_time["id"], drop=["time"])),
            # Wrong JSON types are refused, never coerced (a number is not read as a time).
            number_time["id"]: ("time", org.edit_entry(number_time["id"], time=1741000000)),
            object_person["id"]: (
                "personId",
                org.edit_entry(object_person["id"], personId={"id": object_person["personId"]}),
            ),
        }
        later = NOW + timedelta(hours=2)
        result = pipeline.daily(first, last, now=later)
        assert result.success  # the check only warns
        warning = check(result, "no_quarantined_entries")
        assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
        assert warning.metadata["quarantined"].value == len(bad)

        quarantined = pipeline.table("quarantined_entries", "entry_id")
        assert sorted(quarantined["entry_id"]) == sorted(bad)
        for row in quarantined.itertuples():
            field, served = bad[row.entry_id]
            assert row.reason.startswith(f"{field}: "), row.reason
            assert row.raw_payload == served  # the payload exactly as the API sent it
            assert row.run_id == result.run_id
            assert row.partition_date == date.fromisoformat(served["belongsToDate"])

        # The rest of the week loaded: every valid entry, current, and no bad one in use.
        valid = {e["id"] for e in org.time_entries_for_dates(first, last)} - set(bad)
        raw = pipeline.table("raw_time_entries", "entry_id")
        assert set(raw.loc[raw["removed_at"].isna(), "entry_id"]) == valid
        sessions = set(pipeline.table("sessions", "session_id")["session_id"])
        assert not sessions & set(bad)
        assert len(sessions) > 200

        # Fixed in Jibble: the next fetch of those dates clears the quarantine.
        org.set_now(NOW + timedelta(hours=3))
        org.edit_entry(lunch["id"], type="In", breakId=org.break_ids[0])
        org.edit_entry(no_offset["id"], offset=no_offset["offset"])
        org.edit_entry(no_person["id"], personId=no_person["personId"])
        org.edit_entry(no_time["id"], time=no_time["time"])
        org.edit_entry(number_time["id"], time=number_time["time"])
        org.edit_entry(object_person["id"], personId=object_person["personId"])
        result = load(pipeline, first, last, now=later)
        assert check(result, "no_quarantined_entries").passed
        assert pipeline.table("quarantined_entries", "entry_id").empty
        sessions = pipeline.table("sessions", "session_id").set_index("session_id")
        assert set(bad) <= set(sessions.index)
        assert sessions.loc[lunch["id"], "kind"] == "break"

        expected = clean_rows(
            simulator, database_url, schema_factory(), first=first, last=last, now=later
        )
    assert_same_warehouse(warehouse_rows(database_url, warehouse_schema), expected)


def _later(instant: str, minutes: int) -> str:
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00")) + timedelta(minutes=minutes)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ----------------------------------------------------------------------- retries run out


def failure_text(result) -> str:
    return "\n".join(
        e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure
    )


def partition_status(pipeline: Pipeline, first: date, last: date) -> dict[date, str | None]:
    keys = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    status = pipeline.instance.get_status_by_partition(
        dg.AssetKey("raw_time_entries"), keys, daily_partitions
    )
    return {date.fromisoformat(k): (v.value if v else None) for k, v in status.items()}


def stored_dates(pipeline: Pipeline) -> set[date]:
    return set(pipeline.table("raw_time_entries", "entry_id")["belongs_to_date"])


def test_jibble_down_fails_the_run_clearly_and_changes_nothing(database_url, warehouse_schema):
    first, last = FIRST, FIRST + timedelta(days=13)
    org = organisation(seed=43, agents=10)
    with JibbleSimulator(org, page_cap=20) as simulator:
        org.edit_entry(active_ins(org, first)[0]["id"], offset="eight hours")  # a quarantine row
        load(Pipeline(simulator, database_url, warehouse_schema), first, last)
        org.set_now(NOW + timedelta(hours=1))
        org.edit_entry(active_ins(org, first + timedelta(days=1))[0]["id"], note="edited later")
        before = warehouse_rows(database_url, warehouse_schema, exact=True)
        assert before["quarantined_entries"]

        simulator.faults = FaultPlan(error_rate_5xx=1.0)  # every API call fails
        impatient = Pipeline(simulator, database_url, warehouse_schema, max_attempts=2)
        down = impatient.daily(first, last, now=NOW, raise_on_error=False)
        assert not down.success
        assert "Gave up on GET /v1/" in failure_text(down)
        assert "2 attempts failed; last error: GET /v1/" in failure_text(down)
        assert warehouse_rows(database_url, warehouse_schema, exact=True) == before


def test_a_backfill_that_loses_jibble_half_way_keeps_what_landed_and_its_rerun_continues(
    database_url, warehouse_schema, schema_factory
):
    first, last = FIRST, LAST
    org = organisation(seed=47, agents=12)
    with JibbleSimulator(org, page_cap=20) as simulator:
        org.edit_entry(active_ins(org, first)[0]["id"], offset="eight hours")
        total = len(org.time_entries_for_dates(first, last))
        pipeline = Pipeline(
            simulator, database_url, warehouse_schema, commit_every=total // 8, max_attempts=3
        )
        # Jibble goes down for good after half the pages a clean run needs.
        clean_pages = Pipeline(simulator, database_url, schema_factory()).entries(first, last)
        pages = simulator.stats.pages
        simulator.faults = FaultPlan(outage_after_requests=pages // 2)
        simulator.reset_stats()
        failed = pipeline.entries(first, last, raise_on_error=False)
        assert clean_pages.success
        assert not failed.success
        text = failure_text(failed)
        assert "Gave up on GET /v1/TimeEntries" in text
        assert "re-running the same range continues from there" in text

        # What landed is whole dates, and Dagster says exactly which.
        progress = landed_dates(Warehouse(database_url, warehouse_schema), first, last, NOW)
        landed = set(progress["work_date"])
        assert 0 < len(landed) < (last - first).days + 1
        assert stored_dates(pipeline) <= landed
        status = partition_status(pipeline, first, last)
        assert {d for d, s in status.items() if s == "MATERIALIZED"} == landed
        assert {d for d, s in status.items() if s == "FAILED"} == set(status) - landed
        raw = pipeline.table("raw_time_entries", "entry_id")
        for day in landed:
            served = {e["id"] for e in org.time_entries_for_dates(day, day)}
            assert set(raw.loc[raw["belongs_to_date"] == day, "entry_id"]) <= served
        assert len(pipeline.table("quarantined_entries", "entry_id")) == 1  # its date landed

        # Jibble is back: the re-run of the range fetches only what had not landed.
        simulator.faults = FaultPlan()
        simulator.reset_stats()
        assert load(pipeline, first, last).success
        pages_of_rerun = simulator.stats.pages
        simulator.reset_stats()
        expected = clean_rows(simulator, database_url, schema_factory(), first=first, last=last)
        pages_of_clean_run = simulator.stats.pages
        assert partition_status(pipeline, first, last) == {d: "MATERIALIZED" for d in status}
    assert pages_of_rerun < 0.8 * pages_of_clean_run
    assert_same_warehouse(warehouse_rows(database_url, warehouse_schema), expected)


# -------------------------------------------------------------------------------- overlap


def queued_writers(database_url: str, holder: psycopg.Connection, table: str):
    """(the writer replacing ``table`` that waits for ``holder``'s row lock, the writer that
    waits for the first one's advisory lock), once both wait; fails if two writers are
    inside their DELETE of ``table`` at the same time."""
    waiting = waiters(database_url)
    deleting = [w for w in waiting if w.query.startswith(f"DELETE FROM {table}")]
    assert len(deleting) < 2, f"two writers are replacing {table} at once: {deleting}"
    first = [w for w in deleting if holder.info.backend_pid in w.blockers]
    queued = [w for w in waiting if first and first[0].pid in w.blockers]
    return (first[0], queued[0]) if queued else None


def test_two_runs_over_overlapping_dates_queue_their_writes_and_leave_no_duplicates(
    database_url, warehouse_schema, schema_factory
):
    first, last = FIRST, FIRST + timedelta(days=13)
    org = organisation(seed=47, agents=12)
    with JibbleSimulator(org, page_cap=100) as simulator:
        load(Pipeline(simulator, database_url, warehouse_schema), first, last)
        org.set_now(NOW + timedelta(hours=1))
        day = first + timedelta(days=7)  # in both runs' ranges
        org.edit_entry(
            active_ins(org, day)[1]["id"], time=_later(active_ins(org, day)[1]["time"], -5)
        )
        org.archive_entry(active_ins(org, day)[3]["id"])

        results: dict[str, dg.ExecuteInProcessResult] = {}

        def run(name: str, pipeline: Pipeline, start: date, end: date) -> None:
            results[name] = pipeline.daily(start, end, now=NOW, raise_on_error=False)

        ranges = {
            "early": (first, day + timedelta(days=2)),
            "late": (day - timedelta(days=2), last),
        }
        threads = [  # each run with a Dagster instance of its own, made in this thread
            threading.Thread(
                target=run, args=(name, Pipeline(simulator, database_url, warehouse_schema), *r)
            )
            for name, r in ranges.items()
        ]
        sessions = sql.Identifier(warehouse_schema, "sessions")
        with psycopg.connect(database_url) as holder:
            # Holding one session row of the shared day makes whichever run writes sessions
            # first wait inside its transaction, until the other run has caught up.
            hold_row(holder, warehouse_schema, "sessions", day)
            for thread in threads:
                thread.start()
            try:
                table = sessions.as_string(holder)
                _, queued = wait_for(
                    lambda: queued_writers(database_url, holder, table),
                    "two writers queuing on the sessions",
                )
            finally:
                holder.rollback()
                for thread in threads:
                    thread.join(timeout=120)
        # The second writer had not started deleting: it waited for the first one's lock.
        assert queued.wait_event == "advisory" and "pg_advisory_xact_lock" in queued.query
        assert all(not t.is_alive() for t in threads)
        assert results["early"].success and results["late"].success

        assert Pipeline(simulator, database_url, warehouse_schema).weekly(first, last).success
        expected = clean_rows(simulator, database_url, schema_factory(), first=first, last=last)
    actual = warehouse_rows(database_url, warehouse_schema)
    session_ids = [row[0] for row in actual["sessions"]]
    assert len(set(session_ids)) == len(session_ids)
    assert_same_warehouse(actual, expected)

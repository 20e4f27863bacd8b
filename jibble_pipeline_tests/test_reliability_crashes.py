"""Crashes: a backfill killed with SIGKILL (while paging, and inside its write transaction)
and a Postgres restart under a run's write leave each partition with its previous rows, and
the next run lands what a clean run lands."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation
from jibble_pipeline.warehouse.embedded import ensure_embedded_postgres, stop_embedded_postgres
from jibble_pipeline_tests.blocking import blocked_writer, hold_row, wait_for
from jibble_pipeline_tests.pipeline_harness import BIN, PROJECT_ROOT, Pipeline, cli_environment
from jibble_pipeline_tests.warehouse_state import (
    PARTITIONED,
    assert_same_warehouse,
    warehouse_rows,
)

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

NOW = datetime(2025, 5, 14, 12, tzinfo=UTC)
FIRST, LAST = date(2025, 4, 28), date(2025, 5, 11)  # two whole weeks


def organisation(seed: int) -> SyntheticOrganisation:
    return SyntheticOrganisation(
        seed=seed, agents=12, start=date(2025, 4, 20), end=date(2025, 5, 20), now=NOW
    )


def edit_some_entries(org: SyntheticOrganisation) -> None:
    """Changes a re-run has to write: an entry moved, one archived, one added. (Not a deletion:
    the warehouse keeps a deleted entry, marked removed, which a clean run never saw.)"""
    org.set_now(NOW + timedelta(hours=1))
    day = FIRST + timedelta(days=3)
    ins = [e for e in org.time_entries_for_dates(day, day) if e["type"] == "In"]
    moved = datetime.fromisoformat(ins[1]["time"]) - timedelta(minutes=4)
    org.edit_entry(ins[1]["id"], note="Clock-in corrected", time=moved.isoformat())
    org.archive_entry(ins[2]["id"])
    org.add_entry({"personId": ins[4]["personId"], "type": "Out", "time": ins[4]["time"],
                   "belongsToDate": day.isoformat()})  # fmt: skip


def clean_rows(simulator: JibbleSimulator, database_url: str, schema: str, now=None):
    pipeline = Pipeline(simulator, database_url, schema)
    assert pipeline.daily(FIRST, LAST, now=now).success
    assert pipeline.weekly(FIRST, LAST).success
    return warehouse_rows(database_url, schema)


# ------------------------------------------------------------------- SIGKILL mid-backfill


class Backfill:
    """``jibble-pipeline backfill FIRST LAST`` in a process group of its own."""

    def __init__(self, env: dict[str, str]):
        self.process = subprocess.Popen(
            [str(BIN / "jibble-pipeline"), "backfill", str(FIRST), str(LAST)],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        assert self.process.poll() is None, "the backfill ended before it could be killed"
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.communicate(timeout=60)
        assert self.process.returncode == -signal.SIGKILL

    def finish(self) -> str:
        output, _ = self.process.communicate(timeout=300)
        assert self.process.returncode == 0, output[-4000:]
        return output


def backend_gone(database_url: str, pid: int) -> bool:
    with psycopg.connect(database_url) as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        return conn.execute(query, (pid,)).fetchone()[0] == 0


def test_a_backfill_killed_while_paging_or_writing_changes_nothing_and_reruns_clean(
    tmp_path, database_url, warehouse_schema, schema_factory
):
    org = organisation(seed=53)
    with JibbleSimulator(org, page_cap=50) as simulator:
        assert Pipeline(simulator, database_url, warehouse_schema).daily(FIRST, LAST).success
        edit_some_entries(org)
        env = cli_environment(tmp_path / "dagster", simulator, database_url, warehouse_schema)
        before = warehouse_rows(database_url, warehouse_schema, exact=True, tables=PARTITIONED)
        snapshot_pages = 3  # People, Groups, Activities: one page each

        # 1. Killed while paging through the range's entries (slowed down: 0.2 s a page).
        simulator.faults = FaultPlan(stall_rate=1.0, stall_seconds=0.2)
        simulator.reset_stats()
        backfill = Backfill(env)
        wait_for(
            lambda: (
                simulator.stats.pages >= snapshot_pages + 3 or backfill.process.poll() is not None
            ),
            "three pages of time entries served",
        )
        backfill.kill()
        total = len(org.time_entries_for_dates(FIRST, LAST))
        assert simulator.stats.pages < snapshot_pages + total / 50  # it was mid-stream
        after = warehouse_rows(database_url, warehouse_schema, exact=True, tables=PARTITIONED)
        assert after == before

        # 2. Killed inside the transaction that merges the raw entries: a row of the range is
        # held, so the write stops half-way (staged, partly merged) until the kill.
        simulator.faults = FaultPlan()
        raw = sql.Identifier(warehouse_schema, "raw_time_entries")
        with psycopg.connect(database_url) as holder:
            hold_row(holder, warehouse_schema, "raw_time_entries", FIRST + timedelta(days=9))
            backfill = Backfill(env)
            statement = f"INSERT INTO {raw.as_string(holder)}"
            writer = wait_for(
                lambda: blocked_writer(database_url, holder, statement) or backfill.process.poll(),
                "the backfill's merge waiting inside its transaction",
            )
            backfill.kill()
        # The held row is free now: the orphaned backend finishes its statement, finds its
        # client gone and rolls back.
        wait_for(lambda: backend_gone(database_url, writer.pid), "the killed writer's end")
        after = warehouse_rows(database_url, warehouse_schema, exact=True, tables=PARTITIONED)
        assert after == before

        # 3. Run again to the end: the same warehouse as a clean run.
        Backfill(env).finish()
        expected = clean_rows(simulator, database_url, schema_factory())
    assert_same_warehouse(warehouse_rows(database_url, warehouse_schema), expected)


# ---------------------------------------------------------------- Postgres restarted mid-run


@pytest.fixture
def restartable_postgres(tmp_path):
    """A Postgres of this test's own (embedded), which the test may stop and start."""
    data_dir = tmp_path / "restartable" / "pgdata"
    yield data_dir, ensure_embedded_postgres(data_dir)
    stop_embedded_postgres(data_dir)


def test_a_postgres_restart_during_a_write_fails_the_run_and_the_next_run_recovers(
    restartable_postgres,
):
    data_dir, url = restartable_postgres
    org = organisation(seed=59)
    with JibbleSimulator(org, page_cap=100) as simulator:
        pipeline = Pipeline(simulator, url, "jibble")
        assert pipeline.daily(FIRST, LAST, now=NOW).success
        edit_some_entries(org)
        before = warehouse_rows(url, "jibble", exact=True, tables=PARTITIONED)

        runs: list[dg.ExecuteInProcessResult] = []
        run = threading.Thread(
            target=lambda: runs.append(pipeline.daily(FIRST, LAST, now=NOW, raise_on_error=False))
        )
        holder = psycopg.connect(url)
        try:
            hold_row(holder, "jibble", "raw_time_entries", FIRST + timedelta(days=9))
            run.start()
            statement = 'INSERT INTO "jibble"."raw_time_entries"'
            wait_for(
                lambda: blocked_writer(url, holder, statement) or not run.is_alive(),
                "the run's merge waiting inside its transaction",
            )
            stop_embedded_postgres(data_dir)  # a fast shutdown ends every session
            assert ensure_embedded_postgres(data_dir) == url
        finally:
            holder.close()
            run.join(timeout=120)

        (failed,) = runs
        assert not failed.success
        failures = {
            e.step_key: e.step_failure_data.error.to_string()
            for e in failed.all_events
            if e.is_step_failure
        }
        # The write under way was cut off; a step starting while Postgres was down could not
        # connect (timing decides whether one did); sessions never ran on half-written input.
        assert "AdminShutdown: terminating connection" in failures.pop("fetch_time_entries")
        for step, error in failures.items():
            assert "Cannot connect to the warehouse" in error, (step, error)
        assert "derive_daily_hours" not in {
            e.step_key for e in failed.all_events if e.is_step_start
        }
        assert warehouse_rows(url, "jibble", exact=True, tables=PARTITIONED) == before

        assert pipeline.daily(FIRST, LAST, now=NOW).success
        assert pipeline.weekly(FIRST, LAST).success
        expected = clean_rows(simulator, url, "clean", now=NOW)
    assert_same_warehouse(warehouse_rows(url, "jibble"), expected)


# --------------------------------------------------------------- SIGKILL, then resumed


def test_a_long_backfill_killed_half_way_keeps_its_landed_dates_and_its_rerun_continues(
    tmp_path, database_url, warehouse_schema, schema_factory
):
    """The CLI backfill of raw entries (docs/operations.md, Backfills), committing every 200
    entries, killed once half its work dates have landed: the re-run reads what had not
    landed (and the dates it cannot be sure of), and the warehouse ends as a clean run's."""
    org = organisation(seed=67)
    with JibbleSimulator(org, page_cap=20, faults=FaultPlan(latency_seconds=0.01)) as simulator:
        env = cli_environment(tmp_path / "dagster", simulator, database_url, warehouse_schema)
        command = [
            str(BIN / "dagster"), "asset", "materialize", "-m", "jibble_pipeline.definitions",
            "--select", "raw_time_entries,quarantined_entries",
            "--partition-range", f"{FIRST}...{LAST}",
            "--config-json",
            '{"ops": {"fetch_time_entries": {"config": {"commit_every_entries": 200}}}}',
        ]  # fmt: skip
        days = (LAST - FIRST).days + 1
        landed = sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(warehouse_schema, "ingest_checkpoints")
        )

        def half_landed() -> bool:
            with psycopg.connect(database_url) as conn:
                exists = conn.execute(
                    "SELECT to_regclass(%s)", (f'"{warehouse_schema}".ingest_checkpoints',)
                ).fetchone()[0]
                return bool(exists) and conn.execute(landed).fetchone()[0] >= days / 2

        backfill = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        wait_for(lambda: half_landed() or backfill.poll() is not None, "half the dates landed")
        assert backfill.poll() is None, "the backfill ended before it could be killed"
        os.killpg(backfill.pid, signal.SIGKILL)
        backfill.communicate(timeout=60)
        with psycopg.connect(database_url) as conn:
            kept = conn.execute(landed).fetchone()[0]
        assert days / 2 <= kept < days

        simulator.reset_stats()
        rerun = subprocess.run(
            command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
        assert f"{kept} of {days} work dates were landed by an unfinished run" in (
            rerun.stdout + rerun.stderr
        )
        pages_of_rerun = simulator.stats.pages
        simulator.reset_stats()
        clean = Pipeline(simulator, database_url, schema_factory())
        assert clean.entries(FIRST, LAST).success
        assert pages_of_rerun < 0.6 * simulator.stats.pages
        tables = ["raw_time_entries", "quarantined_entries"]
        assert_same_warehouse(
            warehouse_rows(database_url, warehouse_schema, tables=tables),
            warehouse_rows(database_url, clean.schema, tables=tables),
        )


def test_a_backfill_killed_while_a_slow_api_serves_it_keeps_whole_dates_from_its_first_seconds(
    tmp_path, database_url, warehouse_schema
):
    """Against a slow API (a fixed window of 10 requests a second), chunks commit at the
    first date boundary after a second of fetching (the default ``commit_every_seconds``):
    killed a few seconds in, the run has landed whole dates, each with all of its entries
    and its own quarantine rows, and nothing of any other date."""
    org = organisation(seed=71)
    bad = {}
    for day in (FIRST, FIRST + timedelta(days=1)):
        entry = org.time_entries_for_dates(day, day)[3]
        bad[entry["id"]] = day
        org.edit_entry(entry["id"], drop=["personId"])
    faults = FaultPlan(rate_limit_per_second=10, rate_limit_style="fixed-window")
    with JibbleSimulator(org, page_cap=20, faults=faults) as simulator:
        env = cli_environment(tmp_path / "dagster", simulator, database_url, warehouse_schema)
        command = [
            str(BIN / "dagster"), "asset", "materialize", "-m", "jibble_pipeline.definitions",
            "--select", "raw_time_entries,quarantined_entries",
            "--partition-range", f"{FIRST}...{LAST}",
        ]  # fmt: skip
        checkpoints = sql.Identifier(warehouse_schema, "ingest_checkpoints")

        def landed() -> list[date]:
            with psycopg.connect(database_url) as conn:
                exists = conn.execute(
                    "SELECT to_regclass(%s)", (f'"{warehouse_schema}".ingest_checkpoints',)
                ).fetchone()[0]
                if not exists:
                    return []
                query = sql.SQL("SELECT work_date FROM {} ORDER BY 1").format(checkpoints)
                return [row[0] for row in conn.execute(query)]

        backfill = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        wait_for(lambda: len(landed()) >= 3 or backfill.poll() is not None, "3 dates landed")
        assert backfill.poll() is None, "the backfill ended before it could be killed"
        os.killpg(backfill.pid, signal.SIGKILL)
        backfill.communicate(timeout=60)
        kept = landed()
        days = (LAST - FIRST).days + 1
        assert 3 <= len(kept) < days

    with psycopg.connect(database_url) as conn:
        raw = sql.Identifier(warehouse_schema, "raw_time_entries")
        stored = conn.execute(
            sql.SQL("SELECT belongs_to_date, entry_id FROM {}").format(raw)
        ).fetchall()
        quarantine = sql.Identifier(warehouse_schema, "quarantined_entries")
        quarantined = conn.execute(
            sql.SQL("SELECT partition_date, entry_id FROM {}").format(quarantine)
        ).fetchall()
    # Whole dates, and only the dates that landed.
    assert {day for day, _ in stored} == set(kept)
    for day in kept:
        expected = {e["id"] for e in org.time_entries_for_dates(day, day)} - set(bad)
        assert {i for d, i in stored if d == day} == expected, day
    # The quarantine of the landed dates landed with them.
    assert sorted(quarantined) == sorted((day, i) for i, day in bad.items() if day in kept)
    assert quarantined, "the first dates landed, with their malformed entries"

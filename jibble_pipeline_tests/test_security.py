"""Secrets and hostile settings through real Dagster runs: the CLI as a user runs it, with
Dagster's storage in Postgres, against a faulty simulator."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._serdes import serialize_value
from psycopg import sql

from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation
from jibble_pipeline_tests.pipeline_harness import BIN, PROJECT_ROOT, Pipeline, cli_environment
from jibble_pipeline_tests.warehouse_state import assert_same_warehouse, warehouse_rows

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

FIRST, LAST = date(2025, 6, 2), date(2025, 6, 8)


def run_cli(command: list[str], env: dict[str, str], *, succeed: bool) -> str:
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert (done.returncode == 0) == succeed, output[-4000:]
    return output


@pytest.fixture
def hostile_schema(database_url, schema_factory):
    """A schema name written to break out of its quotes and drop a canary table (which
    exists, so a successful injection would show)."""
    canary_schema = schema_factory()
    canary = sql.Identifier(canary_schema, "canary")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(canary_schema)))
        conn.execute(sql.SQL("CREATE TABLE {} (alive boolean)").format(canary))
        name = f'x"; DROP TABLE {canary.as_string(conn)}; --'
    yield name, canary
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def recorded_text(home: Path, since: datetime, database_url: str, monkeypatch) -> tuple[str, int]:
    """Everything the Dagster instance of ``home`` recorded for the runs created since
    ``since``: runs (config, tags), every event (messages, metadata, errors), job and plan
    snapshots, and every file under ``home`` (compute logs). Returns the text and the number
    of runs."""
    monkeypatch.setenv("JIBBLE_DATABASE_URL", database_url)  # dagster.yaml's storage
    parts = [path.read_text(errors="replace") for path in home.rglob("*") if path.is_file()]
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        records = instance.get_run_records(filters=dg.RunsFilter(created_after=since))
        for run in (record.dagster_run for record in records):
            parts.append(serialize_value(run))
            parts.extend(serialize_value(event) for event in instance.all_logs(run.run_id))
            parts.append(serialize_value(instance.get_job_snapshot(run.job_snapshot_id)))
            plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
            parts.append(serialize_value(plan))
    return "\n".join(parts), len(records)


def test_secrets_and_tokens_never_reach_logs_events_or_errors_and_a_hostile_schema_is_inert(
    tmp_path, database_url, hostile_schema, schema_factory, monkeypatch
):
    schema, canary = hostile_schema
    org = SyntheticOrganisation(
        seed=61, agents=10, start=date(2025, 5, 26), end=date(2025, 6, 15),
        now=datetime(2025, 6, 12, tzinfo=UTC),
    )  # fmt: skip
    faults = FaultPlan(
        error_rate_5xx=0.2, rate_limit_per_second=30, rate_limit_burst=3, drop_rate=0.05,
        token_lifetime_seconds=2, seed=5,
    )  # fmt: skip
    home = tmp_path / "dagster"
    since = datetime.now(UTC)
    with JibbleSimulator(org, page_cap=50, faults=faults) as simulator:
        env = cli_environment(home, simulator, database_url, schema)
        # A backfill through retries and token renewals, into the hostile schema ...
        output = run_cli(
            [str(BIN / "jibble-pipeline"), "backfill", str(FIRST), str(LAST)], env, succeed=True
        )
        assert simulator.stats.server_errors and simulator.stats.rate_limited
        # ... and a run that fails on the tokens themselves: each answer is so slow that the
        # token has expired when the server looks at it, a fresh one included.
        simulator.faults = FaultPlan(
            stall_rate=1.0, stall_seconds=0.05, token_lifetime_seconds=0.01
        )
        output += run_cli(
            [str(BIN / "dagster"), "asset", "materialize", "-m", "jibble_pipeline.definitions",
             "--select", "agents"],
            env,
            succeed=False,
        )  # fmt: skip
        simulator.faults = FaultPlan()
        tokens = simulator.issued_tokens()
        secret = simulator.client_secret
        clean = schema_factory()
        assert Pipeline(simulator, database_url, clean).daily(FIRST, LAST).success
        assert Pipeline(simulator, database_url, clean).weekly(FIRST, LAST).success
        expected = warehouse_rows(database_url, clean)

    recorded, runs = recorded_text(home, since, database_url, monkeypatch)
    assert runs >= 3  # the backfill's daily and weekly runs, the failed run
    # What was scanned holds what it should: the retries logged, the failure recorded.
    assert "retrying in" in recorded and "retrying in" in output
    assert "refused a freshly issued access token" in recorded
    everything = output + recorded
    assert len(tokens) >= 6  # a session per snapshot and the fetch, two in the failed run
    secret_recorded = secret in everything  # (a bare assert would print the secret)
    assert not secret_recorded, "the client secret was recorded"
    leaked = [token for token in tokens if token in everything]
    assert not leaked, f"{len(leaked)} of {len(tokens)} access tokens were recorded"

    # The hostile schema name was only ever an identifier: the canary lives, and the
    # pipeline's tables in that schema hold what a clean run's hold.
    with psycopg.connect(database_url) as conn:
        assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(canary)).fetchone() == (0,)
    assert_same_warehouse(warehouse_rows(database_url, schema), expected)

"""The command-line backfills of docs/operations.md (Backfills), run as a user runs them,
against a faulty server."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation
from jibble_pipeline_tests.pipeline_harness import cli_environment

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SNAPSHOTS = "agents,client_groups,activities,agent_group_history"
FIRST, LAST = date(2025, 1, 6), date(2025, 2, 2)
RANGE = f"{FIRST}...{LAST}"


@pytest.fixture(scope="module")
def flaky_simulator():
    org = SyntheticOrganisation(
        seed=11, agents=40, start=date(2025, 1, 1), end=date(2025, 2, 28),
        now=datetime(2025, 2, 20, 12, tzinfo=UTC),
    )  # fmt: skip
    # A limit of 25 requests/s (the client meets it unpaced, then adapts) and 5 % of 5xx.
    faults = FaultPlan(rate_limit_per_second=25, rate_limit_burst=5, error_rate_5xx=0.05, seed=3)
    with JibbleSimulator(org, page_cap=100, faults=faults) as simulator:
        yield simulator


@pytest.fixture
def cli_env(tmp_path, flaky_simulator, database_url, warehouse_schema):
    return cli_environment(
        tmp_path / "dagster_home", flaky_simulator, database_url, warehouse_schema
    )


def run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def raw_entries(database_url: str, schema: str) -> dict[str, tuple]:
    query = sql.SQL(
        "SELECT entry_id, raw_payload, updated_at, fetched_at, removed_at FROM {}"
    ).format(sql.Identifier(schema, "raw_time_entries"))
    with psycopg.connect(database_url) as conn:
        return {row[0]: row[1:] for row in conn.execute(query)}


def expected_entries(simulator: JibbleSimulator) -> dict[str, dict]:
    return {e["id"]: e for e in simulator.organisation.time_entries_for_dates(FIRST, LAST)}


def test_dagster_asset_materialize_range_loads_every_entry_once(
    cli_env, flaky_simulator, database_url, warehouse_schema
):
    materialize = [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "jibble_pipeline.definitions",
    ]
    run([*materialize, "--select", SNAPSHOTS], cli_env)
    flaky_simulator.reset_stats()
    run([*materialize, "--select", "raw_time_entries,quarantined_entries",
         "--partition-range", RANGE], cli_env)  # fmt: skip
    assert flaky_simulator.stats.rate_limited > 0  # the faults really happened

    loaded = raw_entries(database_url, warehouse_schema)
    expected = expected_entries(flaky_simulator)
    assert loaded.keys() == expected.keys()
    for entry_id, (payload, *_rest) in loaded.items():
        assert payload == expected[entry_id]  # the whole raw payload, unknown fields included

    # A second identical backfill changes nothing, not even fetched_at of unchanged rows.
    run([*materialize, "--select", "raw_time_entries,quarantined_entries",
         "--partition-range", RANGE], cli_env)  # fmt: skip
    assert raw_entries(database_url, warehouse_schema) == loaded


def test_dg_launch_range_is_one_run_and_idempotent(
    cli_env, flaky_simulator, database_url, warehouse_schema
):
    dg_launch = [str(BIN / "dg"), "launch"]
    run([*dg_launch, "--assets", SNAPSHOTS], cli_env)
    output = run([*dg_launch, "--assets", "raw_time_entries,quarantined_entries",
                  "--partition-range", RANGE], cli_env)  # fmt: skip
    assert output.count("RUN_SUCCESS") == 1
    loaded = raw_entries(database_url, warehouse_schema)
    assert loaded.keys() == expected_entries(flaky_simulator).keys()
    run([*dg_launch, "--assets", "raw_time_entries,quarantined_entries",
         "--partition-range", RANGE], cli_env)  # fmt: skip
    assert raw_entries(database_url, warehouse_schema) == loaded


def test_wrong_credentials_fail_with_an_actionable_message(cli_env):
    cli_env["JIBBLE_CLIENT_SECRET"] = "not-the-secret-0123"
    done = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "jibble_pipeline.definitions",
         "--select", "agents"],
        cwd=PROJECT_ROOT, env=cli_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "JIBBLE_CLIENT_ID" in output
    assert "not-the-secret-0123" not in output

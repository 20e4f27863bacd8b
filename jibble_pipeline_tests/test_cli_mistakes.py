"""The mistakes people make on the command line get one line that says what to fix, before
any run is launched or Dagster's storage is touched; and the commands people try just work."""

from __future__ import annotations

import subprocess
import time
import tomllib
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
import yaml
from psycopg import sql

from jibble_pipeline.cli import CODE_LOCATION_NAME, PROJECT_ROOT
from jibble_pipeline.simulator import JibbleSimulator, SyntheticOrganisation
from jibble_pipeline_tests.pipeline_harness import BIN, cli_environment

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

DAY = date(2025, 1, 8)


def run(command: list[str], env: dict[str, str], timeout: float = 300):
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    return done, time.monotonic() - started


def one_line_failure(done: subprocess.CompletedProcess, *, ours: str = "") -> str:
    """The one line of a failure. With ``ours``: the one line starting so, among the few
    that Dagster's own command line prints first (warnings about itself)."""
    assert done.returncode != 0, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert "Traceback" not in "\n".join(lines), "\n".join(lines[-40:])
    if ours:
        assert len(lines) <= 6, "\n".join(lines[-40:])
        (line,) = [line for line in lines if line.startswith(ours)]
        return line
    assert len(lines) == 1, "\n".join(lines[-40:])
    return lines[0]


@pytest.fixture(scope="module")
def simulator():
    org = SyntheticOrganisation(
        seed=3, agents=6, start=date(2025, 1, 1), end=date(2025, 1, 20),
        now=datetime(2025, 1, 15, tzinfo=UTC),
    )  # fmt: skip
    with JibbleSimulator(org, page_cap=50) as running:
        yield running


@pytest.fixture
def env(tmp_path, simulator, database_url, warehouse_schema):
    return cli_environment(tmp_path / "home", simulator, database_url, warehouse_schema)


def runs_recorded(env: dict[str, str], database_url: str) -> int:
    """Runs in the Dagster storage (the same Postgres, its public schema)."""
    with psycopg.connect(database_url) as conn:
        exists = conn.execute("SELECT to_regclass('public.runs')").fetchone()[0]
        if exists is None:
            return 0
        return conn.execute(sql.SQL("SELECT count(*) FROM public.runs")).fetchone()[0]


@pytest.mark.parametrize(
    ("start", "end", "says"),
    [
        ("2025-02-02", "2025-01-06", "is reversed: give the earlier date first"),
        ("2024-06-01", "2024-06-02", "before the first work date, 2025-01-01"),
        ("2030-01-01", "2030-01-02", "2030-01-02 is in the future"),
        ("last-week", "2025-01-06", "START must be a work date like 2025-01-06"),
        ("yesterday", "2025-01-06", "is reversed"),  # a word people use is understood
    ],
)
def test_a_wrong_range_is_one_line_and_launches_no_run(env, database_url, start, end, says):
    before = runs_recorded(env, database_url)
    done, _ = run([str(BIN / "jibble-pipeline"), "backfill", start, end], env)
    assert says in one_line_failure(done)
    assert runs_recorded(env, database_url) == before


def test_a_first_partition_in_the_future_is_refused_up_front(env):
    env["JIBBLE_PARTITIONS_START"] = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    done, _ = run([str(BIN / "jibble-pipeline"), "backfill", "2025-01-06", "2025-01-07"], env)
    assert "JIBBLE_PARTITIONS_START is" in one_line_failure(done)
    checked, _ = run([str(BIN / "dg"), "check", "defs"], env)
    assert checked.returncode != 0
    assert "JIBBLE_PARTITIONS_START is" in checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("command", "ours"),
    [
        (["jibble-pipeline", "backfill", "2025-01-06", "2025-01-07"], ""),
        (
            ["dagster", "asset", "materialize", "-m", "jibble_pipeline", "--select", "agents"],
            "Dagster's storage: ",
        ),
    ],
)
def test_a_wrong_database_url_is_one_line_without_the_password(env, command, ours):
    env["JIBBLE_DATABASE_URL"] = "postgresql://postgres:hunter2secret@127.0.0.1:1/missing"
    done, seconds = run([str(BIN / command[0]), *command[1:]], env)
    line = one_line_failure(done, ours=ours)
    assert "Connection refused" in line
    assert "Cannot connect to the warehouse at postgresql://postgres:***@127.0.0.1:1/missing" in (
        line
    )
    assert "JIBBLE_DATABASE_URL" in line and "hunter2secret" not in line
    assert seconds < 30  # no minute of retries first


def test_the_package_loads_and_one_asset_of_a_pair_can_be_selected_alone(
    env, simulator, database_url, warehouse_schema
):
    materialize = [str(BIN / "dagster"), "asset", "materialize", "-m", "jibble_pipeline"]
    done, _ = run([*materialize, "--select", "agents"], env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    done, _ = run([*materialize, "--select", "raw_time_entries", "--partition", str(DAY)], env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(warehouse_schema, "raw_time_entries")
            )
        ).fetchone()[0]
        history = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(warehouse_schema, "agent_group_history")
            )
        ).fetchone()[0]
    assert stored == len(simulator.organisation.time_entries_for_dates(DAY, DAY)) > 0
    assert history == len(simulator.organisation.people)  # followed the People sync


def test_the_code_location_has_one_name_however_dagster_is_started():
    """Schedule and sensor state is kept per location name: a new name would start the
    late-edits watermark afresh."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    names = {
        project["tool"]["dagster"]["code_location_name"],
        project["tool"]["dg"]["project"]["code_location_name"],
        *(entry["python_module"]["location_name"] for entry in workspace["load_from"]),
        CODE_LOCATION_NAME,  # `jibble-pipeline serve-code`, and the deployment files' name
    }
    assert names == {"jibble_pipeline"}
    demo = (PROJECT_ROOT / "jibble_pipeline" / "cli.py").read_text()
    assert '"-w",\n            str(PROJECT_ROOT / "workspace.yaml")' in demo

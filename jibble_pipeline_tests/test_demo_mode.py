"""Without credentials the project reads its own simulator and says so, from the CLI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from jibble_pipeline.simulator import SyntheticOrganisation
from jibble_pipeline.simulator.demo import DEMO_AGENTS, DEMO_SEED

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def environment_without_credentials(tmp_path: Path, database_url: str, schema: str) -> dict:
    """A user's environment with no Jibble credentials, a Dagster instance of its own."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JIBBLE_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        JIBBLE_DATABASE_URL=database_url,
        JIBBLE_DB_SCHEMA=schema,
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
    )
    return env


def test_backfill_without_credentials_runs_on_the_simulator(
    tmp_path, database_url, warehouse_schema
):
    env = environment_without_credentials(tmp_path, database_url, warehouse_schema)
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=10), today - timedelta(days=8)
    done = subprocess.run(
        [str(BIN / "jibble-pipeline"), "backfill", str(first), str(last)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "DEMO MODE" in done.stdout  # said up front, and in the run's logs
    assert "raw_time_entries" in done.stdout  # the closing summary of the tables

    organisation = SyntheticOrganisation(
        seed=DEMO_SEED, agents=DEMO_AGENTS, start=first - timedelta(days=30), end=today
    )
    expected = {e["id"] for e in organisation.time_entries_for_dates(first, last)}
    with psycopg.connect(database_url) as conn:
        loaded = {
            entry_id
            for (entry_id,) in conn.execute(
                sql.SQL("SELECT entry_id FROM {}").format(
                    sql.Identifier(warehouse_schema, "raw_time_entries")
                )
            )
        }
        weeks = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(warehouse_schema, "weekly_hours")
            )
        ).fetchone()[0]
    assert loaded == expected
    assert weeks > 0


def test_the_demo_backfills_whole_weeks_and_builds_the_digests_and_the_site(
    tmp_path, database_url, warehouse_schema
):
    env = environment_without_credentials(tmp_path, database_url, warehouse_schema)
    env["JIBBLE_REPORTS_DIR"] = str(tmp_path / "reports")
    done = subprocess.run(
        [str(BIN / "jibble-pipeline"), "demo", "--weeks", "1", "--no-serve"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday() + 7)
    assert f"Backfilling work dates {monday}.." in done.stdout  # from a Monday: whole weeks
    assert "Sessions not yet derived" not in output
    assert "have hours but no client" not in output  # the sample directory covers every group
    assert "a dry run, nothing sent" in done.stdout
    assert (tmp_path / "reports" / "index.html").is_file()
    assert f"Report site: {tmp_path / 'reports' / 'index.html'}" in done.stdout
    yesterday = today - timedelta(days=1)
    assert f"Operations alert for {yesterday} (a dry run, nothing sent): " in done.stdout
    # The late edit at the simulator, picked up, and the correction it makes, rendered.
    assert "Late edit at the simulator: John Malik (AG02" in done.stdout
    assert "The late-edits sensor saw it: 1 run(s) re-derived the date." in done.stdout
    (correction,) = re.findall(r"Correction 1 for \S+ \(week of [-\d]+; a dry run, nothing "
                               r"sent\): (\S+)", done.stdout)  # fmt: skip
    text = Path(correction).with_suffix(".txt").read_text()
    assert "John Malik (AG02" in text and "(+0:45); entries edited after the report" in text
    with psycopg.connect(database_url) as conn:
        digests, sent, corrections_sent, alerts_sent = (
            conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(warehouse_schema, name))
            ).fetchone()[0]
            for name in ("client_digests", "sent_digests", "sent_corrections", "sent_alerts")
        )
        versions = conn.execute(
            sql.SQL("SELECT kind, dry_run, count(*) FROM {} GROUP BY 1, 2 ORDER BY 1").format(
                sql.Identifier(warehouse_schema, "reported_weeks")
            )
        ).fetchall()
    assert digests > 0 and sent == corrections_sent == alerts_sent == 0
    # A demo sends nothing: what it would have told clients is recorded as a dry run.
    assert versions == [("correction", True, 1), ("digest", True, digests)]

"""Runs the real assets against a simulator and a Postgres schema, the way the schedule does."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.assets.checks import ALL_CHECKS
from jibble_pipeline.assets.sessions import derive_daily_hours
from jibble_pipeline.assets.snapshots import activities, agents, client_groups
from jibble_pipeline.assets.time_entries import fetch_time_entries
from jibble_pipeline.assets.weekly import weekly_hours
from jibble_pipeline.partitions import monday_on_or_before, range_tags
from jibble_pipeline.resources import pipeline_resources, server_jibble
from jibble_pipeline.simulator import JibbleSimulator, SyntheticOrganisation

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SNAPSHOTS = [agents, client_groups, activities]
DAILY = [fetch_time_entries, derive_daily_hours]
ALL_ASSETS = [*SNAPSHOTS, *DAILY, weekly_hours]
CHECKS = [c for c in ALL_CHECKS if "freshness" not in str(c.check_keys)]


class Pipeline:
    """The project's assets wired to one simulator and one warehouse schema."""

    def __init__(
        self,
        simulator: JibbleSimulator,
        database_url: str,
        schema: str,
        *,
        commit_every: int | None = None,
        **jibble_options,
    ):
        """``commit_every``: entries per commit of the raw-entry fetch (its config);
        ``jibble_options``: further JibbleResource settings (timeout, retry limits)."""
        self.simulator = simulator
        self.commit_every = commit_every
        self.database_url = database_url
        self.schema = schema
        self.instance = dg.DagsterInstance.ephemeral()
        jibble = server_jibble(simulator, page_size=1000, **jibble_options)
        self.resources = pipeline_resources(jibble, database_url, schema)

    def _run(
        self, selection, tags, now: datetime | None, raise_on_error: bool = True
    ) -> dg.ExecuteInProcessResult:
        ops: dict[str, dict] = {}
        if now is not None:
            ops["derive_daily_hours"] = {"config": {"now": now.isoformat()}}
        if self.commit_every is not None and fetch_time_entries in selection:
            ops["fetch_time_entries"] = {"config": {"commit_every_entries": self.commit_every}}
        run_config = {"ops": ops} if ops else {}
        return dg.materialize(
            [*ALL_ASSETS, *CHECKS],
            selection=selection,
            instance=self.instance,
            resources=self.resources,
            tags=tags,
            run_config=run_config,
            raise_on_error=raise_on_error,
        )

    def sync_snapshots(self) -> dg.ExecuteInProcessResult:
        return self._run(SNAPSHOTS, {}, None)

    def daily(
        self, first: date, last: date, *, now: datetime | None = None, raise_on_error=True
    ) -> dg.ExecuteInProcessResult:
        """One run over [first, last]: snapshots, raw entries, sessions, attendance."""
        return self._run([*SNAPSHOTS, *DAILY], range_tags(first, last), now, raise_on_error)

    def entries(self, first: date, last: date, *, raise_on_error=True) -> dg.ExecuteInProcessResult:
        """One run over [first, last] of the raw entries and their quarantine only."""
        return self._run([fetch_time_entries], range_tags(first, last), None, raise_on_error)

    def derive(self, first: date, last: date, *, now: datetime | None = None):
        """One run over [first, last] of the sessions and attendance only (no fetch)."""
        return self._run([derive_daily_hours], range_tags(first, last), now)

    def weekly(self, first: date, last: date, *, raise_on_error=True) -> dg.ExecuteInProcessResult:
        weeks = range_tags(monday_on_or_before(first), monday_on_or_before(last))
        return self._run([weekly_hours], weeks, None, raise_on_error)

    def table(self, name: str, order_by: str) -> pd.DataFrame:
        """A warehouse table (without jsonb columns unless asked), in a stable order."""
        query = sql.SQL("SELECT * FROM {} ORDER BY {}").format(
            sql.Identifier(self.schema, name), sql.SQL(order_by)
        )
        with psycopg.connect(self.database_url) as conn, conn.cursor() as cur:
            cur.execute(query)
            columns = [d.name for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=columns)


def cli_environment(
    home: Path, simulator: JibbleSimulator, database_url: str, schema: str
) -> dict[str, str]:
    """The environment of a user running the project's CLI against ``simulator`` and the
    warehouse ``schema``, with a Dagster instance of its own in ``home`` (the project's
    dagster.yaml: Dagster's storage in the same Postgres)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JIBBLE_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        JIBBLE_HOME=str(home / "jibble"),
        JIBBLE_CLIENT_ID=simulator.client_id,
        JIBBLE_CLIENT_SECRET=simulator.client_secret,
        JIBBLE_IDENTITY_URL=simulator.url,
        JIBBLE_WORKSPACE_URL=simulator.url,
        JIBBLE_TIME_TRACKING_URL=simulator.url,
        JIBBLE_TIME_ATTENDANCE_URL=simulator.url,
        JIBBLE_DATABASE_URL=database_url,
        JIBBLE_DB_SCHEMA=schema,
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
    )
    return env


@dataclass(frozen=True)
class PipelineSetup:
    """What the ``pipeline`` fixture runs: a synthetic organisation (``seed``, ``agents``,
    entries from ``start`` to ``end``), with work dates ``first``..``last`` derived as of
    ``now`` before the test, and their weeks too with ``weekly``."""

    seed: int
    agents: int
    start: date
    end: date
    first: date
    last: date
    now: datetime
    weekly: bool = False

    def organisation(self) -> SyntheticOrganisation:
        """A fresh organisation (tests edit theirs)."""
        return SyntheticOrganisation(
            seed=self.seed, agents=self.agents, start=self.start, end=self.end, now=self.now
        )


@contextmanager
def running_pipeline(setup: PipelineSetup, database_url: str, schema: str) -> Iterator[Pipeline]:
    """A ``Pipeline`` over a simulator of ``setup``'s organisation (pages of at most 100 rows),
    its work dates (and weeks) already derived."""
    with JibbleSimulator(setup.organisation(), page_cap=100) as simulator:
        running = Pipeline(simulator, database_url, schema)
        assert running.daily(setup.first, setup.last, now=setup.now).success
        if setup.weekly:
            assert running.weekly(setup.first, setup.last).success
        yield running

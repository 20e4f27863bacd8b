"""Runs the real assets against a simulator and a Postgres schema, the way the schedule does."""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.assets.checks import ALL_CHECKS
from jibble_pipeline.assets.sessions import derive_daily_hours
from jibble_pipeline.assets.snapshots import activities, agent_group_history, agents, client_groups
from jibble_pipeline.assets.time_entries import fetch_time_entries
from jibble_pipeline.assets.weekly import weekly_hours
from jibble_pipeline.automation.partitions import monday_on_or_before
from jibble_pipeline.automation.schedules import range_tags
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.simulator import JibbleSimulator
from jibble_pipeline.warehouse.io_manager import PostgresIOManager
from jibble_pipeline.warehouse.resource import WarehouseResource

SNAPSHOTS = [agents, client_groups, activities, agent_group_history]
DAILY = [fetch_time_entries, derive_daily_hours]
ALL_ASSETS = [*SNAPSHOTS, *DAILY, weekly_hours]
CHECKS = [c for c in ALL_CHECKS if "freshness" not in str(c.check_keys)]


class Pipeline:
    """The project's assets wired to one simulator and one warehouse schema."""

    def __init__(self, simulator: JibbleSimulator, database_url: str, schema: str):
        self.simulator = simulator
        self.database_url = database_url
        self.schema = schema
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = {
            "jibble": JibbleResource(
                client_id=simulator.client_id,
                client_secret=simulator.client_secret,
                identity_url=simulator.url,
                workspace_url=simulator.url,
                time_tracking_url=simulator.url,
                page_size=1000,
            ),
            "io_manager": PostgresIOManager(database_url=database_url, schema_name=schema),
            "warehouse": WarehouseResource(database_url=database_url, schema_name=schema),
        }

    def _run(self, selection, tags, now: datetime | None) -> dg.ExecuteInProcessResult:
        run_config = {}
        if now is not None:
            run_config = {"ops": {"derive_daily_hours": {"config": {"now": now.isoformat()}}}}
        return dg.materialize(
            [*ALL_ASSETS, *CHECKS],
            selection=selection,
            instance=self.instance,
            resources=self.resources,
            tags=tags,
            run_config=run_config,
        )

    def sync_snapshots(self) -> dg.ExecuteInProcessResult:
        return self._run(SNAPSHOTS, {}, None)

    def daily(self, first: date, last: date, *, now: datetime | None = None):
        """One run over [first, last]: snapshots, raw entries, sessions, attendance."""
        return self._run([*SNAPSHOTS, *DAILY], range_tags(first, last), now)

    def weekly(self, first: date, last: date) -> dg.ExecuteInProcessResult:
        weeks = range_tags(monday_on_or_before(first), monday_on_or_before(last))
        return self._run([weekly_hours], weeks, None)

    def table(self, name: str, order_by: str) -> pd.DataFrame:
        """A warehouse table (without jsonb columns unless asked), in a stable order."""
        query = sql.SQL("SELECT * FROM {} ORDER BY {}").format(
            sql.Identifier(self.schema, name), sql.SQL(order_by)
        )
        with psycopg.connect(self.database_url) as conn, conn.cursor() as cur:
            cur.execute(query)
            columns = [d.name for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=columns)

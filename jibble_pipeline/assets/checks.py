"""Data-quality checks shown next to the assets in the UI.

Each check looks at the work dates of the run it belongs to (its partition or partition
range), or at the whole table when run on its own.
"""

import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dagster as dg
import pandas as pd
from psycopg import sql

from jibble_pipeline.assets.hour_entries import hour_entries_not_counted
from jibble_pipeline.assets.metadata import table_metadata
from jibble_pipeline.assets.reconciliation import hours_match_jibble
from jibble_pipeline.partitions import run_dates
from jibble_pipeline.warehouse.resource import WarehouseResource


def scalar(frame: pd.DataFrame) -> int:
    return int(frame.iloc[0, 0])


def column_total(column: str) -> Callable[[pd.DataFrame], int]:
    return lambda frame: int(frame[column].sum()) if len(frame) else 0


def warehouse_check(
    *,
    name: str,
    asset: str,
    description: str,
    query: str,
    tables: dict[str, str],
    total: Callable[[pd.DataFrame], int],
    counted: str,
    shown: str | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    advice: str | None = None,
) -> dg.AssetChecksDefinition:
    """A check that passes when ``total`` of ``query``'s rows is 0, for the run's dates.

    ``query`` names the warehouse tables in ``tables`` ({placeholder: table}) and the range
    as ``%(first)s``/``%(last)s``; the metadata holds the total as ``counted`` and, with
    ``shown``, the rows as a table."""

    @dg.asset_check(asset=asset, name=name, description=description)
    def check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        first, last = run_dates(context.run.tags)
        names = {key: warehouse.table(table) for key, table in tables.items()}
        rows = warehouse.query_frame(sql.SQL(query).format(**names), {"first": first, "last": last})
        found = total(rows)
        metadata: dict[str, Any] = {counted: found}
        if shown:
            metadata[shown] = table_metadata(rows)
        if advice and found:
            metadata["fix"] = advice
        return dg.AssetCheckResult(passed=found == 0, severity=severity, metadata=metadata)

    return check


no_duplicate_entry_ids = warehouse_check(
    name="no_duplicate_entry_ids",
    asset="raw_time_entries",
    description="Jibble ids are unique in the warehouse.",
    query="SELECT count(*) - count(DISTINCT entry_id) FROM {raw}"
    " WHERE belongs_to_date BETWEEN %(first)s AND %(last)s",
    tables={"raw": "raw_time_entries"},
    total=scalar,
    counted="duplicate_ids",
)

no_quarantined_entries = warehouse_check(
    name="no_quarantined_entries",
    asset="quarantined_entries",
    description="Entries that failed validation are waiting for a fix at the source.",
    query="SELECT reason, count(*) AS entries FROM {quarantine}"
    " WHERE partition_date BETWEEN %(first)s AND %(last)s GROUP BY reason ORDER BY 2 DESC",
    tables={"quarantine": "quarantined_entries"},
    total=column_total("entries"),
    counted="quarantined",
    shown="reasons",
    severity=dg.AssetCheckSeverity.WARN,
)

sessions_do_not_overlap = warehouse_check(
    name="sessions_do_not_overlap",
    asset="sessions",
    description="No agent is in two sessions at once.",
    query="""
    WITH ordered AS (
        SELECT end_utc, lead(start_utc) OVER (
            PARTITION BY person_id ORDER BY start_utc, session_id) AS next_start
        FROM {sessions}
        WHERE belongs_to_date BETWEEN %(first)s::date - 1 AND %(last)s::date + 1
    )
    SELECT count(*) FROM ordered WHERE end_utc > next_start
    """,
    tables={"sessions": "sessions"},
    total=scalar,
    counted="overlapping_sessions",
)

sessions_have_their_agents_group = warehouse_check(
    name="sessions_have_their_agents_group",
    asset="sessions",
    description="Sessions of agents with a client group have one (group history followed "
    "the People sync).",
    query="SELECT s.person_id, count(*) AS sessions FROM {sessions} s"
    " JOIN {agents} a ON a.person_id = s.person_id AND a.group_id IS NOT NULL"
    " WHERE s.group_id IS NULL AND s.belongs_to_date BETWEEN %(first)s AND %(last)s"
    " GROUP BY s.person_id ORDER BY 2 DESC",
    tables={"sessions": "sessions", "agents": "agents"},
    total=column_total("sessions"),
    counted="sessions_without_group",
    shown="agents",
    advice="materialise agent_group_history (with agents), then re-derive the dates",
)

ENTRY_ACCOUNTING = """
WITH active AS (
    SELECT entry_id, type, time_utc,
           lag(type) OVER w AS previous_type,
           lag(time_utc) OVER w AS previous_time,
           lead(time_utc) OVER w AS next_time
    FROM {raw}
    WHERE belongs_to_date BETWEEN %(first)s AND %(last)s
      AND removed_at IS NULL AND coalesce(status, 'Active') = 'Active'
    WINDOW w AS (PARTITION BY person_id, belongs_to_date ORDER BY time_utc, entry_id)
),
classified AS (
    SELECT a.*,
        CASE
            WHEN type = 'In' AND next_time = time_utc THEN 'zero_length'
            WHEN type = 'In' THEN 'session_start'
            WHEN previous_type IS DISTINCT FROM 'In' THEN 'orphan_out'
            WHEN previous_time = time_utc THEN 'zero_length'
            ELSE 'session_end'
        END AS role
    FROM active a
)
SELECT role, count(*) AS entries,
       count(*) FILTER (WHERE role = 'session_start' AND NOT EXISTS (
           SELECT 1 FROM {sessions} s WHERE s.session_id = c.entry_id)) +
       count(*) FILTER (WHERE role = 'session_end' AND NOT EXISTS (
           SELECT 1 FROM {sessions} s WHERE s.end_entry_id = c.entry_id)) AS unaccounted
FROM classified c GROUP BY role ORDER BY role
"""

active_entries_accounted_for = warehouse_check(
    name="active_entries_accounted_for",
    asset="sessions",
    description="Every Active entry starts or ends a session, or is a reported orphan Out "
    "or part of a dropped zero-length pair.",
    query=ENTRY_ACCOUNTING,
    tables={"raw": "raw_time_entries", "sessions": "sessions"},
    total=column_total("unaccounted"),
    counted="unaccounted_entries",
    shown="entries_by_role",
)

orphan_outs = warehouse_check(
    name="orphan_outs",
    asset="sessions",
    description="Out punches with no open session (no hours).",
    query="SELECT coalesce(sum(orphan_out_count), 0) FROM {attendance}"
    " WHERE belongs_to_date BETWEEN %(first)s AND %(last)s",
    tables={"attendance": "daily_attendance"},
    total=scalar,
    counted="orphan_outs",
    severity=dg.AssetCheckSeverity.WARN,
)

incomplete_sessions_per_week = warehouse_check(
    name="incomplete_sessions_per_week",
    asset="weekly_hours",
    description="Sessions with no end (open or incomplete) in the week.",
    query="SELECT week_start, sum(incomplete_count) AS incomplete_sessions FROM {weekly}"
    " WHERE week_start BETWEEN %(first)s AND %(last)s GROUP BY week_start ORDER BY week_start",
    tables={"weekly": "weekly_hours"},
    total=column_total("incomplete_sessions"),
    counted="incomplete_sessions",
    shown="per_week",
    severity=dg.AssetCheckSeverity.WARN,
)

WEEKLY_VS_SESSIONS = """
WITH weekly AS (
    SELECT week_start, sum(work_seconds) AS work_seconds, sum(break_seconds) AS break_seconds
    FROM {weekly} WHERE week_start BETWEEN %(first)s AND %(last)s GROUP BY week_start
),
daily AS (
    SELECT belongs_to_date - (extract(isodow FROM belongs_to_date)::int - 1) AS week_start,
           coalesce(sum(duration_seconds) FILTER (WHERE kind = 'work'), 0) AS work_seconds,
           coalesce(sum(duration_seconds) FILTER (WHERE kind = 'break'), 0) AS break_seconds
    FROM {sessions}
    WHERE status = 'complete' AND belongs_to_date BETWEEN %(first)s AND %(last)s::date + 6
    GROUP BY 1
)
SELECT coalesce(w.week_start, d.week_start) AS week_start,
       coalesce(w.work_seconds, 0) AS weekly_work_seconds,
       coalesce(d.work_seconds, 0) AS session_work_seconds,
       coalesce(w.break_seconds, 0) AS weekly_break_seconds,
       coalesce(d.break_seconds, 0) AS session_break_seconds
FROM weekly w FULL JOIN daily d ON w.week_start = d.week_start
WHERE coalesce(w.work_seconds, 0) <> coalesce(d.work_seconds, 0)
   OR coalesce(w.break_seconds, 0) <> coalesce(d.break_seconds, 0)
ORDER BY 1
"""

weekly_totals_match_sessions = warehouse_check(
    name="weekly_totals_match_sessions",
    asset="weekly_hours",
    description="Each week's totals equal the sum of its days' complete sessions.",
    query=WEEKLY_VS_SESSIONS,
    tables={"weekly": "weekly_hours", "sessions": "sessions"},
    total=len,
    counted="weeks_differing",
    shown="differences",
)


with warnings.catch_warnings():
    # Marked superseded in 1.13; they still work and show as ordinary checks in the UI.
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    raw_entries_freshness = dg.build_last_update_freshness_checks(
        assets=["raw_time_entries"], lower_bound_delta=timedelta(minutes=30)
    )
    freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=raw_entries_freshness,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )

ALL_CHECKS = [
    no_duplicate_entry_ids,
    no_quarantined_entries,
    sessions_do_not_overlap,
    sessions_have_their_agents_group,
    active_entries_accounted_for,
    orphan_outs,
    incomplete_sessions_per_week,
    weekly_totals_match_sessions,
    hours_match_jibble,
    hour_entries_not_counted,
    *raw_entries_freshness,
]

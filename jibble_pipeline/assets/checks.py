"""Data-quality checks shown next to the assets in the UI.

Each check looks at the work dates of the run it belongs to (its partition or partition
range), or at the whole table when run on its own.
"""

import warnings
from datetime import date, timedelta

import dagster as dg
from psycopg import sql

from jibble_pipeline.assets.metadata import table_metadata
from jibble_pipeline.automation.schedules import RANGE_END_TAG, RANGE_START_TAG
from jibble_pipeline.warehouse.resource import WarehouseResource

FAR_PAST = date(1900, 1, 1)
FAR_FUTURE = date(9999, 12, 31)


def run_dates(context: dg.AssetCheckExecutionContext) -> tuple[date, date]:
    """First and last partition key of the run, as dates (all history when unpartitioned)."""
    tags = context.run.tags
    first = tags.get(RANGE_START_TAG) or tags.get("dagster/partition")
    last = tags.get(RANGE_END_TAG) or tags.get("dagster/partition")
    if not first or not last:
        return FAR_PAST, FAR_FUTURE
    return date.fromisoformat(first), date.fromisoformat(last)


def _count(warehouse: WarehouseResource, query: sql.Composable, params: dict) -> int:
    return int(warehouse.query_frame(query, params).iloc[0, 0])


@dg.asset_check(asset="raw_time_entries", description="Jibble ids are unique in the warehouse.")
def no_duplicate_entry_ids(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    first, last = run_dates(context)
    query = sql.SQL(
        "SELECT count(*) - count(DISTINCT entry_id) FROM {t}"
        " WHERE belongs_to_date BETWEEN %(first)s AND %(last)s"
    ).format(t=warehouse.table("raw_time_entries"))
    duplicates = _count(warehouse, query, {"first": first, "last": last})
    return dg.AssetCheckResult(passed=duplicates == 0, metadata={"duplicate_ids": duplicates})


@dg.asset_check(
    asset="quarantined_entries",
    description="Entries that failed validation are waiting for a fix at the source.",
)
def no_quarantined_entries(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    first, last = run_dates(context)
    query = sql.SQL(
        "SELECT reason, count(*) AS entries FROM {t}"
        " WHERE partition_date BETWEEN %(first)s AND %(last)s GROUP BY reason ORDER BY 2 DESC"
    ).format(t=warehouse.table("quarantined_entries"))
    reasons = warehouse.query_frame(query, {"first": first, "last": last})
    total = int(reasons["entries"].sum()) if len(reasons) else 0
    return dg.AssetCheckResult(
        passed=total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantined": total, "reasons": table_metadata(reasons)},
    )


@dg.asset_check(asset="sessions", description="No agent is in two sessions at once.")
def sessions_do_not_overlap(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    first, last = run_dates(context)
    query = sql.SQL(
        """
        WITH ordered AS (
            SELECT end_utc, lead(start_utc) OVER (
                PARTITION BY person_id ORDER BY start_utc, session_id) AS next_start
            FROM {t}
            WHERE belongs_to_date BETWEEN %(first)s::date - 1 AND %(last)s::date + 1
        )
        SELECT count(*) FROM ordered WHERE end_utc > next_start
        """
    ).format(t=warehouse.table("sessions"))
    overlaps = _count(warehouse, query, {"first": first, "last": last})
    return dg.AssetCheckResult(passed=overlaps == 0, metadata={"overlapping_sessions": overlaps})


@dg.asset_check(
    asset="sessions",
    description="Sessions of agents with a client group have one (group history followed "
    "the People sync).",
)
def sessions_have_their_agents_group(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    first, last = run_dates(context)
    query = sql.SQL(
        "SELECT s.person_id, count(*) AS sessions FROM {sessions} s"
        " JOIN {agents} a ON a.person_id = s.person_id AND a.group_id IS NOT NULL"
        " WHERE s.group_id IS NULL AND s.belongs_to_date BETWEEN %(first)s AND %(last)s"
        " GROUP BY s.person_id ORDER BY 2 DESC"
    ).format(sessions=warehouse.table("sessions"), agents=warehouse.table("agents"))
    missing = warehouse.query_frame(query, {"first": first, "last": last})
    total = int(missing["sessions"].sum()) if len(missing) else 0
    return dg.AssetCheckResult(
        passed=total == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "sessions_without_group": total,
            "agents": table_metadata(missing),
            "fix": "materialise agent_group_history (with agents), then re-derive the dates",
        },
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


@dg.asset_check(
    asset="sessions",
    description="Every Active entry starts or ends a session, or is a reported orphan Out "
    "or part of a dropped zero-length pair.",
)
def active_entries_accounted_for(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    first, last = run_dates(context)
    query = sql.SQL(ENTRY_ACCOUNTING).format(
        raw=warehouse.table("raw_time_entries"), sessions=warehouse.table("sessions")
    )
    roles = warehouse.query_frame(query, {"first": first, "last": last})
    unaccounted = int(roles["unaccounted"].sum()) if len(roles) else 0
    return dg.AssetCheckResult(
        passed=unaccounted == 0,
        metadata={"unaccounted_entries": unaccounted, "entries_by_role": table_metadata(roles)},
    )


@dg.asset_check(asset="sessions", description="Out punches with no open session (no hours).")
def orphan_outs(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    first, last = run_dates(context)
    query = sql.SQL(
        "SELECT coalesce(sum(orphan_out_count), 0) FROM {t}"
        " WHERE belongs_to_date BETWEEN %(first)s AND %(last)s"
    ).format(t=warehouse.table("daily_attendance"))
    orphans = _count(warehouse, query, {"first": first, "last": last})
    return dg.AssetCheckResult(
        passed=orphans == 0, severity=dg.AssetCheckSeverity.WARN, metadata={"orphan_outs": orphans}
    )


@dg.asset_check(
    asset="weekly_hours", description="Sessions with no end (open or incomplete) in the week."
)
def incomplete_sessions_per_week(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    first, last = run_dates(context)
    query = sql.SQL(
        "SELECT week_start, sum(incomplete_count) AS incomplete_sessions FROM {t}"
        " WHERE week_start BETWEEN %(first)s AND %(last)s GROUP BY week_start ORDER BY week_start"
    ).format(t=warehouse.table("weekly_hours"))
    weeks = warehouse.query_frame(query, {"first": first, "last": last})
    total = int(weeks["incomplete_sessions"].sum()) if len(weeks) else 0
    return dg.AssetCheckResult(
        passed=total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"incomplete_sessions": total, "per_week": table_metadata(weeks)},
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


@dg.asset_check(
    asset="weekly_hours",
    description="Each week's totals equal the sum of its days' complete sessions.",
)
def weekly_totals_match_sessions(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    first, last = run_dates(context)
    query = sql.SQL(WEEKLY_VS_SESSIONS).format(
        weekly=warehouse.table("weekly_hours"), sessions=warehouse.table("sessions")
    )
    mismatches = warehouse.query_frame(query, {"first": first, "last": last})
    return dg.AssetCheckResult(
        passed=mismatches.empty,
        metadata={"weeks_differing": len(mismatches), "differences": table_metadata(mismatches)},
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
    *raw_entries_freshness,
]

"""Weekly hours per agent, client group and activity (Monday weeks)."""

from datetime import date, timedelta

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.metadata import hours_bar_chart, hours_table, rows_by
from jibble_pipeline.assets.sessions import GROUP
from jibble_pipeline.assets.table_metadata import column_schema
from jibble_pipeline.partitions import (
    daily_partitions,
    run_weeks,
    week_of_days,
    weekly_partitions,
)
from jibble_pipeline.rules.weekly import sum_weekly_hours
from jibble_pipeline.warehouse.display_names import Names, load_names, named
from jibble_pipeline.warehouse.resource import WarehouseResource
from jibble_pipeline.warehouse.versions import carry_versions

# Re-derive a week whenever any of its days' sessions changed, once nothing upstream is
# still running. Not limited to the latest week: late edits change past weeks too.
WEEKLY_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("any day of the week re-derived")


def missing_days(context: dg.AssetExecutionContext) -> list[str]:
    """Days of the run's weeks that have a daily partition but no sessions derived yet."""
    done = context.instance.get_materialized_partitions(dg.AssetKey("sessions"))
    existing = set(daily_partitions.get_partition_keys())
    days = [
        (week + timedelta(days=n)).isoformat()
        for week in run_weeks(context.run.tags)
        for n in range(7)
    ]
    return [key for key in days if key in existing and key not in done]


@dg.asset(
    ins={"sessions": dg.AssetIn(partition_mapping=week_of_days)},
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=WEEKLY_AUTOMATION,
    group_name=GROUP,
    kinds={"postgres"},
    metadata=column_schema("weekly_hours"),
)
def weekly_hours(
    context: dg.AssetExecutionContext, sessions: pd.DataFrame, warehouse: WarehouseResource
) -> pd.DataFrame:
    """Hours per (week, agent, client group, activity) from the seven days' sessions."""
    frame = carry_versions(sum_weekly_hours(sessions), sessions)
    missing = missing_days(context)
    if missing:
        context.log.warning(f"Sessions not yet derived for {len(missing)} day(s): {missing}")
    names = load_names(warehouse)
    complete = sessions[(sessions["status"] == "complete") & (sessions["kind"] == "work")]
    weeks = rows_by(frame, "week_start")
    monday = pd.to_datetime(complete["belongs_to_date"]).dt.to_period("W-SUN").dt.start_time
    days = rows_by(complete.assign(week_start=monday.dt.date), "week_start")
    for week in run_weeks(context.run.tags):
        context.add_asset_metadata(
            week_metadata(weeks.get(week), days.get(week), missing, week, names),
            partition_key=week.isoformat(),
        )
    return frame


def week_metadata(
    rows: pd.DataFrame | None,
    sessions: pd.DataFrame | None,
    missing: list[str],
    week: date,
    names: Names,
) -> dict[str, object]:
    """One week's hours: totals, by group, agent and activity, per day."""
    own_days = {(week + timedelta(days=n)).isoformat() for n in range(7)}
    metadata: dict[str, object] = {
        "dagster/row_count": 0 if rows is None else len(rows),
        "days_without_sessions": dg.MetadataValue.json(sorted(own_days.intersection(missing))),
    }
    if rows is None or rows.empty:
        return metadata
    # A week can have rows (breaks, sessions still open) and no complete work session yet.
    no_work = pd.Series(dtype="int64")
    per_day = (
        no_work
        if sessions is None
        else sessions.groupby("belongs_to_date")["duration_seconds"].sum()
    )
    return {
        **metadata,
        "agents": int(rows["person_id"].nunique()),
        "total_work_hours": round(float(rows["work_seconds"].sum()) / 3600, 2),
        "total_break_hours": round(float(rows["break_seconds"].sum()) / 3600, 2),
        "incomplete_sessions": int(rows["incomplete_count"].sum()),
        "hours_by_group": hours_table(named(rows, names), ["group"]),
        "hours_by_agent": hours_table(named(rows, names), ["agent", "group"]),
        "hours_by_activity": hours_table(named(rows, names), ["activity"]),
        "work_hours_per_day": hours_bar_chart(per_day, "Work hours per work date"),
    }

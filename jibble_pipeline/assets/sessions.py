"""Sessions and daily attendance, derived per work date from the raw entries."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.metadata import hours_table, rows_by, selected_names
from jibble_pipeline.assets.table_metadata import table_out
from jibble_pipeline.partitions import daily_partitions, run_days
from jibble_pipeline.rules.attendance import derive_attendance
from jibble_pipeline.rules.entries import is_active
from jibble_pipeline.rules.groups import assign_groups
from jibble_pipeline.rules.sessions import derive_sessions
from jibble_pipeline.warehouse.display_names import Names, load_names, named
from jibble_pipeline.warehouse.resource import WarehouseResource
from jibble_pipeline.warehouse.versions import carry_versions

GROUP = "hours"  # the asset group of sessions, attendance and weekly hours


class DerivationConfig(dg.Config):
    """``now`` decides which sessions with no end are still ``open``; it defaults to the run's
    wall clock and is pinned only to replay a past state."""

    now: str | None = None
    open_after_hours: float = 16.0

    def now_utc(self) -> datetime:
        if self.now is None:
            return datetime.now(UTC)
        return datetime.fromisoformat(self.now.replace("Z", "+00:00")).astimezone(UTC)


@dg.multi_asset(
    outs={
        "sessions": table_out(
            "sessions",
            "Work and break sessions (docs/rules.md, Sessions), with client group and status.",
            kinds={"postgres"},
        ),
        "daily_attendance": table_out(
            "daily_attendance",
            "One row per agent and work date: clock-in/out, work and break hours.",
            kinds={"postgres"},
        ),
    },
    ins={
        "raw_time_entries": dg.AssetIn(),
        "agent_group_history": dg.AssetIn(),
    },
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    can_subset=True,
)
def derive_daily_hours(
    context: dg.AssetExecutionContext,
    config: DerivationConfig,
    raw_time_entries: pd.DataFrame,
    agent_group_history: pd.DataFrame,
    warehouse: WarehouseResource,
) -> Iterator[dg.Output]:
    now = config.now_utc()
    result = derive_sessions(
        raw_time_entries, now=now, open_after=timedelta(hours=config.open_after_hours)
    )
    sessions = assign_groups(result.sessions, agent_group_history)
    sessions["derived_at"] = pd.Timestamp(now)
    attendance = derive_attendance(raw_time_entries, sessions, result.orphan_outs)

    names = load_names(warehouse)
    # Each partition shows its own work date's figures, never the run's totals.
    by_day = {
        "sessions": rows_by(sessions, "belongs_to_date"),
        "attendance": rows_by(attendance, "belongs_to_date"),
        "orphans": rows_by(result.orphan_outs, "belongs_to_date"),
        "entries": rows_by(raw_time_entries, "belongs_to_date"),
    }
    selected = selected_names(context)
    for day in run_days(context.run.tags):
        key = day.isoformat()
        of_day = {name: frames.get(day) for name, frames in by_day.items()}
        if "sessions" in selected:
            context.add_asset_metadata(
                sessions_metadata(of_day["sessions"], of_day["orphans"], of_day["entries"], names),
                asset_key="sessions",
                partition_key=key,
            )
        if "daily_attendance" in selected:
            context.add_asset_metadata(
                attendance_metadata(of_day["attendance"]),
                asset_key="daily_attendance",
                partition_key=key,
            )
    if "sessions" in selected:
        yield dg.Output(carry_versions(sessions, raw_time_entries), "sessions")
    if "daily_attendance" in selected:
        yield dg.Output(carry_versions(attendance, raw_time_entries), "daily_attendance")


def sessions_metadata(
    sessions: pd.DataFrame | None,
    orphans: pd.DataFrame | None,
    entries: pd.DataFrame | None,
    names: Names,
) -> dict[str, object]:
    """One work date's sessions: how many of each status, hours by client group."""
    if sessions is None:
        sessions = pd.DataFrame(columns=["status", "auto_out", "kind", "duration_seconds"])
    complete = sessions[sessions["status"] == "complete"].assign(
        work_seconds=lambda s: s["duration_seconds"].where(s["kind"] == "work", 0).astype("int64"),
        break_seconds=lambda s: (
            s["duration_seconds"].where(s["kind"] == "break", 0).astype("int64")
        ),
    )
    statuses = sessions["status"].value_counts()
    inactive = 0 if entries is None else int((~is_active(entries)).sum())
    metadata: dict[str, object] = {
        "dagster/row_count": len(sessions),
        "complete": int(statuses.get("complete", 0)),
        "open": int(statuses.get("open", 0)),
        "incomplete": int(statuses.get("incomplete", 0)),
        "auto_out": int(sessions["auto_out"].astype(bool).sum()),
        "orphan_outs": 0 if orphans is None else len(orphans),
        "ignored_entries": inactive,
        "work_hours": round(float(complete["work_seconds"].sum()) / 3600, 2),
    }
    if not complete.empty:
        metadata["hours_by_group"] = hours_table(named(complete, names), ["group"])
    return metadata


def attendance_metadata(attendance: pd.DataFrame | None) -> dict[str, object]:
    """One work date's attendance: agents who worked, and who forgot to clock out."""
    if attendance is None or attendance.empty:
        return {"dagster/row_count": 0}
    return {
        "dagster/row_count": len(attendance),
        "work_hours": round(float(attendance["work_seconds"].sum()) / 3600, 2),
        "with_incomplete": int(attendance["has_incomplete"].sum()),
        "with_open": int(attendance["has_open"].sum()),
        "with_auto_out": int(attendance["has_auto_out"].sum()),
        "without_clock_out": int(attendance["clock_out_utc"].isna().sum()),
    }

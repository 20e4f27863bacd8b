"""Sessions and daily attendance, derived per work date from the raw entries."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.metadata import display_names, hours_bar_chart, hours_table, named
from jibble_pipeline.automation.partitions import daily_partitions
from jibble_pipeline.rules.attendance import daily_attendance as attendance_rows
from jibble_pipeline.rules.groups import assign_groups
from jibble_pipeline.rules.sessions import derive_sessions
from jibble_pipeline.warehouse.resource import WarehouseResource

GROUP = "hours"


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
        "sessions": dg.AssetOut(
            description="Work and break sessions (SPEC §3.2), with client group and status.",
            kinds={"postgres"},
        ),
        "daily_attendance": dg.AssetOut(
            description="One row per agent and work date: clock-in/out, work and break hours.",
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
    attendance = attendance_rows(raw_time_entries, sessions, result.orphan_outs)

    names = display_names(warehouse)
    complete = sessions[sessions["status"] == "complete"].assign(
        work_seconds=lambda s: s["duration_seconds"].where(s["kind"] == "work", 0).astype("int64"),
        break_seconds=lambda s: (
            s["duration_seconds"].where(s["kind"] == "break", 0).astype("int64")
        ),
    )
    per_day = attendance.groupby("belongs_to_date")["work_seconds"].sum()
    yield dg.Output(
        sessions,
        "sessions",
        metadata={
            "sessions": len(sessions),
            "complete": int((sessions["status"] == "complete").sum()),
            "open": int((sessions["status"] == "open").sum()),
            "incomplete": int((sessions["status"] == "incomplete").sum()),
            "auto_out": int(sessions["auto_out"].sum()),
            "orphan_outs": len(result.orphan_outs),
            "ignored_entries": result.ignored_count,
            "total_work_hours": round(float(complete["work_seconds"].sum()) / 3600, 2),
            "hours_by_group": hours_table(named(complete, names), ["group"]),
            "hours_by_agent": hours_table(named(complete, names), ["agent", "group"]),
            "work_hours_per_day": hours_bar_chart(per_day, "Work hours per work date"),
        },
    )
    yield dg.Output(
        attendance,
        "daily_attendance",
        metadata={
            "agent_days": len(attendance),
            "with_incomplete": int(attendance["has_incomplete"].sum()),
            "with_open": int(attendance["has_open"].sum()),
            "with_auto_out": int(attendance["has_auto_out"].sum()),
            "without_clock_out": int(attendance["clock_out_utc"].isna().sum()),
        },
    )

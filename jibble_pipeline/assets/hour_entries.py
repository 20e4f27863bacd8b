"""Hours nobody counts: hours a tenant logs as durations (``HourEntries``, timesheet mode)
never appear among the punches, so weekly hours leave them out. The check says so."""

from datetime import timedelta
from typing import Any

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.jibble_api import jibble_session
from jibble_pipeline.assets.metadata import table_metadata
from jibble_pipeline.assets.reconciliation import WeeklyCheck, weekly_hours_check
from jibble_pipeline.jibble.errors import JibbleError
from jibble_pipeline.jibble.reports import logged_seconds
from jibble_pipeline.rules.formatting import format_hours
from jibble_pipeline.rules.reconciliation import hour_entry_weeks
from jibble_pipeline.warehouse.display_names import load_names


def count_hour_entries(check: WeeklyCheck) -> dg.AssetCheckResult:
    """Jibble's HourEntries (hours logged as durations, in timesheet mode) are not punches:
    weekly hours leave them out. Warns with how many hours they hold per agent; passes when
    the tenant has none."""
    context, jibble, warehouse, weeks = check
    warn = dg.AssetCheckSeverity.WARN
    first, last = min(weeks), max(weeks) + timedelta(days=6)
    try:
        with jibble_session(context, jibble, warehouse) as client:
            entries = client.hour_entries(first, last)
    except JibbleError as error:
        context.log.warning(f"hour_entries_not_counted could not read HourEntries: {error}")
        return dg.AssetCheckResult(passed=False, severity=warn, metadata={"error": str(error)})
    if entries is None:
        reason = "this Jibble tenant has no HourEntries to read"
        return dg.AssetCheckResult(passed=True, severity=warn, metadata={"skipped": reason})
    logged = logged_seconds(entries)
    weekly = hour_entry_weeks(logged)
    weekly = weekly[weekly["week_start"].isin(weeks)]
    total = float(weekly["hour_entry_seconds"].sum())
    metadata: dict[str, Any] = {
        "hour_entries": len(logged),
        "hours_not_counted": format_hours(total),
        "seconds_not_counted": int(total),
    }
    if not weekly.empty:
        names = load_names(warehouse)
        shown = pd.DataFrame(
            {
                "week_start": weekly["week_start"].astype(str),
                "agent": weekly["person_id"].map(lambda p: names.agents.get(p) or p),
                "hours_logged": weekly["hour_entry_seconds"].map(format_hours),
            }
        )
        metadata["per_agent"] = table_metadata(shown.sort_values(["week_start", "agent"]))
        context.log.warning(
            f"{len(logged)} hour entries hold {format_hours(total)} of {first}..{last} that "
            "weekly hours leave out (HourEntries are not punches)"
        )
    return dg.AssetCheckResult(passed=weekly.empty, severity=warn, metadata=metadata)


hour_entries_not_counted = weekly_hours_check(
    "hour_entries_not_counted", count_hour_entries, "hour_entries"
)

"""Our weekly hours against Jibble's own totals: the check ``hours_match_jibble``.

For each week of the run it reads Jibble's ``TrackedTimeReport`` and, in one query, the
entries Jibble changed after our newest ``updatedAt`` of each of its dates, and compares each
agent's week (``rules.reconciliation``) with what the warehouse holds
(``warehouse.reconciliation``). A tenant that cannot filter on ``updatedAt`` has the week's
dates read again and compared instead (``warehouse.drift``), and a week that differs has its
hours logged as durations (``HourEntries``) read, both only for weeks that differ.
It warns, never blocks; where the tenant's plan has no report it passes, skipped, saying why.
"""

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, NamedTuple

import dagster as dg
import pandas as pd
from psycopg import sql

from jibble_pipeline.assets.jibble_api import jibble_session
from jibble_pipeline.assets.metadata import table_metadata
from jibble_pipeline.jibble.errors import JibbleError
from jibble_pipeline.jibble.reports import ReportUnavailable, logged_seconds
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.partitions import run_weeks
from jibble_pipeline.rules.reconciliation import (
    TABLE_COLUMNS,
    compare,
    hour_entry_weeks,
    late_edit_counts,
    summary,
)
from jibble_pipeline.warehouse.display_names import load_names
from jibble_pipeline.warehouse.drift import drift
from jibble_pipeline.warehouse.reconciliation import agent_weeks, date_watermarks
from jibble_pipeline.warehouse.resource import WarehouseResource


def weeks_to_compare(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> list[date]:
    """The Mondays of the run's weekly partitions; the latest week held when unpartitioned."""
    weeks = run_weeks(context.run.tags)
    if weeks:
        return weeks
    query = sql.SQL("SELECT max(week_start) FROM {}").format(warehouse.table("weekly_hours"))
    latest = warehouse.query_frame(query).iloc[0, 0]
    return [] if latest is None or pd.isna(latest) else [latest]


class WeeklyCheck(NamedTuple):
    """What a check of ``weekly_hours`` against Jibble works with."""

    context: dg.AssetCheckExecutionContext
    jibble: JibbleResource
    warehouse: WarehouseResource
    weeks: list[date]


def weekly_hours_check(
    name: str, compare: Callable[[WeeklyCheck], dg.AssetCheckResult], counted: str
) -> dg.AssetChecksDefinition:
    """A check of ``weekly_hours`` against Jibble that warns, never blocks: ``compare`` over
    the weeks to compare (its docstring, on one line, describes the check); with no week, it
    passes with ``counted`` 0."""
    description = " ".join((compare.__doc__ or "").split())

    @dg.asset_check(asset="weekly_hours", name=name, description=description, blocking=False)
    def check(
        context: dg.AssetCheckExecutionContext, jibble: JibbleResource, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        weeks = weeks_to_compare(context, warehouse)
        if not weeks:
            warn = dg.AssetCheckSeverity.WARN
            return dg.AssetCheckResult(passed=True, severity=warn, metadata={counted: 0})
        return compare(WeeklyCheck(context, jibble, warehouse, weeks))

    return check


def compare_hours(check: WeeklyCheck) -> dg.AssetCheckResult:
    """Each agent's weekly work hours match Jibble's own TrackedTimeReport, within
    JIBBLE_RECONCILE_TOLERANCE_SECONDS; differences list the causes the warehouse shows.
    Passes, skipped, when the Jibble plan or tenant lacks the report."""
    context, jibble, warehouse, weeks = check
    warn = dg.AssetCheckSeverity.WARN
    tolerance = jibble.reconcile_tolerance_seconds
    ours = agent_weeks(warehouse, weeks)
    watermarks = date_watermarks(warehouse, weeks)
    agents = warehouse.read_table("agents", columns=["person_id", "group_id"])
    known = set(agents["person_id"])
    theirs: list[tuple[date, str, float]] = []
    changed: list[dict[str, Any]] = []
    logged: list[tuple[str, date, float]] = []
    try:
        with jibble_session(context, jibble, warehouse) as client:
            for week in weeks:
                sunday = week + timedelta(days=6)
                report = client.tracked_time_by_member(week, sunday)
                if isinstance(report, ReportUnavailable):
                    context.log.info(f"hours_match_jibble skipped: {report.reason}")
                    skipped: dict[str, Any] = {
                        "skipped": report.reason,
                        "tolerance_seconds": float(tolerance),
                    }
                    return dg.AssetCheckResult(passed=True, severity=warn, metadata=skipped)
                # People of another organisation the credentials see are not ours to compare.
                report = {person: s for person, s in report.items() if person in known}
                theirs.extend((week, person, seconds) for person, seconds in report.items())
                days = [week + timedelta(days=n) for n in range(7)]
                newest = {
                    d: watermarks[d].to_pydatetime() if d in watermarks else None for d in days
                }
                newer = client.time_entries_newer_than(newest)
                if newer is not None:
                    changed.extend(newer)
                if not _differs(ours, week, report, tolerance):
                    continue
                if newer is None:  # no updatedAt filter: the week is read again and compared
                    fetched = dict(client.time_entries_by_date(days))
                    changed.extend(drift(warehouse.open(), fetched).entries)
                logged.extend(logged_seconds(client.hour_entries(week, sunday) or []))
    except JibbleError as error:
        context.log.warning(f"hours_match_jibble could not read Jibble's totals: {error}")
        return dg.AssetCheckResult(passed=False, severity=warn, metadata={"error": str(error)})
    names = load_names(warehouse)
    compared = compare(
        ours,
        pd.DataFrame(theirs, columns=["week_start", "person_id", "jibble_seconds"]),
        late_edit_counts(changed, watermarks),
        tolerance_seconds=tolerance,
        agent_names=names.agents,
        agent_groups={
            p: names.group(g) for p, g in zip(agents["person_id"], agents["group_id"], strict=True)
        },
        hour_entries=hour_entry_weeks(logged),
    )
    differing = compared[compared["differs"]]
    metadata: dict[str, Any] = {
        **summary(compared, tolerance),
        "weeks": dg.MetadataValue.json([w.isoformat() for w in weeks]),
        "differences": table_metadata(differing[TABLE_COLUMNS].astype({"week_start": str})),
    }
    return dg.AssetCheckResult(passed=differing.empty, severity=warn, metadata=metadata)


hours_match_jibble = weekly_hours_check("hours_match_jibble", compare_hours, "agents_compared")


def _differs(ours: pd.DataFrame, week: date, theirs: dict[str, float], tolerance: float) -> bool:
    """Whether any agent's week differs from Jibble's total beyond the tolerance."""
    held = ours[ours["week_start"] == week].groupby("person_id")["work_seconds"].sum()
    people = set(held.index) | set(theirs)
    return any(abs(float(theirs.get(p, 0.0)) - float(held.get(p, 0.0))) > tolerance for p in people)

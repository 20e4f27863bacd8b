"""The 10-minute refresh: snapshots plus every work date that can still change."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from jibble_pipeline.partitions import daily_partitions, range_tags

MAX_RUNTIME_TAG = "dagster/max_runtime"
# A tick takes seconds; one still "running" after this is a dead process (see dagster.yaml).
TICK_MAX_RUNTIME_SECONDS = 1800

# Daily assets and the unpartitioned snapshots they read; weekly_hours follows them
# through its automation condition (one run cannot mix daily and weekly partitions).
REFRESH_SELECTION = dg.AssetSelection.assets(
    "agents",
    "client_groups",
    "activities",
    "agent_group_history",
    "raw_time_entries",
    "quarantined_entries",
    "sessions",
    "daily_attendance",
)


def refresh_window(now_utc: datetime, first_partition: date) -> tuple[date, date]:
    """Work dates a tick at ``now_utc`` must refresh, as an inclusive range.

    Agents span UTC-12..UTC+14, so at any instant they can be punching on the UTC
    date -1, 0 or +1. Date -2 is refreshed too: an open session of that date turns
    ``incomplete`` (16 h after its start) while it is still the day before yesterday
    in UTC, and only a re-derivation records the change.
    """
    today = now_utc.date()
    first = max(today - timedelta(days=2), first_partition)
    return first, today + timedelta(days=1)


refresh_daily_assets = dg.define_asset_job("refresh_daily_assets", selection=REFRESH_SELECTION)


@dg.schedule(
    name="refresh_every_10_minutes",
    cron_schedule="*/10 * * * *",
    execution_timezone="UTC",
    job=refresh_daily_assets,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def refresh_every_10_minutes(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    now = (context.scheduled_execution_time or datetime.now(UTC)).astimezone(UTC)
    first, last = refresh_window(now, daily_partitions.start.date())
    return dg.RunRequest(
        run_key=now.isoformat(),
        tags={**range_tags(first, last), MAX_RUNTIME_TAG: str(TICK_MAX_RUNTIME_SECONDS)},
    )

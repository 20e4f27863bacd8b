"""Monday morning: last week's digests rendered, emailed and the report site regenerated.

The schedule ticks at ``JIBBLE_DIGEST_SEND_AT`` on Mondays in ``JIBBLE_DIGEST_TIMEZONE`` and
again each of the next ``RETRY_TICKS`` hours. Every tick runs the same job for last week;
the ``sent_digests`` log makes the later ticks send only what is still unsent (failures of
the first tick), so a flaky mail server costs a delay, not a missing digest. Choose the time
after the westernmost agents' Sunday has ended: sessions still open then count no hours
and are listed in the Notes.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import dagster as dg

from jibble_pipeline.partitions import monday_on_or_before, weekly_partitions
from jibble_pipeline.settings.digests import DigestSettings, load_digest_settings

RETRY_TICKS = 3
WEEK_TAG = "jibble/digest_week"

send_weekly_digests = dg.define_asset_job(
    "send_weekly_digests",
    selection=dg.AssetSelection.assets(
        "client_directory", "weekly_hours", "client_digests", "sent_digests", "report_site"
    ),
    description="Sync the client directory, re-derive a week's hours, render and email its "
    "digests (each client once) and regenerate the report site.",
)

digest_automation = dg.AutomationConditionSensorDefinition(
    "digest_automation",
    target=dg.AssetSelection.assets("client_digests", "report_site"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)


def morning_cron(send_at: time, days: str, retry_ticks: int = RETRY_TICKS) -> str:
    """At ``send_at`` on ``days`` (cron's day of week), then hourly ``retry_ticks`` times (not
    past 23:xx).

    >>> morning_cron(time(7, 30), "1"), morning_cron(time(22, 0), "1")
    ('30 7-10 * * 1', '0 22-23 * * 1')
    >>> morning_cron(time(23, 5), "*")
    '5 23 * * *'
    """
    last = min(send_at.hour + retry_ticks, 23)
    hours = f"{send_at.hour}-{last}" if last > send_at.hour else f"{send_at.hour}"
    return f"{send_at.minute} {hours} * * {days}"


def last_week(tick: datetime, timezone: str) -> date:
    """The Monday of the week before the one ``tick`` falls in, on the digest time zone's
    calendar."""
    local = tick.astimezone(ZoneInfo(timezone)).date()
    return monday_on_or_before(local) - timedelta(days=7)


def build_digest_schedule(settings: DigestSettings) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="weekly_digests",
        cron_schedule=morning_cron(settings.send_at, "1"),
        execution_timezone=settings.timezone,
        job=send_weekly_digests,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Last week's client digests, Monday morning (later ticks retry failures).",
    )
    def weekly_digests(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time or datetime.now(ZoneInfo(settings.timezone))
        week = last_week(tick, settings.timezone)
        first = date.fromisoformat(cast(str, weekly_partitions.get_first_partition_key()))
        if week < first:
            return dg.SkipReason(f"week {week} is before the first weekly partition {first}")
        return dg.RunRequest(
            run_key=f"{week.isoformat()}@{tick.isoformat()}",
            partition_key=week.isoformat(),
            tags={WEEK_TAG: week.isoformat()},
        )

    return weekly_digests


weekly_digests = build_digest_schedule(load_digest_settings())

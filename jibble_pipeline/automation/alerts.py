"""Every morning: yesterday's operations alert.

The schedule ticks at ``JIBBLE_ALERT_SEND_AT`` in ``JIBBLE_ALERT_TIMEZONE`` and again each
of the next ``RETRY_TICKS`` hours; every tick materialises the alert of yesterday's work
date on that calendar, and the ``sent_alerts`` log makes the later ticks send only what
failed before. The 10-minute refresh keeps yesterday's sessions current meanwhile. With no
recipient configured the schedule starts stopped.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from jibble_pipeline.automation.digests import RETRY_TICKS, morning_cron
from jibble_pipeline.partitions import daily_partitions
from jibble_pipeline.settings.alerts import AlertSettings, load_alert_settings

send_daily_alert = dg.define_asset_job(
    "send_daily_alert",
    selection=dg.AssetSelection.assets("operations_alert"),
    description="Send a work date's operations alert (each recipient once).",
)


def yesterday(tick: datetime, timezone: str) -> date:
    """The day before ``tick``'s on the alert time zone's calendar."""
    return tick.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)


def build_alert_schedule(settings: AlertSettings) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_operations_alert",
        cron_schedule=morning_cron(settings.send_at, "*", RETRY_TICKS),
        execution_timezone=settings.timezone,
        job=send_daily_alert,
        # Off until someone is to receive it (the demo's operations address counts).
        default_status=dg.DefaultScheduleStatus.RUNNING
        if settings.emails or settings.webhook_url_set
        else dg.DefaultScheduleStatus.STOPPED,
        description="Yesterday's problems per client group, each morning (later ticks retry "
        "failures).",
    )
    def daily_operations_alert(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time or datetime.now(ZoneInfo(settings.timezone))
        day = yesterday(tick, settings.timezone)
        first = daily_partitions.start.date()
        if day < first:
            return dg.SkipReason(f"{day} is before the first daily partition {first}")
        return dg.RunRequest(
            run_key=f"{day.isoformat()}@{tick.isoformat()}", partition_key=day.isoformat()
        )

    return daily_operations_alert


daily_operations_alert = build_alert_schedule(load_alert_settings())

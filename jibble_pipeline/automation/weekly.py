"""Weekly hours follow the daily assets through their automation condition (what it cannot
see, ``automation.stale`` catches)."""

import dagster as dg

from jibble_pipeline.assets.weekly import weekly_hours

derive_weekly_hours = dg.define_asset_job(
    "derive_weekly_hours", selection=dg.AssetSelection.assets(weekly_hours)
)

weekly_hours_automation = dg.AutomationConditionSensorDefinition(
    "weekly_hours_automation",
    target=dg.AssetSelection.assets(weekly_hours),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)

"""The one Definitions object: wiring only."""

from __future__ import annotations

import dagster as dg

from jibble_pipeline.alerts.resources import build_alert_resources
from jibble_pipeline.assets.alerts import operations_alert
from jibble_pipeline.assets.checks import ALL_CHECKS, freshness_sensor
from jibble_pipeline.assets.corrections import sent_corrections
from jibble_pipeline.assets.digests import DIGEST_ASSETS
from jibble_pipeline.assets.jibble_api import jibble_tenant
from jibble_pipeline.assets.sessions import derive_daily_hours
from jibble_pipeline.assets.snapshots import activities, agents, client_groups
from jibble_pipeline.assets.time_entries import fetch_time_entries
from jibble_pipeline.assets.weekly import weekly_hours
from jibble_pipeline.automation.alerts import daily_operations_alert, send_daily_alert
from jibble_pipeline.automation.corrections import corrections_sensor, send_corrections
from jibble_pipeline.automation.digests import (
    digest_automation,
    send_weekly_digests,
    weekly_digests,
)
from jibble_pipeline.automation.late_edits import (
    late_edits_sensor,
    late_edits_sweep,
    refetch_work_dates,
)
from jibble_pipeline.automation.schedules import (
    refresh_daily_assets,
    refresh_every_10_minutes,
)
from jibble_pipeline.automation.stale import stale_partitions_sensor
from jibble_pipeline.automation.weekly import derive_weekly_hours, weekly_hours_automation
from jibble_pipeline.digest.resources import build_digest_resources
from jibble_pipeline.resources import env_or_none, jibble_resource, pipeline_resources
from jibble_pipeline.settings.alerts import load_alert_settings
from jibble_pipeline.settings.digests import load_digest_settings
from jibble_pipeline.settings.pipeline import Settings, load_settings


def build_resources(settings: Settings) -> dict[str, object]:
    """The live Jibble API with credentials, the demo's simulator without."""
    return pipeline_resources(
        jibble_resource(settings),
        env_or_none("JIBBLE_DATABASE_URL", settings.database_url),
        settings.db_schema,
        None if settings.database_url else str(settings.embedded_data_dir),
    )


defs = dg.Definitions(
    assets=[
        agents,
        client_groups,
        activities,
        jibble_tenant,
        fetch_time_entries,
        derive_daily_hours,
        weekly_hours,
        *DIGEST_ASSETS,
        sent_corrections,
        operations_alert,
    ],
    asset_checks=ALL_CHECKS,
    jobs=[
        refresh_daily_assets,
        derive_weekly_hours,
        refetch_work_dates,
        send_weekly_digests,
        send_corrections,
        send_daily_alert,
    ],
    schedules=[refresh_every_10_minutes, weekly_digests, daily_operations_alert],
    sensors=[
        weekly_hours_automation,
        stale_partitions_sensor,
        late_edits_sensor,
        late_edits_sweep,
        freshness_sensor,
        digest_automation,
        corrections_sensor,
    ],
    resources={
        **build_resources(load_settings()),
        **build_digest_resources(load_digest_settings()),
        **build_alert_resources(load_alert_settings()),
    },
)

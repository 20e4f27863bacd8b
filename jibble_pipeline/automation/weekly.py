"""Weekly hours follow the daily assets through their automation condition, and the
versions each week read catch what the condition cannot see."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from jibble_pipeline.assets.weekly import weekly_hours
from jibble_pipeline.automation.sensors import UNFINISHED
from jibble_pipeline.partitions import monday_on_or_before, range_tags, run_dates
from jibble_pipeline.warehouse.resource import WarehouseResource
from jibble_pipeline.warehouse.versions import stale_partitions

# Assets whose runs may rewrite what weekly hours and digests read.
DERIVED_INPUTS = ("raw_time_entries", "sessions", "daily_attendance", "weekly_hours")

derive_weekly_hours = dg.define_asset_job(
    "derive_weekly_hours", selection=dg.AssetSelection.assets(weekly_hours)
)

weekly_hours_automation = dg.AutomationConditionSensorDefinition(
    "weekly_hours_automation",
    target=dg.AssetSelection.assets(weekly_hours),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)


# The automation condition above misses one case: a run that read a week's sessions before
# another run rewrote them, and finished after it. Dagster counts its materialisation as
# handling the update; the versions it read say otherwise (warehouse.versions).
QUIET = timedelta(minutes=2)  # after the condition's own turn: its runs are requested first
DIGEST_WEEKS = timedelta(days=14)  # digests follow their inputs only this far back
_DERIVING = {dg.AssetKey(name) for name in DERIVED_INPUTS}


def _in_flight(instance: dg.DagsterInstance) -> list[tuple[date, date]]:
    """The work dates that unfinished runs deriving or landing data may still rewrite."""
    spans = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        if run.asset_selection is not None and not run.asset_selection & _DERIVING:
            continue
        first, last = run_dates(run.tags)
        spans.append((first, last + timedelta(days=6)))  # a weekly key covers its week
    return spans


def _settled(weeks: list[date], spans: list[tuple[date, date]]) -> list[date]:
    return [
        week
        for week in weeks
        if not any(first <= week + timedelta(days=6) and week <= last for first, last in spans)
    ]


@dg.sensor(
    asset_selection=dg.AssetSelection.assets(weekly_hours, "client_digests"),
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Derives again the weeks whose sessions changed while or after they were read.",
)
def stale_weeks_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    store, spans = warehouse.open(), _in_flight(context.instance)
    recent = monday_on_or_before(datetime.now(UTC).date() - DIGEST_WEEKS)
    requests = []
    for name, since in (("weekly_hours", None), ("client_digests", recent)):
        weeks = _settled(stale_partitions(store, name, QUIET, since), spans)
        if weeks:
            context.log.info(f"{name}: {len(weeks)} week(s) read inputs that changed since")
            requests.append(
                dg.RunRequest(
                    asset_selection=[dg.AssetKey(name)],
                    tags=range_tags(weeks[0], weeks[-1]),
                )
            )
    return dg.SensorResult(run_requests=requests)

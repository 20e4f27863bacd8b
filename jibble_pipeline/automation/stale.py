"""Partitions derived from inputs that changed under them are derived again.

Dagster's automation conditions follow materialisations. They miss one case: a run that read
its inputs before another run rewrote them, and finished after it. Its materialisation counts
as handling the update, yet it holds figures of the inputs as they were. The versions each
derived partition recorded of what it read (``warehouse.versions``) say otherwise, and this
sensor asks for those partitions again: sessions and attendance of a work date whose raw
entries changed, weekly hours of a week whose sessions changed, at any age, and the digests
of recent weeks whose inputs changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from jibble_pipeline.automation.late_edits import date_ranges
from jibble_pipeline.automation.sensors import UNFINISHED
from jibble_pipeline.partitions import monday_on_or_before, range_tags, run_dates
from jibble_pipeline.warehouse.resource import WarehouseResource
from jibble_pipeline.warehouse.store import Warehouse
from jibble_pipeline.warehouse.versions import stale_partitions

# After the automation conditions' own turn (every 30 s): the runs they request come first, and
# a burst of rewrites settles before anything is asked again.
QUIET = timedelta(seconds=45)
DIGEST_WEEKS = timedelta(days=14)  # digests follow their inputs only this far back (their AC)
# Runs of these assets may still rewrite what the derived partitions read: theirs to finish.
WRITERS = frozenset(
    dg.AssetKey(name)
    for name in ("raw_time_entries", "sessions", "daily_attendance", "weekly_hours")
)


@dataclass(frozen=True)
class Derived:
    """Derived tables whose stale partitions one run re-derives (``days``: a partition's)."""

    tables: tuple[str, ...]
    days: int
    recent_only: bool = False

    def stale(self, warehouse: Warehouse, today: date) -> list[date]:
        since = monday_on_or_before(today - DIGEST_WEEKS) if self.recent_only else None
        found = set()
        for name in self.tables:
            found.update(stale_partitions(warehouse, name, QUIET, since))
        return sorted(found)


DERIVED = (
    Derived(("sessions", "daily_attendance"), days=1),
    Derived(("weekly_hours",), days=7),
    Derived(("client_digests",), days=7, recent_only=True),
)


def in_flight(instance: dg.DagsterInstance) -> list[tuple[date, date]]:
    """The work dates that unfinished runs landing or deriving data may still rewrite."""
    spans = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        if run.asset_selection is not None and not run.asset_selection & WRITERS:
            continue
        first, last = run_dates(run.tags)
        spans.append((first, last + timedelta(days=6)))  # a weekly key covers its week
    return spans


def settled(partitions: list[date], days: int, spans: list[tuple[date, date]]) -> list[date]:
    """The partitions no unfinished run may still rewrite."""
    return [
        start
        for start in partitions
        if not any(
            first <= start + timedelta(days=days - 1) and start <= last for first, last in spans
        )
    ]


@dg.sensor(
    asset_selection=dg.AssetSelection.assets(
        "sessions", "daily_attendance", "weekly_hours", "client_digests"
    ),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Derives again what read inputs that changed while or after it read them.",
)
def stale_partitions_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    store, spans = warehouse.open(), in_flight(context.instance)
    today = datetime.now(UTC).date()
    requests = []
    for derived in DERIVED:
        partitions = settled(derived.stale(store, today), derived.days, spans)
        if partitions:
            context.log.info(f"{', '.join(derived.tables)}: {len(partitions)} stale partition(s)")
        for first, last in date_ranges(partitions, max_gap_days=derived.days):
            requests.append(
                dg.RunRequest(
                    asset_selection=[dg.AssetKey(name) for name in derived.tables],
                    tags=range_tags(first, last),
                )
            )
            # What reads these waits for them: they are about to be rewritten.
            spans.append((first, last + timedelta(days=derived.days - 1)))
    return dg.SensorResult(run_requests=requests)

"""Corrections go out on their own: a sensor finds the reported weeks whose hours have
changed beyond the tolerance (one set-based query over the ledger and the weekly hours) and,
once such a week has been quiet for ``JIBBLE_CORRECTION_QUIET_HOURS``, runs the job that
re-renders the week's digests, sends its corrections (each version once, through the
``sent_corrections`` log) and regenerates its pages of the site."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from jibble_pipeline.automation.sensors import running_sensor
from jibble_pipeline.delivery.resources import EmailResource
from jibble_pipeline.digest.corrections import ready_weeks
from jibble_pipeline.digest.ledger import Ledger
from jibble_pipeline.digest.resources import CorrectionsResource
from jibble_pipeline.warehouse.resource import WarehouseResource

send_corrections = dg.define_asset_job(
    "send_corrections",
    selection=dg.AssetSelection.assets("client_digests", "sent_corrections", "report_site"),
    description="Re-render a reported week's digests, send the corrections of the clients "
    "whose hours changed (each version once) and regenerate the week's site pages.",
)


SENSOR_DESCRIPTION = (
    "Sends corrections of reported weeks whose hours changed, once each week has been quiet "
    "(retried hourly while a run fails)."
)


@running_sensor(send_corrections, 600, SENSOR_DESCRIPTION)
def corrections_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    email: EmailResource,
    corrections: CorrectionsResource,
) -> dg.SensorResult | dg.SkipReason:
    now = datetime.now(UTC)
    policy = corrections.policy
    changed = Ledger(warehouse.open()).changed_weeks(
        policy.tolerance_seconds, rehearsal=email.dry_run_reason is not None
    )
    ready = ready_weeks(changed, now, policy.quiet)
    if not ready:
        return dg.SkipReason(f"{len(changed)} reported client-week(s) changed, none quiet yet")
    # The same changes are asked for once an hour: a failed run is retried, a sent one is
    # not asked again (its week no longer differs from what was reported).
    hour = now.strftime("%Y-%m-%dT%H")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"corrections:{week.isoformat()}:{fingerprint}:{hour}",
                partition_key=week.isoformat(),
            )
            for week, fingerprint in sorted(ready.items())
        ]
    )

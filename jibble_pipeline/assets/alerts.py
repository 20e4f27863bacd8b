"""The daily operations alert: a work date's problems per client group, sent each morning
to the operations team (emails and a Slack or Teams webhook), each recipient once.

It runs from the ``daily_operations_alert`` schedule or by hand, never by automation: a
re-derived day does not alert anybody again. Its partition is the work date reported.
"""

from dataclasses import replace
from datetime import date
from typing import Any

import dagster as dg
import pandas as pd

from jibble_pipeline.alerts.clients import pace_problems, past_cutoff_problems
from jibble_pipeline.alerts.message import build_alert
from jibble_pipeline.alerts.pace import is_pace_day
from jibble_pipeline.alerts.problems import is_working_day, load_problems
from jibble_pipeline.alerts.resources import AlertResource
from jibble_pipeline.alerts.sending import send_alert, unsent
from jibble_pipeline.assets.metadata import table_metadata
from jibble_pipeline.delivery.policy import (
    SendConfig,
    SendPolicy,
    fail_if_any_failed,
    outcome_rows,
)
from jibble_pipeline.delivery.resources import EmailResource
from jibble_pipeline.delivery.sending import unknown_deliveries
from jibble_pipeline.delivery.sent_log import SentLog
from jibble_pipeline.partitions import daily_partitions
from jibble_pipeline.schema import SENT_ALERTS
from jibble_pipeline.warehouse.display_names import load_names
from jibble_pipeline.warehouse.resource import WarehouseResource

GROUP = "operations"
NO_RECIPIENTS = "no recipients are configured (JIBBLE_ALERT_EMAILS, JIBBLE_ALERT_WEBHOOK_URL)"


class AlertConfig(SendConfig):
    """``force``: send again to recipients who already had the day's alert.
    ``dry_run``: report what would be sent, send nothing."""


@dg.asset(
    partitions_def=daily_partitions,
    # A day's alert is one message: a backfill of past days runs (and sends) each on its own.
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    deps=["sessions", "daily_attendance", "quarantined_entries", "agents", "client_directory"],
    group_name=GROUP,
    kinds={"email", "slack", "postgres"},
)
def operations_alert(
    context: dg.AssetExecutionContext,
    config: AlertConfig,
    alerts: AlertResource,
    email: EmailResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """A work date's sessions still open or with no clock-out, automatic clock-outs, orphan
    clock-outs, entries in quarantine and (on a working day) agents of a group who tracked
    nothing, per client group, as one message; first, the clients whose reported weeks
    changed past the correction cut-off and, mid-week, those behind their contract's pace.
    Sent once per recipient (``sent_alerts``); an empty day sends nothing unless
    ``JIBBLE_ALERT_SEND_EMPTY`` is set."""
    day = date.fromisoformat(context.partition_key)
    store = warehouse.open()
    names = load_names(warehouse)
    working_day = is_working_day(day, alerts.working_days, alerts.holiday_dates)
    pace_checked = is_pace_day(day, alerts.pace_day)
    of_clients = past_cutoff_problems(store, day)
    if pace_checked:
        margin = alerts.pace_margin_percent
        holidays = alerts.holiday_dates
        of_clients += pace_problems(store, day, names, alerts.working_days, holidays, margin)
    alert = build_alert(day, load_problems(store, day, working_day), names, of_clients)
    metadata: dict[str, Any] = {
        "problems": alert.count,
        "working_day": working_day,
        "pace_checked": pace_checked,
        "per_group": table_metadata(pd.DataFrame(alert.per_group())),
        "message": dg.MetadataValue.md(f"```\n{alert.text}```"),
    }
    routes = alerts.routes(email)
    reason = None
    if not alert.count and not alerts.send_empty:
        reason = "no problems (JIBBLE_ALERT_SEND_EMPTY is off)"
    elif not routes:
        reason = NO_RECIPIENTS
        context.log.warning(f"The operations alert is not sent: {reason}.")
    if reason:
        return dg.MaterializeResult(metadata={**metadata, "sent": 0, "not_sent": reason})

    log = SentLog(store, SENT_ALERTS)
    policy = SendPolicy.of_run(context.run.run_id, config)
    if policy.dry_run_reason:
        routes = [replace(route, dry_run_reason=policy.dry_run_reason) for route in routes]
    would = [
        {"to": recipient, "dry_run_reason": route.dry_run_reason}
        for route in routes
        if route.dry_run_reason
        for recipient in (
            route.recipients if policy.force else unsent(log, alert, route.recipients)
        )
    ]
    if would:
        context.log.info(f"Dry run: would send the alert to {len(would)} recipient(s).")
        metadata["would_send_to"] = table_metadata(pd.DataFrame(would))
    outcomes = send_alert(alert, routes, log, policy, info=context.log.info)
    failed = sum(o.status == "failed" for o in outcomes)
    metadata |= {
        "sent": len(outcomes) - failed,
        "failed": failed,
        "delivery_unknown": len(unknown_deliveries(log, day, day, context.log.warning)),
        "outcomes": table_metadata(pd.DataFrame(outcome_rows(outcomes))),
    }
    fail_if_any_failed(outcomes, "alert(s)", "The next tick sends only those.", metadata)
    return dg.MaterializeResult(metadata=metadata)

"""Corrections: a reported week whose hours changed since is told to its client again, once
per version (docs/rules.md, Corrections).

``sent_corrections`` runs from the ``corrections_sensor`` (once a changed week has been quiet)
or by hand, never by automation, like ``sent_digests``. Its input is the week's digests as
they stand now (``client_digests``, rendered in the same run).
"""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.digests import sending_asset
from jibble_pipeline.assets.metadata import table_metadata
from jibble_pipeline.delivery.policy import SendConfig, SendPolicy, fail_if_any_failed
from jibble_pipeline.delivery.resources import EmailResource
from jibble_pipeline.delivery.sending import UNKNOWN_ADVICE, send_logged
from jibble_pipeline.delivery.sent_log import Outcome, SentLog
from jibble_pipeline.digest.content import ClientDigest
from jibble_pipeline.digest.correction_week import correction_week
from jibble_pipeline.digest.ledger import Ledger, Version
from jibble_pipeline.digest.resources import CorrectionsResource, ReportsResource
from jibble_pipeline.digest.sending import correction_delivery, of_clients
from jibble_pipeline.partitions import run_weeks
from jibble_pipeline.schema import SENT_CORRECTIONS
from jibble_pipeline.warehouse.resource import WarehouseResource

UNKNOWN = f"delivery unknown: {UNKNOWN_ADVICE}"
LOG_STATUS = {
    "sent": "already sent",
    "sending": "being sent by another run",
    "attempting": "being sent by another run",
}


class CorrectionConfig(SendConfig):
    """``force``: send again, even a correction sent or whose delivery is unknown.
    ``clients``: only these emails (any case); empty: every client of the week.
    ``dry_run``: report and render what would be sent, send and record nothing.
    ``now``: the instant (ISO 8601, with its offset) that decides the quiet period and the
    cut-off; default the run's clock."""

    clients: list[str] = []
    now: str | None = None


def delivery_status(
    version: Version,
    outcomes: dict[tuple, Outcome],
    log: SentLog,
    rows: pd.DataFrame,
    now: datetime,
) -> str:
    """What became of a correction to send: this run's outcome, else the log's state."""
    key = (*version.key, version.version)
    if key in outcomes:
        outcome = outcomes[key]
        return "sent" if outcome.error is None else f"failed: {outcome.error}"
    row = rows[(rows["client_email"] == key[1]) & (rows["version"] == key[2])]
    if row.empty:
        return "not sent"
    if not log.unknown(row, now).empty:
        return UNKNOWN
    return LOG_STATUS.get(str(row["status"].iloc[0]), str(row["status"].iloc[0]))


@sending_asset("sent_corrections")
def sent_corrections(
    context: dg.AssetExecutionContext,
    config: CorrectionConfig,
    client_digests: pd.DataFrame,
    email: EmailResource,
    warehouse: WarehouseResource,
    reports: ReportsResource,
    corrections: CorrectionsResource,
) -> dg.MaterializeResult:
    """For each client told of the week before: when an agent's hours on an activity moved by
    more than ``JIBBLE_CORRECTION_TOLERANCE_SECONDS`` and the week has been quiet for
    ``JIBBLE_CORRECTION_QUIET_HOURS``, one correction email (the rows that changed, as
    reported and now, with their causes), once per version (``sent_corrections``); a week
    ended more than ``JIBBLE_CORRECTION_CUTOFF_WEEKS`` ago is noted for the operations alert
    and the site instead. Each correction is written under ``<reports>/corrections/``."""
    now = datetime.fromisoformat(config.now) if config.now else datetime.now(UTC)
    store = warehouse.open()
    ledger, log = Ledger(store), SentLog(store, SENT_CORRECTIONS)
    rehearsal = email.dry_run_reason is not None  # the deployment sends nothing: it rehearses
    digests, missing = of_clients(client_digests, config.clients)
    if missing:
        context.log.warning(f"No digest for {missing} in these weeks")
    current = [ClientDigest.model_validate(c) for c in digests["content"]]
    mondays = run_weeks(context.run.tags)
    weeks = [
        correction_week(
            week, [d for d in current if d.week_start == week], ledger, corrections.policy, now,
            rehearsal,
        )
        for week in mondays
    ]  # fmt: skip
    for week in weeks:
        week.publish(reports.path)
    sends = [v for week in weeks for v in week.versions("send")]
    policy = SendPolicy.of_run(context.run.run_id, config, email.dry_run_reason)
    reason, run_id = policy.dry_run_reason, policy.run_id
    outcomes: dict[tuple, Outcome] = {}
    if not config.dry_run:  # a change past the cut-off is noted once, for the alert
        ledger.record([v for w in weeks for v in w.versions("past_cutoff")], now, rehearsal, run_id)
    if reason:
        context.log.info(policy.would_send(len(sends), "correction(s)"))
        if rehearsal and not config.dry_run:
            ledger.record(sends, now, True, run_id)
    elif sends:
        sent = send_logged(
            [correction_delivery(v.correction, policy.force_nonce) for v in sends if v.correction],
            log,
            email,
            run_id,
            force=policy.force,
            info=context.log.info,
            on_sent=ledger.on_sent({(*v.key, v.version): v for v in sends}, run_id),
        )
        outcomes = {(o.period, o.recipient, o.version): o for o in sent}

    rows = log.rows(min(mondays), max(mondays))
    for week in weeks:
        table = pd.DataFrame(week.per_client())
        of_week = rows[rows["week_start"] == week.week]
        statuses = {
            v.key[1]: f"dry run ({reason})"
            if reason
            else delivery_status(v, outcomes, log, of_week, now)
            for v in week.versions("send")
        }
        for email_address, status in statuses.items():
            if status == UNKNOWN:
                context.log.warning(f"Correction of {week.week} for {email_address}: {UNKNOWN}")
        if not table.empty:
            table["status"] = table["client"].map(statuses)
        verdicts = [d.verdict for d in week.decisions]
        context.add_asset_metadata(
            {
                "dry_run": reason is not None,
                "clients_reported": len(verdicts),
                "corrections": verdicts.count("send"),
                "sent": sum(s == "sent" for s in statuses.values()),
                "waiting_for_quiet": verdicts.count("waiting"),
                "past_cutoff": verdicts.count("past_cutoff"),
                "delivery_unknown": sum(s == UNKNOWN for s in statuses.values()),
                "per_client": table_metadata(table),
            },
            partition_key=week.week.isoformat(),
        )
    retried = "They are recorded in sent_corrections; the next run sends only those."
    fail_if_any_failed(list(outcomes.values()), "correction(s)", retried)
    return dg.MaterializeResult()

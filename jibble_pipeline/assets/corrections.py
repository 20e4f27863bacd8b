"""Corrections: a reported week whose hours changed since is told to its client again, once
per version (docs/rules.md, Corrections).

``sent_corrections`` runs from the ``corrections_sensor`` (once a changed week has been quiet)
or by hand, never by automation, like ``sent_digests``. Its input is the week's digests as
they stand now (``client_digests``, rendered in the same run).
"""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.digests import GROUP, run_weeks
from jibble_pipeline.assets.metadata import table_metadata
from jibble_pipeline.assets.table_metadata import column_schema
from jibble_pipeline.digest.content import ClientDigest
from jibble_pipeline.digest.correction_week import correction_week
from jibble_pipeline.digest.ledger import Ledger, Version
from jibble_pipeline.digest.resources import CorrectionsResource, EmailResource, ReportsResource
from jibble_pipeline.digest.sending import (
    UNKNOWN_ADVICE,
    correction_delivery,
    of_clients,
    send_logged,
)
from jibble_pipeline.partitions import weekly_partitions
from jibble_pipeline.schema import SENT_CORRECTIONS
from jibble_pipeline.warehouse.resource import WarehouseResource
from jibble_pipeline.warehouse.sent_log import Outcome, SentLog

UNKNOWN = f"delivery unknown: {UNKNOWN_ADVICE}"
LOG_STATUS = {
    "sent": "already sent",
    "sending": "being sent by another run",
    "attempting": "being sent by another run",
}


class CorrectionConfig(dg.Config):
    """``force``: send again, even a correction sent or whose delivery is unknown.
    ``clients``: only these emails (any case); empty: every client of the week.
    ``dry_run``: report and render what would be sent, send and record nothing.
    ``now``: the instant (ISO 8601, with its offset) that decides the quiet period and the
    cut-off; default the run's clock."""

    force: bool = False
    clients: list[str] = []
    dry_run: bool = False
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


@dg.asset(
    ins={"client_digests": dg.AssetIn()},
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    kinds={"email", "postgres"},
    metadata=column_schema("sent_corrections"),
)
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
    run_id = context.run.run_id
    store = warehouse.open()
    ledger, log = Ledger(store), SentLog(store, SENT_CORRECTIONS)
    rehearsal = email.dry_run_reason is not None  # the deployment sends nothing: it rehearses
    digests, missing = of_clients(client_digests, config.clients)
    if missing:
        context.log.warning(f"No digest for {missing} in these weeks")
    current = [ClientDigest.model_validate(c) for c in digests["content"]]
    weeks = [
        correction_week(
            week, [d for d in current if d.week_start == week], ledger, corrections.policy, now,
            rehearsal,
        )
        for week in run_weeks(context)
    ]  # fmt: skip
    for week in weeks:
        week.publish(reports.path)
    sends = [v for week in weeks for v in week.versions("send")]
    reason = "run config dry_run" if config.dry_run else email.dry_run_reason
    outcomes: dict[tuple, Outcome] = {}
    if not config.dry_run:  # a change past the cut-off is noted once, for the alert
        ledger.record([v for w in weeks for v in w.versions("past_cutoff")], now, rehearsal, run_id)
    if reason:
        context.log.info(f"Dry run ({reason}): would send {len(sends)} correction(s), sent none.")
        if rehearsal and not config.dry_run:
            ledger.record(sends, now, True, run_id)
    elif sends:
        nonce = run_id if config.force else None
        sent = send_logged(
            [correction_delivery(v.correction, nonce) for v in sends if v.correction],
            log,
            email,
            run_id,
            force=config.force,
            info=context.log.info,
            on_sent=ledger.on_sent({(*v.key, v.version): v for v in sends}, run_id),
        )
        outcomes = {(o.period, o.recipient, o.version): o for o in sent}

    first, last = min(run_weeks(context)), max(run_weeks(context))
    rows = log.rows(first, last)
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
    failed = [o for o in outcomes.values() if o.status == "failed"]
    if failed:
        raise dg.Failure(
            description=(
                f"{len(failed)} of {len(outcomes)} correction(s) failed to send (first: "
                f"{failed[0].recipient}: {failed[0].error}). They are recorded in "
                "sent_corrections; the next run sends only those."
            )
        )
    return dg.MaterializeResult()

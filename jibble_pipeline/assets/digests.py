"""Weekly client digests: the client directory, the rendered digests, sending them (with the
``sent_digests`` log) and the internal report site.

``client_digests`` and ``report_site`` follow ``weekly_hours`` (automation, latest two weeks);
``sent_digests`` runs only from the Monday schedule or by hand, so re-deriving a week never
emails anybody.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.metadata import hours_bar_chart, table_metadata
from jibble_pipeline.assets.table_metadata import column_schema
from jibble_pipeline.delivery.policy import (
    SendConfig,
    SendPolicy,
    fail_if_any_failed,
    outcome_rows,
)
from jibble_pipeline.delivery.resources import EmailResource
from jibble_pipeline.delivery.sending import send_logged, unknown_deliveries
from jibble_pipeline.delivery.sent_log import Outcome, SentLog
from jibble_pipeline.digest.content import ClientDigest
from jibble_pipeline.digest.directory.clients import clients_from_frame, directory_frame
from jibble_pipeline.digest.ledger import Ledger, Version
from jibble_pipeline.digest.resources import ClientDirectoryResource, ReportsResource
from jibble_pipeline.digest.sending import (
    ExportAttachments,
    digest_deliveries,
    no_attachments,
    of_clients,
    unsent,
    with_attachments,
)
from jibble_pipeline.digest.site.paths import EXPORT_SUFFIXES
from jibble_pipeline.digest.weeks import (
    digest_week,
    digests_frame,
    publish_index,
    publish_site_week,
)
from jibble_pipeline.partitions import run_weeks, week_of_days, weekly_partitions
from jibble_pipeline.warehouse.display_names import load_names
from jibble_pipeline.warehouse.resource import WarehouseResource
from jibble_pipeline.warehouse.versions import carry_versions

GROUP = "digests"

# Re-render the current and the previous week when their weekly hours (or, for the site,
# their digests) were re-derived. Older weeks change only by hand or by backfill.
RECENT_WEEKS = dg.AutomationCondition.in_latest_time_window(timedelta(days=14))


def _follows(label: str, *ignored: str) -> dg.AutomationCondition:
    """Materialise a recent week once its dependencies (but ``ignored``) were updated and
    nothing of it is in progress; ``label`` says so in the UI."""
    return (
        dg.AutomationCondition.any_deps_updated()
        .ignore(dg.AssetSelection.assets(*ignored))
        .since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & RECENT_WEEKS
    ).with_label(label)


@dg.asset(group_name=GROUP, kinds={"postgres"}, metadata=column_schema("client_directory"))
def client_directory(
    context: dg.AssetExecutionContext, clients: ClientDirectoryResource
) -> pd.DataFrame:
    """Clients (emails, compared case-insensitively) and the Jibble groups whose weekly
    digest each receives, from Airtable or the clients file. Replaced whole on each sync."""
    load = clients.load()
    frame = directory_frame(load, clients.description, datetime.now(UTC))
    if load.skipped:
        context.log.warning(
            f"{len(load.skipped)} directory row(s) skipped, or their contract left out (see "
            "metadata)"
        )
    if not load.clients:
        context.log.warning(f"The client directory ({clients.description}) lists no client.")
    context.add_output_metadata(
        {
            "source": clients.description,
            "clients": len(load.clients),
            "clients_with_a_contract": sum(c.contract is not None for c in load.clients),
            "mappings": len(frame),
            "skipped_rows": len(load.skipped),
            "skipped": table_metadata(pd.DataFrame([s.model_dump() for s in load.skipped])),
            "directory": table_metadata(
                frame[["email", "client_name", "group_id", "contracted_hours"]]
            ),
        }
    )
    return frame


@dg.asset(
    ins={
        "weekly_hours": dg.AssetIn(),
        "sessions": dg.AssetIn(partition_mapping=week_of_days),
        "client_directory": dg.AssetIn(),
    },
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=_follows(
        "weekly hours re-derived (latest two weeks)", "sessions", "client_directory"
    ),
    group_name=GROUP,
    kinds={"postgres", "html"},
    metadata=column_schema("client_digests"),
)
def client_digests(
    context: dg.AssetExecutionContext,
    weekly_hours: pd.DataFrame,
    sessions: pd.DataFrame,
    client_directory: pd.DataFrame,
    warehouse: WarehouseResource,
    reports: ReportsResource,
    email: EmailResource,
) -> pd.DataFrame:
    """Each client's week: total hours, hours per agent and activity, hours per day, and
    Notes (open, incomplete, auto clock-out sessions), as HTML and text (h:mm), naming the
    exports the email carries. Also written as files under ``<reports>/digests/<week>/``,
    with the exports (workbook and CSVs)."""
    names = load_names(warehouse)
    clients = clients_from_frame(client_directory)
    rendered_at = datetime.now(UTC)
    rows: list[dict] = []
    for week in run_weeks(context.run.tags):
        rendered = digest_week(
            week, clients, weekly_hours, sessions, names, rendered_at, email.attachments
        )
        folder = rendered.publish(reports.path)
        for warning in rendered.warnings():
            context.log.warning(warning)
        seconds = sum(row["total_work_seconds"] for row in rendered.rows)
        metadata: dict[str, object] = {
            "dagster/row_count": len(rendered.rows),
            "clients": len(clients),
            "total_work_hours": round(seconds / 3600, 2),
            "per_client": table_metadata(pd.DataFrame(rendered.per_client())),
            "groups_without_client": table_metadata(pd.DataFrame(rendered.uncovered)),
            "files": dg.MetadataValue.path(str(folder)),
            "export_files": len(rendered.exports) * len(EXPORT_SUFFIXES),
            "exports": table_metadata(pd.DataFrame([e.summary() for e in rendered.exports])),
        }
        if rendered.rows:
            metadata["preview"] = dg.MetadataValue.text(rendered.rows[0]["text"])
        context.add_asset_metadata(metadata, partition_key=week.isoformat())
        rows += rendered.rows
    return carry_versions(digests_frame(rows), weekly_hours, sessions)


class DigestSendConfig(SendConfig):
    """``force``: send again even to clients who already got the week's digest.
    ``clients``: only these emails (any case); empty: every client of the week.
    ``dry_run``: report what would be sent, send nothing (also when no backend is set)."""

    clients: list[str] = []


def reported_version(row: Mapping) -> Version:
    """The ledger's version of a digest (a row of ``client_digests``) when it is sent."""
    return Version("digest", ClientDigest.model_validate(row["content"]), row["subject"])


def _count_of_week(digests: Sequence[Mapping], week: date) -> int:
    return sum(row["week_start"] == week for row in digests)


def dry_run_metadata(
    week: date, reason: str, digests: Sequence[Mapping], would: Sequence[Mapping]
) -> dict[str, object]:
    of_week = [row for row in would if row["week_start"] == week]
    recipients = [{"to": row["client_email"], "subject": row["subject"]} for row in of_week]
    return {
        "dry_run": True,
        "dry_run_reason": reason,
        "would_send": len(of_week),
        "already_sent": _count_of_week(digests, week) - len(of_week),
        "sent": 0,
        "would_send_to": table_metadata(pd.DataFrame(recipients)),
    }


def sent_metadata(
    week: date,
    backend: str,
    digests: Sequence[Mapping],
    outcomes: Sequence[Outcome],
    attachments: ExportAttachments | None,
) -> dict[str, object]:
    of_week = [o for o in outcomes if o.period == week]
    metadata: dict[str, object] = {
        "dry_run": False,
        "backend": backend,
        "sent": sum(o.status == "sent" for o in of_week),
        "failed": sum(o.status == "failed" for o in of_week),
        "already_sent": _count_of_week(digests, week) - len(of_week),
        "outcomes": table_metadata(pd.DataFrame(outcome_rows(of_week))),
        "attachments": "on (JIBBLE_DIGEST_ATTACHMENTS)" if attachments else "off",
    }
    if attachments is not None:
        missing = [m for m in attachments.missing if m["week"] == week.isoformat()]
        metadata["attachments_missing"] = len(missing)
        if missing:
            metadata["missing_attachments"] = table_metadata(pd.DataFrame(missing))
    return metadata


def sending_asset(log_table: str) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """The definition of an asset that sends the messages of each week's ``client_digests``
    once, through the send log ``log_table``."""
    return dg.asset(
        ins={"client_digests": dg.AssetIn()},
        partitions_def=weekly_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
        kinds={"email", "postgres"},
        metadata=column_schema(log_table),
    )


@sending_asset("sent_digests")
def sent_digests(
    context: dg.AssetExecutionContext,
    config: DigestSendConfig,
    client_digests: pd.DataFrame,
    email: EmailResource,
    warehouse: WarehouseResource,
    reports: ReportsResource,
) -> dg.MaterializeResult:
    """Emails each client its week's digest once: the ``sent_digests`` log skips clients
    already sent (unless forced), records failures per client, and the next run retries
    them; each digest sent records its figures in the as-reported ledger. A dry run sends
    nothing and changes no row of the log; when the deployment sends nothing (no email
    backend, ``JIBBLE_DIGEST_DRY_RUN``) the ledger records the week as rehearsed.
    Each digest carries its week's exports (unless ``JIBBLE_DIGEST_ATTACHMENTS=false``); a
    file missing from the reports folder is left out with a warning, the digest still goes."""
    digests, missing = of_clients(client_digests, config.clients)
    if missing:
        context.log.warning(f"No digest for {missing} in these weeks")
    weeks = run_weeks(context.run.tags)
    if client_digests.empty:
        context.log.warning(
            f"No digests rendered for {', '.join(w.isoformat() for w in weeks)}: materialise "
            "client_digests first (the send_weekly_digests job does both)."
        )
    store = warehouse.open()
    log, ledger = SentLog(store), Ledger(store)
    records = digests.to_dict(orient="records")
    policy = SendPolicy.of_run(context.run.run_id, config, email.dry_run_reason)
    if policy.dry_run_reason:
        would = unsent(records, log, weeks, force=policy.force)
        context.log.info(policy.would_send(len(would), "digest(s)"))
        if not config.dry_run:  # a deployment that sends nothing rehearses: see ledger.py
            rehearsed = [reported_version(row) for row in would]
            ledger.record(rehearsed, datetime.now(UTC), True, policy.run_id, not policy.force)
        for week in weeks:
            metadata = dry_run_metadata(week, policy.dry_run_reason, records, would)
            context.add_asset_metadata(metadata, partition_key=week.isoformat())
        return dg.MaterializeResult()

    attachments = ExportAttachments(reports.path) if email.attachments else None
    outcomes = send_logged(
        digest_deliveries(records, policy.force_nonce),
        log,
        email,
        policy.run_id,
        force=policy.force,
        info=context.log.info,
        complete=with_attachments(records, attachments or no_attachments),
        on_sent=ledger.on_sent(
            {(row["week_start"], row["client_email"]): reported_version(row) for row in records},
            policy.run_id,
        ),
    )
    if attachments and attachments.missing:
        context.log.warning(
            f"{len(attachments.missing)} export file(s) were missing and not attached (the "
            "digests went without them); re-materialise client_digests for the week to "
            "rewrite them: " + ", ".join(m["file"] for m in attachments.missing[:5])
        )
    unknown = unknown_deliveries(log, min(weeks), max(weeks), context.log.warning)
    for week in weeks:
        metadata = sent_metadata(week, email.backend, records, outcomes, attachments)
        metadata["delivery_unknown"] = int((unknown["week_start"] == week).sum())
        context.add_asset_metadata(metadata, partition_key=week.isoformat())
    retried = "They are recorded in sent_digests; re-running the week sends only those."
    fail_if_any_failed(outcomes, "digest(s)", retried, {"backend": email.backend})
    return dg.MaterializeResult()


@dg.asset(
    ins={
        "client_digests": dg.AssetIn(),
        "sessions": dg.AssetIn(partition_mapping=week_of_days),
        "daily_attendance": dg.AssetIn(partition_mapping=week_of_days),
    },
    # After the sending steps of its run: the pages show what each client was told.
    deps=["sent_digests", "sent_corrections"],
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=_follows(
        "digests re-rendered or sent (latest two weeks)", "sessions", "daily_attendance"
    ),
    group_name=GROUP,
    kinds={"html"},
)
def report_site(
    context: dg.AssetExecutionContext,
    client_digests: pd.DataFrame,
    sessions: pd.DataFrame,
    daily_attendance: pd.DataFrame,
    warehouse: WarehouseResource,
    reports: ReportsResource,
) -> dg.MaterializeResult:
    """The internal report site: index of clients -> a client's week (a chart of its last 12
    weeks against its contract, the digest, what it was told version by version and each
    version next to the week now) -> an agent's week (hours per day as a chart, the daily
    timeline of clock-in/out and sessions). Static files under the reports folder, charts
    inline SVG; serve them with ``jibble-pipeline serve-reports``."""
    names = load_names(warehouse)
    store = warehouse.open()
    generated = datetime.now(UTC)
    for week in run_weeks(context.run.tags):
        site = publish_site_week(
            reports.path, week, client_digests, sessions, daily_attendance, names, generated, store
        )
        per_day = hours_bar_chart(site.work_seconds_per_day(), "Work hours per work date")
        context.add_asset_metadata(
            {
                "pages": site.pages,
                "clients": table_metadata(pd.DataFrame(site.per_client())),
                "agents": table_metadata(pd.DataFrame(site.per_agent())),
                "work_hours_per_day": per_day,
            },
            partition_key=week.isoformat(),
        )
    index = publish_index(reports.path, store, generated)
    return dg.MaterializeResult(metadata={"index": dg.MetadataValue.path(str(index))})


DIGEST_ASSETS = [client_directory, client_digests, sent_digests, report_site]

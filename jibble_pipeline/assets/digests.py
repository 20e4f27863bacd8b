"""Weekly client digests: the client directory, the rendered digests, sending them (with the
``sent_digests`` log) and the internal report site.

``client_digests`` and ``report_site`` follow ``weekly_hours`` (automation, latest two weeks);
``sent_digests`` runs only from the Monday schedule or by hand, so re-deriving a week never
emails anybody.
"""

import hashlib
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
from psycopg import sql

from jibble_pipeline.assets.metadata import display_names, hours_bar_chart, table_metadata
from jibble_pipeline.automation.partitions import week_of_days, weekly_partitions
from jibble_pipeline.digest.content import (
    ClientDigest,
    Names,
    build_week_digests,
    groups_without_client,
)
from jibble_pipeline.digest.directory import clients_from_frame, directory_frame
from jibble_pipeline.digest.email import OutgoingEmail, SendError, deliver, scrub
from jibble_pipeline.digest.render import render_html, render_text, subject
from jibble_pipeline.digest.resources import ClientDirectoryResource, EmailResource, ReportsResource
from jibble_pipeline.digest.site import (
    agent_weeks,
    digest_files,
    existing_weeks,
    publish,
    render_index,
    render_week,
    week_dir,
    write_file,
)
from jibble_pipeline.rules.formatting import format_hours
from jibble_pipeline.warehouse.resource import WarehouseResource
from jibble_pipeline.warehouse.sent_log import Claim, Outcome, SentLog
from jibble_pipeline.warehouse.tables import CLIENT_DIGESTS

GROUP = "digests"
RECORD_BATCH = 20  # outcomes recorded per statement while sending

# Re-render the current and the previous week when their weekly hours (or, for the site,
# their digests) were re-derived. Older weeks change only by hand or by backfill.
RECENT_WEEKS = dg.AutomationCondition.in_latest_time_window(timedelta(days=14))


def _follows(*ignored: str) -> dg.AutomationCondition:
    return (
        dg.AutomationCondition.any_deps_updated()
        .ignore(dg.AssetSelection.assets(*ignored))
        .since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & RECENT_WEEKS
    )


def run_weeks(context: dg.AssetExecutionContext) -> list[date]:
    return [date.fromisoformat(key) for key in context.partition_keys]


def names_of(warehouse: WarehouseResource) -> Names:
    names = display_names(warehouse)
    return Names(agents=names.agents, groups=names.groups, activities=names.activities)


@dg.asset(group_name=GROUP, kinds={"postgres"})
def client_directory(
    context: dg.AssetExecutionContext, clients: ClientDirectoryResource
) -> pd.DataFrame:
    """Clients (emails, compared case-insensitively) and the Jibble groups whose weekly
    digest each receives, from Airtable or the clients file. Replaced whole on each sync."""
    load = clients.load()
    frame = directory_frame(load, clients.description, datetime.now(UTC))
    if load.skipped:
        context.log.warning(f"{len(load.skipped)} directory row(s) skipped (see metadata)")
    if not load.clients:
        context.log.warning(f"The client directory ({clients.description}) lists no client.")
    context.add_output_metadata(
        {
            "source": clients.description,
            "clients": len(load.clients),
            "mappings": len(frame),
            "skipped_rows": len(load.skipped),
            "skipped": table_metadata(pd.DataFrame([s.model_dump() for s in load.skipped])),
            "directory": table_metadata(frame[["email", "client_name", "group_id"]]),
        }
    )
    return frame


def digest_row(digest: ClientDigest, rendered_at: datetime) -> dict:
    html, text = render_html(digest), render_text(digest)
    content = digest.model_dump_json()
    return {
        "week_start": digest.week_start,
        "client_email": digest.client_email,
        "client_name": digest.client_name,
        "group_ids": ",".join(digest.group_ids),
        "subject": subject(digest),
        "agent_count": len(digest.agents),
        "total_work_seconds": digest.total_seconds,
        "note_count": len(digest.notes),
        "html": html,
        "text": text,
        "content": content,
        "digest_sha256": hashlib.sha256(content.encode()).hexdigest(),
        "rendered_at": rendered_at,
    }


@dg.asset(
    ins={
        "weekly_hours": dg.AssetIn(),
        "sessions": dg.AssetIn(partition_mapping=week_of_days),
        "client_directory": dg.AssetIn(),
    },
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=_follows("sessions", "client_directory").with_label(
        "weekly hours re-derived (latest two weeks)"
    ),
    group_name=GROUP,
    kinds={"postgres", "html"},
)
def client_digests(
    context: dg.AssetExecutionContext,
    weekly_hours: pd.DataFrame,
    sessions: pd.DataFrame,
    client_directory: pd.DataFrame,
    warehouse: WarehouseResource,
    reports: ReportsResource,
) -> pd.DataFrame:
    """Each client's week: total hours, hours per agent and activity, hours per day, and
    Notes (open, incomplete, auto clock-out sessions), as HTML and text (h:mm). Also written
    as files under ``<reports>/digests/<week>/``."""
    names = names_of(warehouse)
    clients = clients_from_frame(client_directory)
    rendered_at = datetime.now(UTC)
    rows: list[dict] = []
    for week in run_weeks(context):
        summary, uncovered = [], []
        digests = build_week_digests(week, clients, weekly_hours, sessions, names)
        week_rows = [digest_row(d, rendered_at) for d in digests]
        rows += week_rows
        html = {row["client_email"]: row["html"] for row in week_rows}
        publish(reports.path, f"digests/{week.isoformat()}", digest_files(digests, html))
        for digest in digests:
            by_day = sum(d.seconds for d in digest.days)
            if by_day != digest.total_seconds:
                context.log.warning(
                    f"{week} {digest.client_email}: weekly_hours says "
                    f"{format_hours(digest.total_seconds)}, the sessions per day add up to "
                    f"{format_hours(by_day)}; re-derive weekly_hours for the week."
                )
            summary.append(
                {
                    "week": week.isoformat(),
                    "client": digest.client_name,
                    "email": digest.client_email,
                    "agents": len(digest.agents),
                    "hours": format_hours(digest.total_seconds),
                    "notes": len(digest.notes),
                }
            )
        uncovered += [
            {"week": week.isoformat(), "group": names.group(g)}
            for g in groups_without_client(weekly_hours, clients, week)
        ]
        if uncovered:
            context.log.warning(
                f"{week}: {len(uncovered)} group(s) have hours but no client in the directory"
            )
        metadata: dict[str, object] = {
            "dagster/row_count": len(week_rows),
            "clients": len(clients),
            "total_work_hours": round(sum(r["total_work_seconds"] for r in week_rows) / 3600, 2),
            "per_client": table_metadata(pd.DataFrame(summary)),
            "groups_without_client": table_metadata(pd.DataFrame(uncovered)),
            "files": dg.MetadataValue.path(str(reports.path / "digests" / week.isoformat())),
        }
        if week_rows:
            metadata["preview"] = dg.MetadataValue.text(week_rows[0]["text"])
        context.add_asset_metadata(metadata, partition_key=week.isoformat())
    frame = pd.DataFrame(rows, columns=CLIENT_DIGESTS.column_names)
    frame["rendered_at"] = pd.to_datetime(frame["rendered_at"], utc=True)
    return frame


class SendConfig(dg.Config):
    """``force``: send again even to clients who already got the week's digest.
    ``clients``: only these emails (any case); empty: every client of the week.
    ``dry_run``: report what would be sent, send nothing (also when no backend is set)."""

    force: bool = False
    clients: list[str] = []
    dry_run: bool = False


def outgoing(row: dict, force_nonce: str | None) -> OutgoingEmail:
    week = row["week_start"].isoformat()
    recipient = hashlib.sha256(row["client_email"].encode()).hexdigest()[:16]
    key = f"jibble-digest/{week}/{recipient}" + (f"/{force_nonce}" if force_nonce else "")
    return OutgoingEmail(
        to=row["client_email"],
        subject=row["subject"],
        text=row["text"],
        html=row["html"],
        idempotency_key=key,
        headers={"X-Jibble-Digest-Week": week},
    )


@dg.asset(
    ins={"client_digests": dg.AssetIn()},
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    kinds={"email", "postgres"},
)
def sent_digests(
    context: dg.AssetExecutionContext,
    config: SendConfig,
    client_digests: pd.DataFrame,
    email: EmailResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Emails each client its week's digest once: the ``sent_digests`` log skips clients
    already sent (unless forced), records failures per client, and the next run retries
    them. A dry run (configured, or no email backend) sends nothing and changes no row."""
    wanted = {c.strip().lower() for c in config.clients if c.strip()}
    digests = client_digests
    if wanted:
        digests = digests[digests["client_email"].isin(wanted)]
        missing = sorted(wanted - set(digests["client_email"]))
        if missing:
            context.log.warning(f"No digest for {missing} in these weeks")
    weeks = run_weeks(context)
    if client_digests.empty:
        context.log.warning(
            f"No digests rendered for {', '.join(w.isoformat() for w in weeks)}: materialise "
            "client_digests first (the send_weekly_digests job does both)."
        )
    log = SentLog(warehouse.open())
    before = log.rows(min(weeks), max(weeks))
    already = set(
        zip(
            before.loc[before["status"] == "sent", "week_start"],
            before.loc[before["status"] == "sent", "client_email"],
            strict=True,
        )
    )
    records = digests.to_dict(orient="records")

    if config.dry_run or email.is_dry_run:
        reason = (
            "run config dry_run"
            if config.dry_run
            else (
                "no email backend is configured (JIBBLE_EMAIL_BACKEND)"
                if email.backend == "none"
                else "JIBBLE_DIGEST_DRY_RUN"
            )
        )
        would = [
            r
            for r in records
            if config.force or (r["week_start"], r["client_email"]) not in already
        ]
        context.log.info(f"Dry run ({reason}): would send {len(would)} digest(s), sent none.")
        for week in weeks:
            of_week = [r for r in would if r["week_start"] == week]
            context.add_asset_metadata(
                {
                    "dry_run": True,
                    "dry_run_reason": reason,
                    "would_send": len(of_week),
                    "already_sent": sum(r["week_start"] == week for r in records) - len(of_week),
                    "sent": 0,
                    "would_send_to": table_metadata(
                        pd.DataFrame(
                            [{"to": r["client_email"], "subject": r["subject"]} for r in of_week]
                        )
                    ),
                },
                partition_key=week.isoformat(),
            )
        return dg.MaterializeResult()

    run_id = context.run.run_id
    now = datetime.now(UTC)
    claims = [
        Claim(r["week_start"], r["client_email"], r["subject"], r["digest_sha256"]) for r in records
    ]
    held = log.claim(claims, run_id, now, force=config.force)
    to_send = [r for r in records if (r["week_start"], r["client_email"]) in held]
    skipped = len(records) - len(to_send)
    context.log.info(
        f"Sending {len(to_send)} digest(s) via {email.backend}; {skipped} already sent "
        "or being sent by another run."
    )
    outcomes: list[Outcome] = []
    pending: list[Outcome] = []

    def note(row: dict, message_id: str | None, error: str | None, attempts: int) -> None:
        outcome = Outcome(
            week_start=row["week_start"],
            client_email=row["client_email"],
            status="sent" if error is None else "failed",
            attempts=attempts,
            message_id=message_id,
            error=error,
            at=datetime.now(UTC),
        )
        outcomes.append(outcome)
        pending.append(outcome)
        if len(pending) >= RECORD_BATCH:
            log.record(pending, run_id, email.backend)
            pending.clear()

    def give_up(error: str) -> None:
        """The rest of the batch cannot go: each recorded failed, not attempted."""
        done = {(o.week_start, o.client_email) for o in outcomes}
        for row in to_send:
            if (row["week_start"], row["client_email"]) not in done:
                note(row, None, error, 0)

    try:
        if to_send:
            with email.open_sender() as sender:
                for row in to_send:
                    result = deliver(
                        sender,
                        outgoing(row, run_id if config.force else None),
                        max_attempts=email.max_attempts,
                        retry_delay_seconds=email.retry_delay_seconds,
                        secrets=email.secrets,
                    )
                    note(row, result.message_id, result.error, result.attempts)
                    if result.fatal:
                        give_up(result.error or "the batch stopped")
                        break
    except SendError as exc:
        give_up(scrub(str(exc), email.secrets))
    finally:
        log.record(pending, run_id, email.backend)
        pending.clear()

    failed = [o for o in outcomes if o.status == "failed"]
    for week in weeks:
        of_week = [o for o in outcomes if o.week_start == week]
        context.add_asset_metadata(
            {
                "dry_run": False,
                "backend": email.backend,
                "sent": sum(o.status == "sent" for o in of_week),
                "failed": sum(o.status == "failed" for o in of_week),
                "already_sent": sum(r["week_start"] == week for r in records) - len(of_week),
                "outcomes": table_metadata(
                    pd.DataFrame(
                        [
                            {
                                "to": o.client_email,
                                "status": o.status,
                                "attempts": o.attempts,
                                "error": o.error,
                            }
                            for o in of_week
                        ]
                    )
                ),  # fmt: skip
            },
            partition_key=week.isoformat(),
        )
    metadata = {"backend": email.backend, "sent": len(outcomes) - len(failed)}
    if failed:
        raise dg.Failure(
            description=(
                f"{len(failed)} of {len(outcomes)} digest(s) failed to send "
                f"(first: {failed[0].client_email}: {failed[0].error}). They are recorded in "
                "sent_digests; re-running the week sends only those."
            ),
            metadata={**metadata, "failed": len(failed)},
        )
    return dg.MaterializeResult()


INDEX_SUMMARY = (
    "SELECT week_start, client_email, client_name, total_work_seconds FROM {t}"
    " ORDER BY week_start DESC, client_email"
)


@dg.asset(
    ins={
        "client_digests": dg.AssetIn(),
        "sessions": dg.AssetIn(partition_mapping=week_of_days),
        "daily_attendance": dg.AssetIn(partition_mapping=week_of_days),
    },
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=_follows("sessions", "daily_attendance").with_label(
        "digests re-rendered (latest two weeks)"
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
    """The internal report site: index of clients -> a client's week -> an agent's week with
    the daily timeline of clock-in/out and sessions. Static files under the reports folder;
    serve them with ``python -m jibble_pipeline.digest.serve``."""
    names = names_of(warehouse)
    root = reports.path
    generated = datetime.now(UTC)
    pages = 0
    for week in run_weeks(context):
        of_week = client_digests[client_digests["week_start"] == week]
        digests = [ClientDigest.model_validate(c) for c in of_week["content"]]
        agents = agent_weeks(week, sessions, daily_attendance, names)
        written = publish(root, week_dir(week), render_week(week, digests, agents, generated))
        pages += written
        client_rows = [
            {"client": d.client_name, "email": d.client_email, "agents": len(d.agents),
             "hours": format_hours(d.total_seconds), "notes": len(d.notes)}
            for d in digests
        ]  # fmt: skip
        agent_rows = [
            {"agent": a.agent, "groups": ", ".join(a.groups), "days": a.days_worked,
             "work": format_hours(a.work_seconds), "break": format_hours(a.break_seconds),
             "open": a.open_sessions, "incomplete": a.incomplete_sessions,
             "auto_out": a.auto_outs}
            for a in agents
        ]  # fmt: skip
        per_day: dict[date, int] = {}
        for a in agents:
            for day in a.days:
                per_day[day.day] = per_day.get(day.day, 0) + day.work_seconds
        context.add_asset_metadata(
            {
                "pages": written,
                "clients": table_metadata(pd.DataFrame(client_rows)),
                "agents": table_metadata(pd.DataFrame(agent_rows)),
                "work_hours_per_day": hours_bar_chart(
                    pd.Series(per_day, dtype="int64").sort_index(), "Work hours per work date"
                ),
            },
            partition_key=week.isoformat(),
        )
    summary = warehouse.query_frame(
        sql.SQL(INDEX_SUMMARY).format(t=warehouse.table("client_digests"))
    )
    index = write_file(root, "index.html", render_index(summary, existing_weeks(root), generated))
    return dg.MaterializeResult(metadata={"index": dg.MetadataValue.path(str(index))})


DIGEST_ASSETS = [client_directory, client_digests, sent_digests, report_site]

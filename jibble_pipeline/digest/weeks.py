"""A week of digests and of report-site pages, as the ``client_digests`` and ``report_site``
assets produce it: built from the warehouse's frames, rendered, written under the reports
folder, and summed up in the per-client and per-agent rows the UI shows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
from psycopg import sql

from jibble_pipeline.digest.content import ClientDigest, build_week_digests, groups_without_client
from jibble_pipeline.digest.directory.clients import Client
from jibble_pipeline.digest.exports import (
    ATTACHMENTS,
    ClientExport,
    attachment_name,
    build_client_export,
)
from jibble_pipeline.digest.history import corrected_weeks, versions_by_client
from jibble_pipeline.digest.ledger import Ledger
from jibble_pipeline.digest.render import render_html, render_text, subject
from jibble_pipeline.digest.site.pages import AgentWeek, agent_weeks
from jibble_pipeline.digest.site.paths import digest_dir, week_dir
from jibble_pipeline.digest.site.publish import existing_weeks, publish, write_file
from jibble_pipeline.digest.site.render import TREND_WEEKS, digest_files, render_index, render_week
from jibble_pipeline.rules.formatting import format_hours
from jibble_pipeline.schema import CLIENT_DIGESTS
from jibble_pipeline.warehouse.display_names import Names
from jibble_pipeline.warehouse.store import Warehouse

INDEX_SUMMARY = (
    "SELECT week_start, client_email, client_name, total_work_seconds FROM {t}"
    " ORDER BY week_start DESC, client_email"
)
# Each client's hours per week (its groups' work hours), for the client pages' charts.
CLIENT_WEEKS = """
SELECT d.email, w.week_start, sum(w.work_seconds)::bigint AS seconds
FROM {weekly} w JOIN {directory} d ON d.group_id = w.group_id
WHERE w.week_start BETWEEN %(first)s AND %(last)s
GROUP BY d.email, w.week_start
"""


def of_contract(digest: ClientDigest) -> str | None:
    """``93.8 % of 120:00`` for the UI's tables; None without a contract."""
    done = digest.delivery
    return f"{done.percent:.1f} % of {format_hours(done.contracted_seconds)}" if done else None


def digest_row(digest: ClientDigest, rendered_at: datetime) -> dict:
    """The digest as a row of ``client_digests``: both renderings and a hash of its content."""
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


def digests_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """Rows of ``digest_row`` as the ``client_digests`` table's frame."""
    frame = pd.DataFrame(rows, columns=CLIENT_DIGESTS.column_names)
    frame["rendered_at"] = pd.to_datetime(frame["rendered_at"], utc=True)
    return frame


@dataclass(frozen=True)
class DigestWeek:
    """A week's digests, one per client, with their ``client_digests`` rows and exports."""

    week: date
    digests: list[ClientDigest]
    rows: list[dict]
    uncovered: list[dict]  # {"week", "group"}: groups with hours that no client receives
    exports: list[ClientExport]

    def publish(self, root: Path) -> Path:
        """Writes ``digests/<week>/`` (each digest as emailed, HTML and text, and its
        exports: workbook and CSVs); returns it."""
        html = {row["client_email"]: row["html"] for row in self.rows}
        files: dict[str, str | bytes] = {**digest_files(self.digests, html)}
        for export in self.exports:
            files.update(export.files())
        publish(root, digest_dir(self.week), files)
        return root / digest_dir(self.week)

    def warnings(self) -> list[str]:
        """Hours that do not add up, and groups whose hours nobody receives."""
        found = []
        for digest in self.digests:
            by_day = sum(d.seconds for d in digest.days)
            if by_day != digest.total_seconds:
                found.append(
                    f"{self.week} {digest.client_email}: weekly_hours says "
                    f"{format_hours(digest.total_seconds)}, the sessions per day add up to "
                    f"{format_hours(by_day)}; re-derive weekly_hours for the week."
                )
        if self.uncovered:
            found.append(
                f"{self.week}: {len(self.uncovered)} group(s) have hours but no client in "
                "the directory"
            )
        return found

    def per_client(self) -> list[dict]:
        return [
            {
                "week": self.week.isoformat(),
                "client": digest.client_name,
                "email": digest.client_email,
                "agents": len(digest.agents),
                "hours": format_hours(digest.total_seconds),
                "of_contract": of_contract(digest),
                "notes": len(digest.notes),
            }
            for digest in self.digests
        ]


def digest_week(
    week: date,
    clients: Sequence[Client],
    weekly_hours: pd.DataFrame,
    sessions: pd.DataFrame,
    names: Names,
    rendered_at: datetime,
    attachments: bool = False,
) -> DigestWeek:
    """Every client's digest of ``week``, rendered; ``attachments``: the email carries the
    week's exports, and says so."""
    digests = build_week_digests(week, clients, weekly_hours, sessions, names)
    if attachments:
        files = [attachment_name(kind, week) for kind in ATTACHMENTS]
        digests = [d.model_copy(update={"attachments": files}) for d in digests]
    uncovered = [
        {"week": week.isoformat(), "group": names.group(g)}
        for g in groups_without_client(weekly_hours, clients, week)
    ]
    rows = [digest_row(d, rendered_at) for d in digests]
    exports = [build_client_export(d, sessions, names) for d in digests]
    return DigestWeek(week, digests, rows, uncovered, exports)


@dataclass(frozen=True)
class SiteWeek:
    """A week of the report site: its clients' digests and its agents, day by day."""

    week: date
    digests: list[ClientDigest]
    agents: list[AgentWeek]
    pages: int

    def per_client(self) -> list[dict]:
        return [
            {"client": d.client_name, "email": d.client_email, "agents": len(d.agents),
             "hours": format_hours(d.total_seconds), "of_contract": of_contract(d),
             "notes": len(d.notes)}
            for d in self.digests
        ]  # fmt: skip

    def per_agent(self) -> list[dict]:
        return [
            {"agent": a.agent, "groups": ", ".join(a.groups), "days": a.days_worked,
             "work": format_hours(a.work_seconds), "break": format_hours(a.break_seconds),
             "open": a.open_sessions, "incomplete": a.incomplete_sessions,
             "auto_out": a.auto_outs}
            for a in self.agents
        ]  # fmt: skip

    def work_seconds_per_day(self) -> pd.Series:
        per_day: dict[date, int] = {}
        for agent in self.agents:
            for day in agent.days:
                per_day[day.day] = per_day.get(day.day, 0) + day.work_seconds
        return pd.Series(per_day, dtype="int64").sort_index()


def client_weeks(warehouse: Warehouse, first: date, last: date) -> dict[str, dict[date, int]]:
    """Each client's work seconds per week of ``first``..``last`` (Mondays), in one query."""
    query = sql.SQL(CLIENT_WEEKS).format(
        weekly=warehouse.identifier("weekly_hours"),
        directory=warehouse.identifier("client_directory"),
    )
    frame = warehouse.query_frame(query, {"first": first, "last": last})
    found: dict[str, dict[date, int]] = {}
    for email, week, seconds in frame.itertuples(index=False):
        found.setdefault(email, {})[week] = int(seconds)
    return found


def publish_site_week(
    root: Path,
    week: date,
    client_digests: pd.DataFrame,
    sessions: pd.DataFrame,
    attendance: pd.DataFrame,
    names: Names,
    generated_at: datetime,
    warehouse: Warehouse,
) -> SiteWeek:
    """Writes ``weeks/<week>/`` from the week's stored digests, sessions and attendance, with
    what each client was told of it (the ledger) and each client's last weeks."""
    of_week = client_digests[client_digests["week_start"] == week]
    digests = [ClientDigest.model_validate(c) for c in of_week["content"]]
    agents = agent_weeks(week, sessions, attendance, names)
    history = versions_by_client(Ledger(warehouse).history([week]))
    trends = client_weeks(warehouse, week - timedelta(weeks=TREND_WEEKS - 1), week)
    pages = render_week(week, digests, agents, generated_at, history, trends)
    return SiteWeek(week, digests, agents, publish(root, week_dir(week), pages))


def publish_index(root: Path, warehouse: Warehouse, generated_at: datetime) -> Path:
    """Writes the site's ``index.html``: every client's weeks in ``client_digests``, those
    corrected since first reported marked."""
    summary = warehouse.query_frame(
        sql.SQL(INDEX_SUMMARY).format(t=warehouse.identifier(CLIENT_DIGESTS.name))
    )
    weeks = sorted(set(summary["week_start"]))
    corrected = corrected_weeks(versions_by_client(Ledger(warehouse).history(weeks)))
    page = render_index(summary, existing_weeks(root), generated_at, corrected)
    return write_file(root, "index.html", page)

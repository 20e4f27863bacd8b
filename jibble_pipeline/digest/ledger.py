"""The as-reported ledger: what each client was told of each week, in Postgres
(``reported_weeks``, ``reported_hours``; docs/rules.md, Corrections).

Every digest and correction sent records a version of its client's week: the figures it
reported (the digest as sent: per agent and activity, per day, the total), when, and, for a
correction, what changed and why. A sent message's version is written in the transaction
that logs it sent (``on_sent``), so the send log and the ledger never disagree. A deployment
that sends nothing (no email backend, ``JIBBLE_DIGEST_DRY_RUN``) rehearses: its versions are
recorded with ``dry_run`` and only ever compared with one another. A change to a week past
the correction cut-off is recorded too (``past_cutoff``), for the operations alert and the
site, so it is noted once.

Every statement is set-based: a batch of versions is two ``INSERT ... SELECT FROM unnest``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from jibble_pipeline.delivery.sent_log import OnSent, Outcome
from jibble_pipeline.digest.content import ClientDigest
from jibble_pipeline.digest.corrections import CHANGE_COLUMNS, Correction, Reported
from jibble_pipeline.schema import REPORTED_HOURS, REPORTED_WEEKS
from jibble_pipeline.warehouse.store import Warehouse

Kind = Literal["digest", "correction", "past_cutoff"]
WeekKey = tuple[date, str]  # (week_start, client_email)


@dataclass(frozen=True)
class Version:
    """A version of a client's week to record: ``digest`` holds the figures reported;
    ``version`` None takes the next number (a digest sent again)."""

    kind: Kind
    digest: ClientDigest
    subject: str | None = None
    correction: Correction | None = None
    version: int | None = None

    @property
    def key(self) -> WeekKey:
        return self.digest.week_start, self.digest.client_email


INSERT_WEEKS = """
INSERT INTO {weeks} (week_start, client_email, version, kind, reported_at, dry_run,
                     total_seconds, subject, content, correction, run_id)
SELECT i.week_start, i.client_email,
       coalesce(i.version, (SELECT coalesce(max(r.version), 0) + 1 FROM {weeks} r
                            WHERE r.week_start = i.week_start
                              AND r.client_email = i.client_email)),
       i.kind, i.reported_at, %(dry_run)s, i.total_seconds, i.subject, i.content, i.correction,
       %(run)s
FROM unnest(%(week_start)s::date[], %(client_email)s::text[], %(version)s::int[],
            %(kind)s::text[], %(reported_at)s::timestamptz[], %(total_seconds)s::bigint[],
            %(subject)s::text[], %(content)s::jsonb[], %(correction)s::jsonb[])
     AS i(week_start, client_email, version, kind, reported_at, total_seconds, subject, content,
          correction)
WHERE NOT %(first_only)s OR NOT EXISTS (SELECT 1 FROM {weeks} r WHERE r.week_start = i.week_start
                                        AND r.client_email = i.client_email)
ON CONFLICT (week_start, client_email, version) DO NOTHING
RETURNING week_start, client_email, version
"""

INSERT_HOURS = """
INSERT INTO {hours} (week_start, client_email, version, person_id, activity_id, seconds)
SELECT * FROM unnest(%(week_start)s::date[], %(client_email)s::text[], %(version)s::int[],
                     %(person_id)s::text[], %(activity_id)s::text[], %(seconds)s::bigint[])
"""

LATEST = """
SELECT DISTINCT ON (r.week_start, r.client_email)
       r.week_start, r.client_email, r.version, r.reported_at, r.content,
       (SELECT max(n.version) FROM {weeks} n
        WHERE n.week_start = r.week_start AND n.client_email = r.client_email) AS newest
FROM {weeks} r
WHERE r.week_start = ANY(%(weeks)s) AND (NOT r.dry_run OR %(rehearsal)s)
ORDER BY r.week_start, r.client_email, r.version DESC
"""

ENTRY_CHANGES = """
SELECT e.entry_id, e.person_id, e.type, coalesce(e.activity_id, s.activity_id) AS activity_id,
       e.status, e.client_type, e.created_at, e.updated_at, e.fetched_at, e.removed_at
FROM {entries} e
LEFT JOIN {sessions} s ON s.end_entry_id = e.entry_id AND s.belongs_to_date = e.belongs_to_date
WHERE e.belongs_to_date BETWEEN %(first)s AND %(last)s AND e.person_id = ANY(%(persons)s)
  AND greatest(e.fetched_at, e.removed_at) > %(since)s
"""

# The client-weeks whose latest version (of the deployment's mode) differs from the weekly
# hours now by more than the tolerance on some agent and activity, with the last moment an
# entry of theirs landed changed. A week whose correction a stopped run may have sent (its
# delivery unknown) waits for a person.
CHANGED_WEEKS = """
WITH latest AS (
  SELECT DISTINCT ON (week_start, client_email) week_start, client_email, version
  FROM {weeks} WHERE NOT dry_run OR %(rehearsal)s
  ORDER BY week_start, client_email, version DESC
), reported AS (
  SELECT h.week_start, h.client_email, h.person_id, coalesce(h.activity_id, '') AS activity,
         h.seconds
  FROM {hours} h JOIN latest l USING (week_start, client_email, version)
), now_hours AS (
  SELECT w.week_start, d.email AS client_email, w.person_id,
         coalesce(w.activity_id, '') AS activity, sum(w.work_seconds) AS seconds
  FROM {weekly} w JOIN {directory} d ON d.group_id = w.group_id
  JOIN latest l ON l.week_start = w.week_start AND l.client_email = d.email
  GROUP BY 1, 2, 3, 4
), moved AS (
  SELECT week_start, client_email, array_agg(DISTINCT person_id) AS persons
  FROM reported r FULL JOIN now_hours c USING (week_start, client_email, person_id, activity)
  WHERE abs(coalesce(c.seconds, 0) - coalesce(r.seconds, 0)) > %(tolerance)s
  GROUP BY week_start, client_email
)
SELECT m.week_start, m.client_email,
       (SELECT max(greatest(e.fetched_at, e.removed_at)) FROM {entries} e
        WHERE e.belongs_to_date BETWEEN m.week_start AND m.week_start + 6
          AND e.person_id = ANY(m.persons)) AS last_change
FROM moved m JOIN latest l USING (week_start, client_email)
WHERE NOT EXISTS (SELECT 1 FROM {sent} s
                  WHERE s.week_start = m.week_start AND s.client_email = m.client_email
                    AND s.version > l.version AND s.status = 'attempting')
ORDER BY m.week_start, m.client_email
"""


def _hours_rows(key: WeekKey, version: int, digest: ClientDigest) -> list[tuple]:
    return [
        (*key, version, agent.person_id, activity.activity_id, activity.seconds)
        for agent in digest.agents
        for activity in agent.activities
    ]


class Ledger:
    """The ledger in a warehouse schema."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def _query(self, statement: str) -> sql.Composed:
        names = {
            "weeks": REPORTED_WEEKS.name, "hours": REPORTED_HOURS.name, "weekly": "weekly_hours",
            "directory": "client_directory", "entries": "raw_time_entries",
            "sessions": "sessions", "sent": "sent_corrections",
        }  # fmt: skip
        return sql.SQL(statement).format(
            **{key: self.warehouse.identifier(table) for key, table in names.items()}
        )

    # -------------------------------------------------------------------------- writes

    def write(
        self,
        cursor: psycopg.Cursor,
        versions: Sequence[Version],
        reported_at: Sequence[datetime],
        dry_run: bool,
        run_id: str,
        first_only: bool = False,
    ) -> list[tuple[date, str, int]]:
        """Records ``versions``, each reported at its moment of ``reported_at``, with
        ``cursor`` (in its transaction); returns the keys recorded (a version already there is
        left as it is). ``first_only``: only for client-weeks with no version yet."""
        if not versions:
            return []
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            (f"{self.warehouse.schema}.{REPORTED_WEEKS.name}",),
        )
        columns: dict[str, list[Any]] = {
            "week_start": [v.key[0] for v in versions],
            "client_email": [v.key[1] for v in versions],
            "version": [v.version for v in versions],
            "kind": [v.kind for v in versions],
            "reported_at": list(reported_at),
            "total_seconds": [v.digest.total_seconds for v in versions],
            "subject": [v.subject for v in versions],
            "content": [Jsonb(v.digest.model_dump(mode="json")) for v in versions],
            "correction": [
                Jsonb(v.correction.model_dump(mode="json")) if v.correction else None
                for v in versions
            ],
        }
        params = {"dry_run": dry_run, "run": run_id, "first_only": first_only, **columns}
        cursor.execute(self._query(INSERT_WEEKS), params)
        recorded = [(week, email, int(version)) for week, email, version in cursor.fetchall()]
        by_key = {v.key: v for v in versions}
        rows = [r for w, e, n in recorded for r in _hours_rows((w, e), n, by_key[(w, e)].digest)]
        if rows:
            names = ["week_start", "client_email", "version", "person_id", "activity_id"]
            arrays = {name: [r[i] for r in rows] for i, name in enumerate([*names, "seconds"])}
            cursor.execute(self._query(INSERT_HOURS), arrays)
        return recorded

    def record(
        self,
        versions: Sequence[Version],
        reported_at: datetime,
        dry_run: bool,
        run_id: str,
        first_only: bool = False,
    ) -> list[tuple[date, str, int]]:
        """Records ``versions``, all reported at ``reported_at``, in a transaction of their
        own (``first_only``: see ``write``)."""
        at = [reported_at] * len(versions)
        with self.warehouse.connection() as conn, conn.cursor() as cursor:
            return self.write(cursor, versions, at, dry_run, run_id, first_only)

    def on_sent(self, versions: Mapping[tuple, Version], run_id: str) -> OnSent:
        """For the send log: records the version of each message logged sent, keyed like the
        log (``(week, client)`` or ``(week, client, version)``), at the moment it went."""

        def record(cursor: psycopg.Cursor, sent: Sequence[Outcome]) -> None:
            recorded, moments = [], []
            for outcome in sent:
                key = (outcome.period, outcome.recipient, outcome.version)
                version = versions.get(key) or versions.get(key[:2])
                if version is not None:
                    recorded.append(version)
                    moments.append(outcome.at)
            self.write(cursor, recorded, moments, False, run_id)

        return record

    # --------------------------------------------------------------------------- reads

    def latest(
        self, weeks: Sequence[date], rehearsal: bool
    ) -> tuple[dict[WeekKey, Reported], dict[WeekKey, int]]:
        """The latest version of each client-week (a rehearsal's too, when ``rehearsal``),
        and the next version number of each (whatever its mode)."""
        frame = self.warehouse.query_frame(
            self._query(LATEST), {"weeks": list(weeks), "rehearsal": rehearsal}
        )
        latest, following = {}, {}
        for row in frame.to_dict(orient="records"):
            key = (row["week_start"], row["client_email"])
            digest = ClientDigest.model_validate(row["content"])
            latest[key] = Reported(int(row["version"]), row["reported_at"], digest)
            following[key] = int(row["newest"]) + 1
        return latest, following

    def entry_changes(self, week: date, person_ids: Sequence[str], since: datetime) -> pd.DataFrame:
        """The entries of ``week`` of these agents that landed changed (or were found gone)
        after ``since``, with the activity they count for (``CHANGE_COLUMNS``)."""
        params = {
            "first": week,
            "last": week + timedelta(days=6),
            "persons": list(person_ids),
            "since": since,
        }
        frame = self.warehouse.query_frame(self._query(ENTRY_CHANGES), params)
        return frame.reindex(columns=CHANGE_COLUMNS)

    def changed_weeks(self, tolerance_seconds: float, rehearsal: bool) -> pd.DataFrame:
        """``CHANGED_WEEKS``: week_start, client_email, last_change."""
        params = {"tolerance": tolerance_seconds, "rehearsal": rehearsal}
        return self.warehouse.query_frame(self._query(CHANGED_WEEKS), params)

    def history(self, weeks: Sequence[date]) -> pd.DataFrame:
        """Every version of the weeks, oldest first."""
        query = sql.SQL(
            "SELECT week_start, client_email, version, kind, reported_at, dry_run, total_seconds,"
            " content, correction, run_id FROM {} WHERE week_start = ANY(%(weeks)s)"
            " ORDER BY week_start, client_email, version"
        ).format(self.warehouse.identifier(REPORTED_WEEKS.name))
        return self.warehouse.query_frame(query, {"weeks": list(weeks)})

    def past_cutoff(self, first: datetime, last: datetime) -> list[Correction]:
        """The changes past the cut-off recorded in [first, last)."""
        query = sql.SQL(
            "SELECT correction FROM {} WHERE kind = 'past_cutoff'"
            " AND reported_at >= %(first)s AND reported_at < %(last)s"
            " ORDER BY week_start, client_email, version"
        ).format(self.warehouse.identifier(REPORTED_WEEKS.name))
        frame = self.warehouse.query_frame(query, {"first": first, "last": last})
        return [Correction.model_validate(c) for c in frame["correction"]]

"""The ``sent_digests`` log: which client got which week's digest, and what failed.

It makes sending idempotent. Before sending, one statement *claims* the (week, client) rows
to send: a row already ``sent`` is left alone unless the send is forced, and a row another
run claimed (``sending``) less than ``stale_after`` ago is left to that run. Only the claimed
rows are sent. Outcomes are recorded in batches, each one set-based statement, only on rows
this run still holds. A run that dies between sending and recording leaves ``sending`` rows;
once stale they are claimed again (at-least-once; the Resend idempotency key and the stable
per-week key make a duplicate unlikely there). The log is never deleted or replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd
from psycopg import sql

from jibble_pipeline.warehouse.store import Warehouse
from jibble_pipeline.warehouse.tables import SENT_DIGESTS

STALE_CLAIM = timedelta(minutes=30)


@dataclass(frozen=True)
class Claim:
    week_start: date
    client_email: str
    subject: str
    digest_sha256: str


@dataclass(frozen=True)
class Outcome:
    week_start: date
    client_email: str
    status: str  # "sent" or "failed"
    attempts: int
    message_id: str | None
    error: str | None
    at: datetime


CLAIM = """
INSERT INTO {log} AS s (week_start, client_email, status, attempts, send_count, subject,
                        digest_sha256, first_attempt_at, claimed_at, run_id)
SELECT w, e, 'sending', 0, 0, subj, sha, %(now)s, %(now)s, %(run)s
FROM unnest(%(weeks)s::date[], %(emails)s::text[], %(subjects)s::text[], %(shas)s::text[])
     AS incoming(w, e, subj, sha)
ON CONFLICT (week_start, client_email) DO UPDATE
SET status = 'sending', claimed_at = excluded.claimed_at, run_id = excluded.run_id,
    subject = excluded.subject, digest_sha256 = excluded.digest_sha256,
    first_attempt_at = coalesce(s.first_attempt_at, excluded.first_attempt_at)
WHERE (s.status <> 'sent' OR %(force)s)
  AND (s.status <> 'sending' OR s.claimed_at < %(stale)s)
RETURNING week_start, client_email
"""

RECORD = """
UPDATE {log} AS s
SET status = o.status,
    attempts = s.attempts + o.attempts,
    send_count = s.send_count + (o.status = 'sent')::int,
    backend = %(backend)s,
    message_id = coalesce(o.message_id, s.message_id),
    last_error = o.error,
    last_attempt_at = o.at,
    sent_at = CASE WHEN o.status = 'sent' THEN o.at ELSE s.sent_at END
FROM unnest(%(weeks)s::date[], %(emails)s::text[], %(statuses)s::text[], %(attempts)s::int[],
            %(ids)s::text[], %(errors)s::text[], %(ats)s::timestamptz[])
     AS o(week_start, client_email, status, attempts, message_id, error, at)
WHERE s.week_start = o.week_start AND s.client_email = o.client_email AND s.run_id = %(run)s
"""


class SentLog:
    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def _lock(self, cursor) -> None:
        # The same transactional lock any write of the table takes (Warehouse.write).
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            (f"{self.warehouse.schema}.{SENT_DIGESTS.name}",),
        )

    def claim(
        self,
        claims: Sequence[Claim],
        run_id: str,
        now: datetime,
        *,
        force: bool = False,
        stale_after: timedelta = STALE_CLAIM,
    ) -> set[tuple[date, str]]:
        """Claims the rows to send now; returns the (week, email) pairs this run holds."""
        if not claims:
            return set()
        query = sql.SQL(CLAIM).format(log=self.warehouse.identifier(SENT_DIGESTS.name))
        with self.warehouse.connection() as conn, conn.cursor() as cursor:
            self._lock(cursor)
            cursor.execute(
                query,
                {
                    "weeks": [c.week_start for c in claims],
                    "emails": [c.client_email for c in claims],
                    "subjects": [c.subject for c in claims],
                    "shas": [c.digest_sha256 for c in claims],
                    "now": now,
                    "run": run_id,
                    "force": force,
                    "stale": now - stale_after,
                },
            )
            return {(week, email) for week, email in cursor.fetchall()}

    def record(self, outcomes: Sequence[Outcome], run_id: str, backend: str) -> int:
        """Records a batch of outcomes in one statement; returns the rows updated."""
        if not outcomes:
            return 0
        query = sql.SQL(RECORD).format(log=self.warehouse.identifier(SENT_DIGESTS.name))
        with self.warehouse.connection() as conn, conn.cursor() as cursor:
            self._lock(cursor)
            cursor.execute(
                query,
                {
                    "weeks": [o.week_start for o in outcomes],
                    "emails": [o.client_email for o in outcomes],
                    "statuses": [o.status for o in outcomes],
                    "attempts": [o.attempts for o in outcomes],
                    "ids": [o.message_id for o in outcomes],
                    "errors": [o.error for o in outcomes],
                    "ats": [o.at for o in outcomes],
                    "run": run_id,
                    "backend": backend,
                },
            )
            return cursor.rowcount

    def rows(self, first: date, last: date) -> pd.DataFrame:
        """The log of weeks ``first``..``last`` (inclusive)."""
        query = sql.SQL(
            "SELECT * FROM {log} WHERE week_start BETWEEN %(first)s AND %(last)s"
            " ORDER BY week_start, client_email"
        ).format(log=self.warehouse.identifier(SENT_DIGESTS.name))
        return self.warehouse.query_frame(query, {"first": first, "last": last})

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

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta

import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.schema import SENT_DIGESTS
from jibble_pipeline.warehouse.store import Warehouse

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
FROM unnest(%(week_start)s::date[], %(client_email)s::text[], %(subject)s::text[],
            %(digest_sha256)s::text[])
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
FROM unnest(%(week_start)s::date[], %(client_email)s::text[], %(status)s::text[],
            %(attempts)s::int[], %(message_id)s::text[], %(error)s::text[], %(at)s::timestamptz[])
     AS o(week_start, client_email, status, attempts, message_id, error, at)
WHERE s.week_start = o.week_start AND s.client_email = o.client_email AND s.run_id = %(run)s
"""


def _arrays(rows: Sequence[Claim] | Sequence[Outcome]) -> dict[str, list]:
    """One array per field of the rows, named after the field, for ``unnest``."""
    names = [f.name for f in fields(rows[0])]
    return {name: [getattr(row, name) for row in rows] for name in names}


class SentLog:
    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    @contextmanager
    def _execute(self, statement: str, params: Mapping[str, object]) -> Iterator[psycopg.Cursor]:
        """Runs one statement on the log in a transaction of its own, holding the same
        transactional lock any write of the table takes (``Warehouse.write``)."""
        query = sql.SQL(statement).format(log=self.warehouse.identifier(SENT_DIGESTS.name))
        with self.warehouse.connection() as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                (f"{self.warehouse.schema}.{SENT_DIGESTS.name}",),
            )
            cursor.execute(query, params)
            yield cursor

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
        params = {"now": now, "run": run_id, "force": force, "stale": now - stale_after}
        with self._execute(CLAIM, {**_arrays(claims), **params}) as cursor:
            return {(week, email) for week, email in cursor.fetchall()}

    def record(self, outcomes: Sequence[Outcome], run_id: str, backend: str) -> int:
        """Records a batch of outcomes in one statement; returns the rows updated."""
        if not outcomes:
            return 0
        params = {"run": run_id, "backend": backend}
        with self._execute(RECORD, {**_arrays(outcomes), **params}) as cursor:
            return cursor.rowcount

    def rows(self, first: date, last: date) -> pd.DataFrame:
        """The log of weeks ``first``..``last`` (inclusive)."""
        query = sql.SQL(
            "SELECT * FROM {log} WHERE week_start BETWEEN %(first)s AND %(last)s"
            " ORDER BY week_start, client_email"
        ).format(log=self.warehouse.identifier(SENT_DIGESTS.name))
        return self.warehouse.query_frame(query, {"first": first, "last": last})

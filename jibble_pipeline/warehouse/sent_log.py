"""Send logs: which client got which week's digest (``sent_digests``), which recipient got
which day's operations alert (``sent_alerts``), and what failed.

A log makes sending idempotent. Its key is (period, recipient): the table's primary key.
Before sending, one statement *claims* the rows to send: a row already ``sent`` is left
alone unless the send is forced, and a row another run claimed (``sending``) less than
``stale_after`` ago is left to that run. Only the claimed rows are sent. Outcomes are
recorded in batches, each one set-based statement, only on rows this run still holds. A run
that dies between sending and recording leaves ``sending`` rows; once stale they are claimed
again (at-least-once; the Resend idempotency key and the stable per-period key make a
duplicate unlikely there). The log is never deleted or replaced.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta

import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.schema import SENT_DIGESTS, Table
from jibble_pipeline.warehouse.store import Warehouse

STALE_CLAIM = timedelta(minutes=30)


@dataclass(frozen=True)
class Claim:
    period: date  # the digest's week, the alert's day
    recipient: str
    subject: str
    sha256: str  # of the content sent


@dataclass(frozen=True)
class Outcome:
    period: date
    recipient: str
    status: str  # "sent" or "failed"
    attempts: int
    message_id: str | None
    error: str | None
    at: datetime


CLAIM = """
INSERT INTO {log} AS s ({period}, {recipient}, status, attempts, send_count, subject,
                        {sha}, first_attempt_at, claimed_at, run_id)
SELECT p, r, 'sending', 0, 0, subj, sha, %(now)s, %(now)s, %(run)s
FROM unnest(%(period)s::date[], %(recipient)s::text[], %(subject)s::text[],
            %(sha256)s::text[])
     AS incoming(p, r, subj, sha)
ON CONFLICT ({period}, {recipient}) DO UPDATE
SET status = 'sending', claimed_at = excluded.claimed_at, run_id = excluded.run_id,
    subject = excluded.subject, {sha} = excluded.{sha},
    first_attempt_at = coalesce(s.first_attempt_at, excluded.first_attempt_at)
WHERE (s.status <> 'sent' OR %(force)s)
  AND (s.status <> 'sending' OR s.claimed_at < %(stale)s)
RETURNING {period}, {recipient}
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
FROM unnest(%(period)s::date[], %(recipient)s::text[], %(status)s::text[],
            %(attempts)s::int[], %(message_id)s::text[], %(error)s::text[], %(at)s::timestamptz[])
     AS o(period, recipient, status, attempts, message_id, error, at)
WHERE s.{period} = o.period AND s.{recipient} = o.recipient AND s.run_id = %(run)s
"""


def _arrays(rows: Sequence[Claim] | Sequence[Outcome]) -> dict[str, list]:
    """One array per field of the rows, named after the field, for ``unnest``."""
    names = [f.name for f in fields(rows[0])]
    return {name: [getattr(row, name) for row in rows] for name in names}


class SentLog:
    """The log in ``table``: its primary key is (period, recipient), one column holds the
    SHA-256 of what was sent (``*_sha256``)."""

    def __init__(self, warehouse: Warehouse, table: Table = SENT_DIGESTS):
        self.warehouse = warehouse
        self.table = table
        period, recipient = table.primary_key
        sha = next(c for c in table.columns if c.endswith("_sha256"))
        self._columns = {
            name: sql.Identifier(column)
            for name, column in (("period", period), ("recipient", recipient), ("sha", sha))
        }

    @property
    def period_column(self) -> str:
        return self.table.primary_key[0]

    @property
    def recipient_column(self) -> str:
        return self.table.primary_key[1]

    @contextmanager
    def _execute(self, statement: str, params: Mapping[str, object]) -> Iterator[psycopg.Cursor]:
        """Runs one statement on the log in a transaction of its own, holding the same
        transactional lock any write of the table takes (``Warehouse.write``)."""
        query = sql.SQL(statement).format(
            log=self.warehouse.identifier(self.table.name), **self._columns
        )
        with self.warehouse.connection() as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                (f"{self.warehouse.schema}.{self.table.name}",),
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
        """Claims the rows to send now; returns the (period, recipient) pairs this run holds."""
        if not claims:
            return set()
        params = {"now": now, "run": run_id, "force": force, "stale": now - stale_after}
        with self._execute(CLAIM, {**_arrays(claims), **params}) as cursor:
            return {(period, recipient) for period, recipient in cursor.fetchall()}

    def record(self, outcomes: Sequence[Outcome], run_id: str, backend: str) -> int:
        """Records a batch of outcomes in one statement; returns the rows updated."""
        if not outcomes:
            return 0
        params = {"run": run_id, "backend": backend}
        with self._execute(RECORD, {**_arrays(outcomes), **params}) as cursor:
            return cursor.rowcount

    def rows(self, first: date, last: date) -> pd.DataFrame:
        """The log of periods ``first``..``last`` (inclusive)."""
        query = sql.SQL(
            "SELECT * FROM {log} WHERE {period} BETWEEN %(first)s AND %(last)s"
            " ORDER BY {period}, {recipient}"
        ).format(log=self.warehouse.identifier(self.table.name), **self._columns)
        return self.warehouse.query_frame(query, {"first": first, "last": last})

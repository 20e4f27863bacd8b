"""Send logs: which client got which week's digest (``sent_digests``) and which correction of
it (``sent_corrections``), which recipient got which day's operations alert (``sent_alerts``),
and what failed.

A log makes sending idempotent. Its key is the table's primary key: (period, recipient), or
(period, recipient, version) for corrections. Before sending, one statement *claims* the rows
to send: a row already ``sent`` is left alone unless the send is forced, and a row another
run claimed (``sending``) less than ``stale_after`` ago is left to that run. Only the claimed
rows are sent, a batch at a time: one statement marks the batch ``attempting`` just before its
messages go, one records their outcomes after, only on rows this run still holds.

So a run that dies leaves either ``sending`` rows (never tried: once stale they are claimed
again) or ``attempting`` rows: a message of them may have gone before the run died, and
nothing can tell (SMTP has no way to ask). Those are never sent again by themselves, so a
crash between sending and recording never sends anything twice; they are listed as
``unknown`` for a person to check, and a forced send sends them again. The log is never
deleted or replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta

import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.schema import SENT_DIGESTS, Table
from jibble_pipeline.warehouse.store import Warehouse

STALE_CLAIM = timedelta(minutes=30)

Key = tuple  # (period, recipient) or (period, recipient, version)


@dataclass(frozen=True)
class Claim:
    period: date  # the digest's week, the alert's day
    recipient: str
    subject: str
    sha256: str  # of the content sent
    version: int | None = None  # the correction's, in a log keyed by version


@dataclass(frozen=True)
class Outcome:
    period: date
    recipient: str
    status: str  # "sent" or "failed"
    attempts: int
    message_id: str | None
    error: str | None
    at: datetime
    version: int | None = None


# Runs in the transaction that records a batch, with the outcomes of it that were sent: what
# must be written exactly when a message is logged sent (the as-reported ledger).
OnSent = Callable[[psycopg.Cursor, Sequence[Outcome]], None]

CLAIM = """
INSERT INTO {log} AS s ({keys}, status, attempts, send_count, subject, {sha},
                        first_attempt_at, claimed_at, run_id)
SELECT {incoming_keys}, 'sending', 0, 0, subj, sha, %(now)s, %(now)s, %(run)s
FROM unnest({key_arrays}, %(subject)s::text[], %(sha256)s::text[])
     AS incoming({incoming_keys}, subj, sha)
ON CONFLICT ({keys}) DO UPDATE
SET status = 'sending', claimed_at = excluded.claimed_at, run_id = excluded.run_id,
    subject = excluded.subject, {sha} = excluded.{sha},
    first_attempt_at = coalesce(s.first_attempt_at, excluded.first_attempt_at)
WHERE (s.status NOT IN ('sent', 'attempting') OR %(force)s)
  AND (s.status NOT IN ('sending', 'attempting') OR s.claimed_at < %(stale)s)
RETURNING {keys}
"""

ATTEMPTING = """
UPDATE {log} AS s SET status = 'attempting', last_attempt_at = %(now)s
FROM unnest({key_arrays}) AS o({incoming_keys})
WHERE {match} AND s.run_id = %(run)s AND s.status = 'sending'
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
FROM unnest({key_arrays}, %(status)s::text[], %(attempts)s::int[], %(message_id)s::text[],
            %(error)s::text[], %(at)s::timestamptz[])
     AS o({incoming_keys}, status, attempts, message_id, error, at)
WHERE {match} AND s.run_id = %(run)s
"""

_KEY_TYPES = {"period": "date", "recipient": "text", "version": "int"}


def _arrays(rows: Sequence[object], names: Sequence[str]) -> dict[str, list]:
    """One array per field ``names`` of the rows, named after the field, for ``unnest``."""
    known = {f.name for f in fields(rows[0])}  # type: ignore[arg-type]
    return {name: [getattr(row, name) for row in rows] for name in names if name in known}


class SentLog:
    """The log in ``table``: its primary key is (period, recipient) or (period, recipient,
    version); one column holds the SHA-256 of what was sent (``*_sha256``)."""

    def __init__(self, warehouse: Warehouse, table: Table = SENT_DIGESTS):
        self.warehouse = warehouse
        self.table = table
        self.key_names = ["period", "recipient", "version"][: len(table.primary_key)]
        sha = next(c for c in table.columns if c.endswith("_sha256"))
        keys = [sql.Identifier(c) for c in table.primary_key]
        incoming = [sql.Identifier(f"in_{name}") for name in self.key_names]
        self._parts = {
            "keys": sql.SQL(", ").join(keys),
            "incoming_keys": sql.SQL(", ").join(incoming),
            "key_arrays": sql.SQL(", ").join(
                sql.SQL("%({})s::{}[]").format(sql.SQL(name), sql.SQL(_KEY_TYPES[name]))
                for name in self.key_names
            ),
            "match": sql.SQL(" AND ").join(
                sql.SQL("s.{} = o.{}").format(column, name)
                for column, name in zip(keys, incoming, strict=True)
            ),
            "sha": sql.Identifier(sha),
        }

    @property
    def period_column(self) -> str:
        return self.table.primary_key[0]

    @property
    def recipient_column(self) -> str:
        return self.table.primary_key[1]

    def key(self, row: object) -> Key:
        """The key in this log of a claim, an outcome or a delivery (anything with a
        ``period``, a ``recipient`` and a ``version``): (period, recipient[, version])."""
        return tuple(getattr(row, name) for name in self.key_names)

    @contextmanager
    def _execute(self, statement: str, params: Mapping[str, object]) -> Iterator[psycopg.Cursor]:
        """Runs one statement on the log in a transaction of its own, holding the same
        transactional lock any write of the table takes (``Warehouse.write``)."""
        query = sql.SQL(statement).format(
            log=self.warehouse.identifier(self.table.name), **self._parts
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
    ) -> set[Key]:
        """Claims the rows to send now; returns the keys this run holds."""
        if not claims:
            return set()
        params = {"now": now, "run": run_id, "force": force, "stale": now - stale_after}
        arrays = _arrays(claims, [*self.key_names, "subject", "sha256"])
        with self._execute(CLAIM, {**arrays, **params}) as cursor:
            return {tuple(row) for row in cursor.fetchall()}

    def attempting(self, keys: Sequence[object], run_id: str, now: datetime) -> int:
        """Marks a batch this run holds (claims, deliveries: anything with the key's fields) as
        being sent now, in one statement, just before its messages go; returns the rows
        marked."""
        if not keys:
            return 0
        params = {"now": now, "run": run_id, **_arrays(keys, self.key_names)}
        with self._execute(ATTEMPTING, params) as cursor:
            return cursor.rowcount

    def record(
        self,
        outcomes: Sequence[Outcome],
        run_id: str,
        backend: str,
        on_sent: OnSent | None = None,
    ) -> int:
        """Records a batch of outcomes in one statement (and ``on_sent`` of the sent ones, in
        the same transaction); returns the rows updated."""
        if not outcomes:
            return 0
        params = {"run": run_id, "backend": backend}
        names = [*self.key_names, "status", "attempts", "message_id", "error", "at"]
        with self._execute(RECORD, {**_arrays(outcomes, names), **params}) as cursor:
            updated = cursor.rowcount
            sent = [o for o in outcomes if o.status == "sent"]
            if on_sent is not None and sent:
                on_sent(cursor, sent)
            return updated

    def rows(self, first: date, last: date) -> pd.DataFrame:
        """The log of periods ``first``..``last`` (inclusive)."""
        key = self.table.primary_key
        query = sql.SQL(
            "SELECT * FROM {log} WHERE {period} BETWEEN %(first)s AND %(last)s ORDER BY {keys}"
        ).format(
            log=self.warehouse.identifier(self.table.name),
            period=sql.Identifier(key[0]),
            keys=sql.SQL(", ").join(map(sql.Identifier, key)),
        )
        return self.warehouse.query_frame(query, {"first": first, "last": last})

    def unknown(self, rows: pd.DataFrame, now: datetime, stale_after: timedelta = STALE_CLAIM):
        """Of ``rows`` (``rows()``), those whose delivery nobody can tell: a run began sending
        them and stopped before recording the outcome."""
        stale = rows["claimed_at"] < pd.Timestamp(now - stale_after)
        return rows[(rows["status"] == "attempting") & stale.to_numpy(dtype=bool)]

"""Reads and writes of warehouse tables, shared by the IO manager and the warehouse resource.

A write is one transaction: it takes a transactional advisory lock on its table (two runs
never write the same table at once), removes or merges the rows of its partition window and
bulk-loads the new ones with COPY. If anything fails the transaction rolls back and the
table keeps exactly what it had.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.schema import Table, WriteMode, table
from jibble_pipeline.warehouse.bulk import copy_frame
from jibble_pipeline.warehouse.connection import connect
from jibble_pipeline.warehouse.ddl import added_column_statements, create_statements

Query = str | sql.SQL | sql.Composed  # what a cursor executes
_created: set[tuple[str, str]] = set()
_created_lock = threading.Lock()
DDL_LOCK_KEY = "jibble-pipeline schema"
MERGE_CHUNK_ROWS = 10_000  # rows copied at a time by a merge (and re-sent if one moved)


@dataclass(frozen=True)
class DateWindow:
    """Partition keys ``start <= key < end`` (dates)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty date window {self.start}..{self.end}")

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days)]


@dataclass(frozen=True)
class WriteSummary:
    """What a write did, for the run's metadata."""

    table: str
    mode: WriteMode
    rows: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    replaced: int = 0
    marked_removed: int = 0

    def metadata(self) -> dict[str, int]:
        counts = {
            "replace": ("replaced",),
            "upsert": ("inserted", "updated"),
            "merge": ("inserted", "updated", "unchanged", "marked_removed"),
        }[self.mode]
        return {"dagster/row_count": self.rows, **{name: getattr(self, name) for name in counts}}


@dataclass(frozen=True)
class EntryBatch:
    """Raw entries of consecutive whole work dates (``window``), with the quarantine rows of
    the payloads fetched for them that failed validation."""

    window: DateWindow
    entries: pd.DataFrame
    quarantine: pd.DataFrame


@dataclass(frozen=True)
class RangeProgress:
    """The range a run is fetching, and the run: a landed date is recorded for resuming."""

    first: date
    last: date
    run_id: str
    fetched_at: datetime


@dataclass(frozen=True)
class LandedChunk:
    """What one committed chunk of work dates holds now (``counts``: see ``entry_counts``)."""

    window: DateWindow
    summary: WriteSummary
    counts: pd.DataFrame


class Warehouse:
    """The warehouse tables of one schema in one database."""

    def __init__(self, url: str, schema: str):
        if not schema:
            raise ValueError("the warehouse schema name must not be empty")
        self.url = url
        self.schema = schema

    def identifier(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection to a warehouse whose tables exist; commits on success."""
        self.ensure_schema()
        with connect(self.url) as conn:
            yield conn

    def ensure_schema(self) -> None:
        """Creates the schema, tables, indexes and views once per process (idempotent DDL)."""
        key = (self.url, self.schema)
        with _created_lock:
            if key in _created:
                return
            with connect(self.url) as conn:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (DDL_LOCK_KEY,))
                existing = conn.execute(
                    "SELECT table_name, column_name FROM information_schema.columns"
                    " WHERE table_schema = %s",
                    (self.schema,),
                ).fetchall()
                for statement in added_column_statements(self.schema, set(existing)):
                    conn.execute(statement)
                for statement in create_statements(self.schema):
                    conn.execute(statement)
            _created.add(key)

    # --------------------------------------------------------------------------- reads

    def query_frame(self, query: Query, params: Mapping[str, Any] | None = None):
        with self.connection() as conn, conn.cursor() as cursor:
            cursor.execute(query, params)
            columns = [d.name for d in cast("list[psycopg.Column]", cursor.description)]
            return pd.DataFrame(cursor.fetchall(), columns=columns)

    def read(
        self,
        name: str,
        window: DateWindow | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of a table (of a partition window when given), typed like the frames the
        assets write. Raw entries gone at the source are left out."""
        spec = table(name)
        columns = columns or spec.read_columns
        conditions: list[sql.Composable] = []
        params: dict[str, Any] = {}
        if window is not None:
            if spec.partition_column is None:
                raise ValueError(f"{name} has no partitions to read a window of")
            conditions.append(
                sql.SQL("{} >= %(start)s AND {} < %(end)s").format(
                    sql.Identifier(spec.partition_column), sql.Identifier(spec.partition_column)
                )
            )
            params = {"start": window.start, "end": window.end}
        if spec.write == "merge":
            conditions.append(sql.SQL("removed_at IS NULL"))
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), self.identifier(name)
        )
        if conditions:
            query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
        with self.connection() as conn, conn.cursor() as cursor:
            cursor.execute(query, params)
            return typed_frame(spec, columns, cursor.fetchall())

    # -------------------------------------------------------------------------- writes

    def write(
        self,
        name: str,
        frame: pd.DataFrame,
        window: DateWindow | None = None,
        also: Callable[[psycopg.Cursor], None] | None = None,
    ) -> WriteSummary:
        """Lands ``frame`` in a table in one transaction, as the table's write mode says;
        ``also`` writes what must commit with the rows, in the same transaction."""
        spec = table(name)
        _check_columns(spec, frame)
        if window is not None:
            _check_window(spec, frame, window)
        elif spec.partition_column is not None and spec.write == "replace":
            raise ValueError(f"{name} is partitioned: a write must name its partition window")
        with self.connection() as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema}.{spec.name}",)
            )
            if spec.write == "replace":
                summary = self._replace(cursor, spec, frame, window)
            elif spec.write == "upsert":
                summary = self._upsert(cursor, spec, frame)
            else:
                summary = self._merge(cursor, spec, frame, window)
            if also is not None:
                also(cursor)
            return summary

    # ------------------------------------------------------------------ raw entries

    def land_entries(
        self, batches: Iterable[EntryBatch], progress: RangeProgress | None = None
    ) -> LandedChunk:
        """One transaction: the batches' raw entries merged into their work dates (which must
        follow one another), the quarantine of those dates and of the entries met replaced,
        and the dates recorded as landed for ``progress``. If the batches (a stream still
        being fetched) or the write fail, nothing of it is written."""
        spec, quarantine = table("raw_time_entries"), table("quarantined_entries")
        with self.connection() as conn, conn.cursor() as cursor:
            # A chunk's commit need not wait for its WAL to reach the disk: the transaction
            # stays atomic (after a server crash the chunk and its progress row are both
            # there or both gone), and a run carries on while the WAL is flushed.
            cursor.execute("SET LOCAL synchronous_commit = off")
            for name in (spec.name, quarantine.name):
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema}.{name}",)
                )
            merge = _EntryMerge(self, cursor, spec)
            windows: list[DateWindow] = []
            rejected: list[pd.DataFrame] = []
            fetched: list[pd.Series] = []
            for batch in batches:
                if windows and batch.window.start != windows[-1].end:
                    raise ValueError("the batches of a chunk must be consecutive work dates")
                windows.append(batch.window)
                merge.add(batch.entries, batch.window)
                rejected.append(batch.quarantine)
                fetched.append(batch.entries["belongs_to_date"])
            if not windows:
                raise ValueError("a chunk needs at least one batch of work dates")
            window = DateWindow(windows[0].start, windows[-1].end)
            summary = merge.finish()
            rejects = pd.concat(rejected, ignore_index=True)
            self._replace_quarantine(cursor, window, rejects, merge.met)
            if progress is not None:
                self._record_landed(cursor, window, pd.concat(fetched), rejects, progress)
            counts = self._entry_counts(cursor, window)
        return LandedChunk(window, summary, counts)

    def entry_counts(self, window: DateWindow) -> pd.DataFrame:
        """Per work date of ``window``: ``stored`` entries (still at the source), ``removed``
        ones (gone at the source) and ``quarantined`` payloads."""
        with self.connection() as conn, conn.cursor() as cursor:
            return self._entry_counts(cursor, window)

    def landed_dates(self, first: date, last: date, since: datetime) -> pd.DataFrame:
        """Work dates of the range [first, last] that an unfinished fetch of the same range
        landed at or after ``since``: ``work_date``, ``entries``, ``fetched_at``, ``run_id``."""
        query = sql.SQL(
            "SELECT work_date, entries, quarantined, fetched_at, run_id FROM {}"
            " WHERE range_first = %(first)s AND range_last = %(last)s"
            " AND fetched_at >= %(since)s ORDER BY work_date"
        ).format(self.identifier("ingest_checkpoints"))
        return self.query_frame(query, {"first": first, "last": last, "since": since})

    def forget_landed(self, first: date, last: date, older_than: datetime) -> None:
        """The range [first, last] is complete: its progress rows go, with any older than
        ``older_than`` (of ranges that were never finished)."""
        with self.connection() as conn:
            conn.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE (range_first = %(first)s AND range_last = %(last)s)"
                    " OR fetched_at < %(older)s"
                ).format(self.identifier("ingest_checkpoints")),
                {"first": first, "last": last, "older": older_than},
            )

    def _replace_quarantine(
        self, cursor: psycopg.Cursor, window: DateWindow, rejects: pd.DataFrame, met: set[str]
    ) -> None:
        """The quarantine of the window's dates is replaced; a row of an entry met here (now
        valid, or rejected again) is removed wherever it was filed. One row per entry."""
        spec = table("quarantined_entries")
        target = self.identifier(spec.name)
        cursor.execute(
            sql.SQL("DELETE FROM {} WHERE {}").format(target, self._window_condition(spec, window))
        )
        rejects = rejects.drop_duplicates("quarantine_key", keep="last")
        keys = met | set(rejects["quarantine_key"])
        cursor.execute(
            sql.SQL("SELECT quarantine_key FROM {} WHERE quarantine_key IS NOT NULL").format(target)
        )
        elsewhere = sorted(keys.intersection(key for (key,) in cursor))
        if elsewhere:
            cursor.execute(
                sql.SQL("DELETE FROM {} WHERE quarantine_key = ANY(%s)").format(target),
                (elsewhere,),
            )
        self._copy(cursor, target, spec, rejects)

    def _record_landed(
        self,
        cursor: psycopg.Cursor,
        window: DateWindow,
        fetched: pd.Series,
        rejects: pd.DataFrame,
        progress: RangeProgress,
    ) -> None:
        days = window.dates()
        entries = fetched.value_counts()
        quarantined = rejects["partition_date"].value_counts()
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} (range_first, range_last, work_date, entries, quarantined,"
                " fetched_at, run_id)"
                " SELECT %(first)s, %(last)s, day, entries, quarantined, %(at)s, %(run)s"
                " FROM unnest(%(days)s::date[], %(entries)s::int[], %(quarantined)s::int[])"
                "   AS landed(day, entries, quarantined)"
                " ON CONFLICT (range_first, range_last, work_date) DO UPDATE SET"
                " entries = excluded.entries, quarantined = excluded.quarantined,"
                " fetched_at = excluded.fetched_at, run_id = excluded.run_id"
            ).format(self.identifier("ingest_checkpoints")),
            {
                "first": progress.first,
                "last": progress.last,
                "at": progress.fetched_at,
                "run": progress.run_id,
                "days": days,
                "entries": [int(entries.get(day, 0)) for day in days],
                "quarantined": [int(quarantined.get(day, 0)) for day in days],
            },
        )

    def _entry_counts(self, cursor: psycopg.Cursor, window: DateWindow) -> pd.DataFrame:
        cursor.execute(
            sql.SQL(
                "SELECT day::date AS work_date, coalesce(r.stored, 0) AS stored,"
                " coalesce(r.removed, 0) AS removed, coalesce(q.quarantined, 0) AS quarantined"
                " FROM generate_series(%(start)s::date, %(end)s::date - 1, interval '1 day')"
                "   AS day"
                " LEFT JOIN (SELECT belongs_to_date, count(*) FILTER (WHERE removed_at IS NULL)"
                "   AS stored, count(*) FILTER (WHERE removed_at IS NOT NULL) AS removed"
                "   FROM {raw} WHERE belongs_to_date >= %(start)s AND belongs_to_date < %(end)s"
                "   GROUP BY belongs_to_date) r ON r.belongs_to_date = day::date"
                " LEFT JOIN (SELECT partition_date, count(*) AS quarantined FROM {quarantine}"
                "   WHERE partition_date >= %(start)s AND partition_date < %(end)s"
                "   GROUP BY partition_date) q ON q.partition_date = day::date"
                " ORDER BY 1"
            ).format(
                raw=self.identifier("raw_time_entries"),
                quarantine=self.identifier("quarantined_entries"),
            ),
            {"start": window.start, "end": window.end},
        )
        columns = ["work_date", "stored", "removed", "quarantined"]
        return pd.DataFrame(cursor.fetchall(), columns=columns)

    def _window_condition(self, spec: Table, window: DateWindow | None) -> sql.Composable:
        if window is None:
            return sql.SQL("TRUE")
        column = sql.Identifier(cast(str, spec.partition_column))  # a window: partitioned
        return sql.SQL("{} >= {} AND {} < {}").format(
            column, sql.Literal(window.start), column, sql.Literal(window.end)
        )

    def _copy(
        self, cursor: psycopg.Cursor, target: sql.Composable, spec: Table, frame: pd.DataFrame
    ) -> int:
        return copy_frame(cursor, target, frame, spec.column_names, spec.column_types)

    def _replace(
        self, cursor: psycopg.Cursor, spec: Table, frame: pd.DataFrame, window: DateWindow | None
    ) -> WriteSummary:
        cursor.execute(
            sql.SQL("DELETE FROM {} WHERE {}").format(
                self.identifier(spec.name), self._window_condition(spec, window)
            )
        )
        deleted = cursor.rowcount
        self._copy(cursor, self.identifier(spec.name), spec, frame)
        return WriteSummary(spec.name, spec.write, len(frame), replaced=deleted)

    def _staging_table(self, cursor: psycopg.Cursor, spec: Table) -> sql.Identifier:
        """An empty temporary table shaped like ``spec``'s, dropped at commit."""
        staging = sql.Identifier(f"incoming_{spec.name}")
        cursor.execute(
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS TABLE {} LIMIT 0").format(
                staging, self.identifier(spec.name)
            )
        )
        return staging

    def _upsert(self, cursor: psycopg.Cursor, spec: Table, frame: pd.DataFrame) -> WriteSummary:
        staging = self._staging_table(cursor, spec)
        self._copy(cursor, staging, spec, frame)
        columns = sql.SQL(", ").join(map(sql.Identifier, spec.column_names))
        updates = sql.SQL(", ").join(
            sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c))
            for c in spec.column_names
            if c not in spec.primary_key
        )
        cursor.execute(
            sql.SQL(
                "INSERT INTO {target} ({columns}) SELECT {columns} FROM {staging}"
                " ON CONFLICT ({key}) DO UPDATE SET {updates} RETURNING (xmax = 0)"
            ).format(
                target=self.identifier(spec.name),
                columns=columns,
                staging=staging,
                key=sql.SQL(", ").join(map(sql.Identifier, spec.primary_key)),
                updates=updates,
            )
        )
        inserted = sum(1 for (new,) in cursor.fetchall() if new)
        return WriteSummary(
            spec.name, spec.write, len(frame), inserted=inserted, updated=len(frame) - inserted
        )

    def _merge(
        self, cursor: psycopg.Cursor, spec: Table, frame: pd.DataFrame, window: DateWindow | None
    ) -> WriteSummary:
        merge = _EntryMerge(self, cursor, spec)
        merge.add(frame, window)
        return merge.finish()

    def _window_ids(
        self, cursor: psycopg.Cursor, spec: Table, window: DateWindow | None
    ) -> set[str]:
        """Ids stored in the window (marked removed or not)."""
        if window is None:
            return set()
        (key,) = spec.primary_key
        cursor.execute(
            sql.SQL("SELECT {} FROM {} WHERE {}").format(
                sql.Identifier(key),
                self.identifier(spec.name),
                self._window_condition(spec, window),
            )
        )
        return {entry_id for (entry_id,) in cursor}

    def _copy_new(
        self, cursor: psycopg.Cursor, spec: Table, staging: sql.Identifier, chunk: pd.DataFrame
    ) -> tuple[int, int]:
        """Copies entries not stored in the window straight into the table. One stored
        under another work date (it moved), or met earlier in the stream, makes the COPY
        fail; the chunk is then split by a lookup and the stored ones are staged.
        Returns the rows copied and staged."""
        (key,) = spec.primary_key
        target = self.identifier(spec.name)
        try:
            with cursor.connection.transaction():
                return self._copy(cursor, target, spec, chunk), 0
        except psycopg.errors.UniqueViolation:
            pass
        cursor.execute(
            sql.SQL("SELECT {key} FROM {target} WHERE {key} = ANY(%s)").format(
                key=sql.Identifier(key), target=target
            ),
            (list(chunk[key]),),
        )
        stored = chunk[key].isin([i for (i,) in cursor.fetchall()])
        staged = self._copy(cursor, staging, spec, chunk[stored])
        return self._copy(cursor, target, spec, chunk[~stored]), staged


class _EntryMerge:
    """Raw entries merged into their table inside one transaction, frame by frame.

    Newest version wins (by ``updated_at``); an unchanged entry is left as it is (its
    ``fetched_at`` too); entries of the windows merged that the source no longer returns are
    kept and marked ``removed_at``. The ids stored in each window are read once, when its
    first frame arrives. Entries not among them (all of them in a backfill) are copied
    straight into the table, as a bare COPY would; only stored ones go through a staging
    table and one set-based merge at the end."""

    def __init__(self, warehouse: Warehouse, cursor: psycopg.Cursor, spec: Table):
        self.warehouse, self.cursor, self.spec = warehouse, cursor, spec
        self.staging = warehouse._staging_table(cursor, spec)
        self.unseen: set[str] = set()  # stored in the windows merged, not met yet
        self.met: set[str] = set()
        self.windows: set[DateWindow | None] = set()
        self.rows = self.copied = 0
        self.repeats = False  # may the staging table hold an entry twice?

    def add(self, whole: pd.DataFrame, window: DateWindow | None) -> None:
        spec, cursor = self.spec, self.cursor
        (key,) = spec.primary_key
        _check_columns(spec, whole)
        if window is not None:
            _check_window(spec, whole, window)
        if window not in self.windows:
            self.windows.add(window)
            self.unseen |= self.warehouse._window_ids(cursor, spec, window) - self.met
        for start in range(0, len(whole), MERGE_CHUNK_ROWS):
            chunk = whole.iloc[start : start + MERGE_CHUNK_ROWS]
            self.rows += len(chunk)
            ids = chunk[key]
            # Stored and not met yet in this stream; an entry met again (or met twice in this
            # chunk) conflicts with its first copy and is staged by _copy_new.
            unseen = self.unseen
            stored = np.fromiter((i in unseen for i in ids), bool, len(ids))
            twice = ids.duplicated(keep=False).to_numpy()
            self.repeats |= bool(twice.any())
            unseen.difference_update(ids)
            self.met.update(ids)
            self.warehouse._copy(cursor, self.staging, spec, chunk[stored | twice])
            new, staged = self.warehouse._copy_new(
                cursor, spec, self.staging, chunk[~(stored | twice)]
            )
            self.copied += new
            self.repeats |= staged > 0

    def finish(self) -> WriteSummary:
        spec, cursor, staging = self.spec, self.cursor, self.staging
        (key,) = spec.primary_key
        target = self.warehouse.identifier(spec.name)
        columns = sql.SQL(", ").join(map(sql.Identifier, spec.column_names))
        updates = sql.SQL(", ").join(
            sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c))
            for c in spec.column_names
            if c not in spec.primary_key and c != "removed_at"
        )
        # An entry met twice in one stream (a page boundary moved under the paging) is
        # merged once, newest version first. Sorting the whole staging table for that costs
        # more than the merge itself, so it is done only when a repeat is possible.
        incoming = sql.SQL("SELECT {columns} FROM {staging}").format(
            columns=columns, staging=staging
        )
        if self.repeats:
            incoming = sql.SQL(
                "SELECT DISTINCT ON ({key}) {columns} FROM {staging}"
                " ORDER BY {key}, updated_at DESC NULLS LAST"
            ).format(key=sql.Identifier(key), columns=columns, staging=staging)
        cursor.execute(
            sql.SQL(
                "INSERT INTO {target} AS stored ({columns}) {incoming}"
                " ON CONFLICT ({key}) DO UPDATE SET {updates}, removed_at = NULL"
                " WHERE (stored.updated_at IS NULL OR excluded.updated_at IS NULL"
                "        OR excluded.updated_at >= stored.updated_at)"
                "   AND (stored.raw_payload IS DISTINCT FROM excluded.raw_payload"
                "        OR stored.belongs_to_date <> excluded.belongs_to_date"
                "        OR stored.removed_at IS NOT NULL)"
                " RETURNING (xmax = 0)"
            ).format(
                target=target,
                columns=columns,
                incoming=incoming,
                key=sql.Identifier(key),
                updates=updates,
            )
        )
        outcomes = [new for (new,) in cursor.fetchall()]
        inserted = self.copied + sum(outcomes)
        updated = len(outcomes) - sum(outcomes)
        marked = 0
        if self.unseen:
            cursor.execute(
                sql.SQL(
                    "UPDATE {target} SET removed_at = %(now)s"
                    " WHERE {key} = ANY(%(ids)s) AND removed_at IS NULL"
                ).format(target=target, key=sql.Identifier(key)),
                {"now": datetime.now(UTC), "ids": sorted(self.unseen)},
            )
            marked = cursor.rowcount
        return WriteSummary(
            spec.name,
            spec.write,
            self.rows,
            inserted=inserted,
            updated=updated,
            unchanged=self.rows - inserted - updated,
            marked_removed=marked,
        )


def _check_columns(spec: Table, frame: pd.DataFrame) -> None:
    missing = [c for c in spec.column_names if c not in frame.columns]
    extra = [c for c in frame.columns if c not in spec.columns]
    if missing or extra:
        raise ValueError(
            f"the frame for {spec.name} does not match the table: "
            f"missing columns {missing}, unknown columns {extra}"
        )


def _check_window(spec: Table, frame: pd.DataFrame, window: DateWindow) -> None:
    """Rows outside the window would survive the next replace of their own window twice."""
    if spec.partition_column is None or frame.empty:
        return
    keys = pd.Series(frame[spec.partition_column])
    outside = keys.isna() | (keys < window.start) | (keys >= window.end)
    if outside.any():
        raise ValueError(
            f"{int(outside.sum())} rows for {spec.name} have a {spec.partition_column} outside "
            f"the partitions being written ({window.start}..{window.end}), "
            f"e.g. {keys[outside].iloc[0]!r}"
        )


def typed_frame(spec: Table, columns: list[str], rows: list[tuple]) -> pd.DataFrame:
    """Rows read from Postgres as a DataFrame with the dtypes the assets produce."""
    frame = pd.DataFrame(rows, columns=columns)
    for name in columns:
        kind = spec.columns[name].split()[0]
        nullable = "NOT NULL" not in spec.columns[name]
        if kind == "timestamptz":
            frame[name] = pd.to_datetime(frame[name], utc=True)
        elif kind == "timestamp":
            frame[name] = pd.to_datetime(frame[name])
        elif kind in ("integer", "bigint"):
            frame[name] = frame[name].astype("Int64" if nullable else "int64")
        elif kind == "double":
            frame[name] = frame[name].astype("float64")
        elif kind == "boolean" and not nullable:
            frame[name] = frame[name].astype(bool)
        else:
            frame[name] = frame[name].astype(object)
    return frame

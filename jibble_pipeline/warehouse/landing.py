"""Raw entries landed chunk by chunk, with the checkpoints a backfill resumes from.

A chunk is one transaction: its work dates' raw entries merged (``merge``), their
quarantine replaced and, for a range being fetched, the dates recorded as landed
(``ingest_checkpoints``). A crash keeps whole chunks and their checkpoints, nothing between.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.schema import table
from jibble_pipeline.warehouse import versions
from jibble_pipeline.warehouse.date_window import DateWindow
from jibble_pipeline.warehouse.merge import EntryMerge
from jibble_pipeline.warehouse.statements import (
    WriteSummary,
    copy_rows,
    lock_table,
    window_condition,
)
from jibble_pipeline.warehouse.store import Warehouse


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


def land_entries(
    warehouse: Warehouse, batches: Iterable[EntryBatch], progress: RangeProgress | None = None
) -> LandedChunk:
    """One transaction: the batches' raw entries merged into their work dates (which must
    follow one another), the quarantine of those dates and of the entries met replaced,
    and the dates recorded as landed for ``progress``. If the batches (a stream still
    being fetched) or the write fail, nothing of it is written."""
    schema = warehouse.schema
    spec, quarantine = table("raw_time_entries"), table("quarantined_entries")
    with warehouse.connection() as conn, conn.cursor() as cursor:
        # A chunk's commit need not wait for its WAL to reach the disk: the transaction
        # stays atomic (after a server crash the chunk and its progress row are both
        # there or both gone), and a run carries on while the WAL is flushed.
        cursor.execute("SET LOCAL synchronous_commit = off")
        for name in (spec.name, quarantine.name):
            lock_table(cursor, schema, name)
        merge = EntryMerge(cursor, schema, spec)
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
        _replace_quarantine(cursor, schema, window, rejects, merge.met)
        if progress is not None:
            _record_landed(cursor, schema, window, pd.concat(fetched), rejects, progress)
        versions.bump(cursor, schema, spec.name, window.dates())
        counts = _entry_counts(cursor, schema, window)
    return LandedChunk(window, summary, counts)


def entry_counts(warehouse: Warehouse, window: DateWindow) -> pd.DataFrame:
    """Per work date of ``window``: ``stored`` entries (still at the source), ``removed``
    ones (gone at the source) and ``quarantined`` payloads."""
    with warehouse.connection() as conn, conn.cursor() as cursor:
        return _entry_counts(cursor, warehouse.schema, window)


def landed_dates(warehouse: Warehouse, first: date, last: date, since: datetime) -> pd.DataFrame:
    """Work dates of the range [first, last] that an unfinished fetch of the same range
    landed at or after ``since``: ``work_date``, ``entries``, ``fetched_at``, ``run_id``."""
    query = sql.SQL(
        "SELECT work_date, entries, quarantined, fetched_at, run_id FROM {}"
        " WHERE range_first = %(first)s AND range_last = %(last)s"
        " AND fetched_at >= %(since)s ORDER BY work_date"
    ).format(warehouse.identifier("ingest_checkpoints"))
    return warehouse.query_frame(query, {"first": first, "last": last, "since": since})


def forget_landed(warehouse: Warehouse, first: date, last: date, older_than: datetime) -> None:
    """The range [first, last] is complete: its progress rows go, with any older than
    ``older_than`` (of ranges that were never finished)."""
    with warehouse.connection() as conn:
        conn.execute(
            sql.SQL(
                "DELETE FROM {} WHERE (range_first = %(first)s AND range_last = %(last)s)"
                " OR fetched_at < %(older)s"
            ).format(warehouse.identifier("ingest_checkpoints")),
            {"first": first, "last": last, "older": older_than},
        )


def _replace_quarantine(
    cursor: psycopg.Cursor,
    schema: str,
    window: DateWindow,
    rejects: pd.DataFrame,
    met: set[str],
) -> None:
    """The quarantine of the window's dates is replaced; a row of an entry met here (now
    valid, or rejected again) is removed wherever it was filed. One row per entry."""
    spec = table("quarantined_entries")
    target = sql.Identifier(schema, spec.name)
    cursor.execute(
        sql.SQL("DELETE FROM {} WHERE {}").format(target, window_condition(spec, window))
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
    copy_rows(cursor, target, spec, rejects)


def _record_landed(
    cursor: psycopg.Cursor,
    schema: str,
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
        ).format(sql.Identifier(schema, "ingest_checkpoints")),
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


def _entry_counts(cursor: psycopg.Cursor, schema: str, window: DateWindow) -> pd.DataFrame:
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
            raw=sql.Identifier(schema, "raw_time_entries"),
            quarantine=sql.Identifier(schema, "quarantined_entries"),
        ),
        {"start": window.start, "end": window.end},
    )
    columns = ["work_date", "stored", "removed", "quarantined"]
    return pd.DataFrame(cursor.fetchall(), columns=columns)

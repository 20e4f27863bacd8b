"""Which version of its inputs each derived partition was computed from.

A run that derives a week reads its days' sessions, and another run may rewrite those sessions
while it computes: its output is then older than its inputs, although Dagster saw it
materialise after them. So every write of a partitioned table gives the partitions it wrote a
new version (the writing transaction's id), in the same transaction as the rows. A step reads
the versions of its input partitions *before* the rows, and its output records them
(``derived_from``), again in the same transaction as its rows. A derived partition whose
recorded version of an input partition differs from that partition's version now read inputs
that have changed since: it is stale, whatever its age and however the runs overlapped.

Reading the versions before the rows errs one way only: rows newer than the versions read
make a partition look stale when it is not, and it is derived once more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.warehouse.date_window import DateWindow
from jibble_pipeline.warehouse.store import Warehouse

# A frame's ``attrs`` key: {input table: {partition date: version or None}} of what it read.
READ_VERSIONS = "read_versions"
Versions = dict[str, dict[date, int | None]]


def read_versions(warehouse: Warehouse, name: str, window: DateWindow) -> dict[date, int | None]:
    """The version of each partition of ``name`` in ``window`` (None: never written)."""
    query = sql.SQL(
        "SELECT partition_date, version FROM {} WHERE table_name = %s"
        " AND partition_date >= %s AND partition_date < %s"
    ).format(warehouse.identifier("partition_versions"))
    with warehouse.connection() as conn:
        found = dict(conn.execute(query, (name, window.start, window.end)).fetchall())
    return {day: found.get(day) for day in window.dates()}


def carry_versions(output: pd.DataFrame, *inputs: pd.DataFrame) -> pd.DataFrame:
    """Marks ``output`` as derived from the input partitions ``inputs`` were read from."""
    versions: Versions = {}
    for frame in inputs:
        versions.update(frame.attrs.get(READ_VERSIONS, {}))
    output.attrs[READ_VERSIONS] = versions
    return output


def bump(cursor: psycopg.Cursor, schema: str, name: str, partitions: Iterable[date]) -> None:
    """Gives the partitions of ``name`` just written a new version (this transaction's id)."""
    cursor.execute(
        sql.SQL(
            "INSERT INTO {} (table_name, partition_date, version, changed_at)"
            " SELECT %s, day, pg_current_xact_id()::text::bigint, now()"
            " FROM unnest(%s::date[]) AS day"
            " ON CONFLICT (table_name, partition_date) DO UPDATE"
            " SET version = EXCLUDED.version, changed_at = EXCLUDED.changed_at"
        ).format(sql.Identifier(schema, "partition_versions")),
        (name, sorted(set(partitions))),
    )


def record(
    cursor: psycopg.Cursor,
    schema: str,
    name: str,
    windows: Mapping[date, DateWindow],
    versions: Versions,
) -> None:
    """Records, for each partition of ``name`` written (its key -> the dates it covers), the
    version of every input partition among those dates that it was derived from."""
    rows = [
        (key, table_name, day, version)
        for key, window in windows.items()
        for table_name, read in versions.items()
        for day, version in read.items()
        if window.start <= day < window.end
    ]
    target = sql.Identifier(schema, "derived_from")
    cursor.execute(
        sql.SQL("DELETE FROM {} WHERE table_name = %s AND partition_date = ANY(%s)").format(target),
        (name, list(windows)),
    )
    if not rows:
        return
    keys, tables, days, numbers = (list(column) for column in zip(*rows, strict=True))
    cursor.execute(
        sql.SQL(
            "INSERT INTO {} (table_name, partition_date, input_table, input_date, version,"
            " derived_at) SELECT %s, k, t, d, v, now()"
            " FROM unnest(%s::date[], %s::text[], %s::date[], %s::bigint[]) AS r(k, t, d, v)"
        ).format(target),
        (name, keys, tables, days, numbers),
    )


def stale_partitions(
    warehouse: Warehouse, name: str, quiet: timedelta, since: date | None = None
) -> list[date]:
    """Partitions of ``name`` derived from input partitions that have changed since, once
    those inputs have been left alone for ``quiet`` (a burst of rewrites settles first)."""
    query = sql.SQL(
        "SELECT f.partition_date FROM {derived} f"
        " LEFT JOIN {versions} v"
        " ON v.table_name = f.input_table AND v.partition_date = f.input_date"
        " WHERE f.table_name = %(name)s AND f.partition_date >= %(since)s"
        " GROUP BY f.partition_date"
        " HAVING bool_or(v.version IS DISTINCT FROM f.version)"
        " AND max(v.changed_at) < now() - %(quiet)s"
        " ORDER BY f.partition_date"
    ).format(
        derived=warehouse.identifier("derived_from"),
        versions=warehouse.identifier("partition_versions"),
    )
    params: dict[str, Any] = {"name": name, "since": since or date.min, "quiet": quiet}
    with warehouse.connection() as conn:
        return [row[0] for row in conn.execute(query, params).fetchall()]

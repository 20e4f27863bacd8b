"""Reads and writes of warehouse tables, shared by the IO manager and the warehouse resource.

A write is one transaction: it takes a transactional advisory lock on its table (two runs
never write the same table at once), removes or merges the rows of its partition window and
bulk-loads the new ones with COPY (``statements``, ``merge``). If anything fails the
transaction rolls back and the table keeps exactly what it had. Raw entries fetched in
chunks land through ``landing``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.schema import Table, table
from jibble_pipeline.warehouse.connection import connect
from jibble_pipeline.warehouse.date_window import DateWindow
from jibble_pipeline.warehouse.ddl import added_column_statements, create_statements
from jibble_pipeline.warehouse.merge import EntryMerge
from jibble_pipeline.warehouse.statements import (
    WriteSummary,
    check_columns,
    check_window,
    lock_table,
    replace_rows,
    upsert_rows,
)

Query = str | sql.SQL | sql.Composed  # what a cursor executes
_created: set[tuple[str, str]] = set()
_created_lock = threading.Lock()
DDL_LOCK_KEY = "jibble-pipeline schema"


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
        check_columns(spec, frame)
        if window is not None:
            check_window(spec, frame, window)
        elif spec.partition_column is not None and spec.write == "replace":
            raise ValueError(f"{name} is partitioned: a write must name its partition window")
        with self.connection() as conn, conn.cursor() as cursor:
            lock_table(cursor, self.schema, spec.name)
            if spec.write == "replace":
                summary = replace_rows(cursor, self.schema, spec, frame, window)
            elif spec.write == "upsert":
                summary = upsert_rows(cursor, self.schema, spec, frame)
            else:
                merge = EntryMerge(cursor, self.schema, spec)
                merge.add(frame, window)
                summary = merge.finish()
            if also is not None:
                also(cursor)
            return summary


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

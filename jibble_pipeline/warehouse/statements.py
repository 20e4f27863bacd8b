"""The statements of a warehouse write, as functions of a cursor inside its transaction.

Rows travel by COPY; merges and deletes are set-based statements over whole windows or id
lists. Nothing here commits: the caller's transaction decides what lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.schema import Table, WriteMode
from jibble_pipeline.warehouse.bulk import copy_frame
from jibble_pipeline.warehouse.date_window import DateWindow


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


def lock_table(cursor: psycopg.Cursor, schema: str, name: str) -> None:
    """Holds the table's transactional advisory lock: two runs never write it at once."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{schema}.{name}",))


def window_condition(spec: Table, window: DateWindow | None) -> sql.Composable:
    """The rows of ``window`` (every row when it is None)."""
    if window is None:
        return sql.SQL("TRUE")
    column = sql.Identifier(cast(str, spec.partition_column))  # a window: partitioned
    return sql.SQL("{} >= {} AND {} < {}").format(
        column, sql.Literal(window.start), column, sql.Literal(window.end)
    )


def copy_rows(
    cursor: psycopg.Cursor, target: sql.Composable, spec: Table, frame: pd.DataFrame
) -> int:
    return copy_frame(cursor, target, frame, spec.column_names, spec.column_types)


def staging_table(cursor: psycopg.Cursor, schema: str, spec: Table) -> sql.Identifier:
    """An empty temporary table shaped like ``spec``'s, dropped at commit."""
    staging = sql.Identifier(f"incoming_{spec.name}")
    cursor.execute(
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS TABLE {} LIMIT 0").format(
            staging, sql.Identifier(schema, spec.name)
        )
    )
    return staging


def replace_rows(
    cursor: psycopg.Cursor,
    schema: str,
    spec: Table,
    frame: pd.DataFrame,
    window: DateWindow | None,
) -> WriteSummary:
    """The window's rows (the whole table's without one) deleted, ``frame`` copied in."""
    target = sql.Identifier(schema, spec.name)
    cursor.execute(
        sql.SQL("DELETE FROM {} WHERE {}").format(target, window_condition(spec, window))
    )
    deleted = cursor.rowcount
    copy_rows(cursor, target, spec, frame)
    return WriteSummary(spec.name, spec.write, len(frame), replaced=deleted)


def upsert_rows(
    cursor: psycopg.Cursor, schema: str, spec: Table, frame: pd.DataFrame
) -> WriteSummary:
    """``frame`` staged, then inserted or updated by primary key in one statement."""
    staging = staging_table(cursor, schema, spec)
    copy_rows(cursor, staging, spec, frame)
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
            target=sql.Identifier(schema, spec.name),
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


def window_ids(
    cursor: psycopg.Cursor, schema: str, spec: Table, window: DateWindow | None
) -> set[str]:
    """Ids stored in the window (marked removed or not)."""
    if window is None:
        return set()
    (key,) = spec.primary_key
    cursor.execute(
        sql.SQL("SELECT {} FROM {} WHERE {}").format(
            sql.Identifier(key),
            sql.Identifier(schema, spec.name),
            window_condition(spec, window),
        )
    )
    return {entry_id for (entry_id,) in cursor}


def copy_new(
    cursor: psycopg.Cursor,
    schema: str,
    spec: Table,
    staging: sql.Identifier,
    chunk: pd.DataFrame,
) -> tuple[int, int]:
    """Copies entries not stored in the window straight into the table. One stored
    under another work date (it moved), or met earlier in the stream, makes the COPY
    fail; the chunk is then split by a lookup and the stored ones are staged.
    Returns the rows copied and staged."""
    (key,) = spec.primary_key
    target = sql.Identifier(schema, spec.name)
    try:
        with cursor.connection.transaction():
            return copy_rows(cursor, target, spec, chunk), 0
    except psycopg.errors.UniqueViolation:
        pass
    cursor.execute(
        sql.SQL("SELECT {key} FROM {target} WHERE {key} = ANY(%s)").format(
            key=sql.Identifier(key), target=target
        ),
        (list(chunk[key]),),
    )
    stored = chunk[key].isin([i for (i,) in cursor.fetchall()])
    staged = copy_rows(cursor, staging, spec, chunk[stored])
    return copy_rows(cursor, target, spec, chunk[~stored]), staged


def check_columns(spec: Table, frame: pd.DataFrame) -> None:
    missing = [c for c in spec.column_names if c not in frame.columns]
    extra = [c for c in frame.columns if c not in spec.columns]
    if missing or extra:
        raise ValueError(
            f"the frame for {spec.name} does not match the table: "
            f"missing columns {missing}, unknown columns {extra}"
        )


def check_window(spec: Table, frame: pd.DataFrame, window: DateWindow) -> None:
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

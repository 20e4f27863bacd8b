"""Raw entries merged into their table inside the caller's transaction, frame by frame."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from jibble_pipeline.schema import Table
from jibble_pipeline.warehouse.date_window import DateWindow
from jibble_pipeline.warehouse.statements import (
    WriteSummary,
    check_columns,
    check_window,
    copy_new,
    copy_rows,
    staging_table,
    window_ids,
)

MERGE_CHUNK_ROWS = 10_000  # rows copied at a time by a merge (and re-sent if one moved)


class EntryMerge:
    """Raw entries merged into their table inside one transaction, frame by frame.

    Newest version wins (by ``updated_at``); an unchanged entry is left as it is (its
    ``fetched_at`` too); entries of the windows merged that the source no longer returns are
    kept and marked ``removed_at``. The ids stored in each window are read once, when its
    first frame arrives. Entries not among them (all of them in a backfill) are copied
    straight into the table, as a bare COPY would; only stored ones go through a staging
    table and one set-based merge at the end."""

    def __init__(self, cursor: psycopg.Cursor, schema: str, spec: Table):
        self.cursor, self.schema, self.spec = cursor, schema, spec
        self.staging = staging_table(cursor, schema, spec)
        self.unseen: set[str] = set()  # stored in the windows merged, not met yet
        self.met: set[str] = set()
        self.windows: set[DateWindow | None] = set()
        self.rows = self.copied = 0
        self.repeats = False  # may the staging table hold an entry twice?

    def add(self, whole: pd.DataFrame, window: DateWindow | None) -> None:
        spec, cursor = self.spec, self.cursor
        (key,) = spec.primary_key
        check_columns(spec, whole)
        if window is not None:
            check_window(spec, whole, window)
        if window not in self.windows:
            self.windows.add(window)
            self.unseen |= window_ids(cursor, self.schema, spec, window) - self.met
        for start in range(0, len(whole), MERGE_CHUNK_ROWS):
            chunk = whole.iloc[start : start + MERGE_CHUNK_ROWS]
            self.rows += len(chunk)
            ids = chunk[key]
            # Stored and not met yet in this stream; an entry met again (or met twice in this
            # chunk) conflicts with its first copy and is staged by copy_new.
            unseen = self.unseen
            stored = np.fromiter((i in unseen for i in ids), bool, len(ids))
            twice = ids.duplicated(keep=False).to_numpy()
            self.repeats |= bool(twice.any())
            unseen.difference_update(ids)
            self.met.update(ids)
            copy_rows(cursor, self.staging, spec, chunk[stored | twice])
            new, staged = copy_new(
                cursor, self.schema, spec, self.staging, chunk[~(stored | twice)]
            )
            self.copied += new
            self.repeats |= staged > 0

    def finish(self) -> WriteSummary:
        spec, cursor, staging = self.spec, self.cursor, self.staging
        (key,) = spec.primary_key
        target = sql.Identifier(self.schema, spec.name)
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

"""What Jibble answers for some work dates now, against what the warehouse holds of them.

A tenant that cannot filter on ``updatedAt`` cannot say what changed since an instant, so
late edits are found by reading recent work dates again and comparing them here: in one
COPY and one set-based statement, whatever the number of entries. An entry differs when it
is new, its payload changed (``jsonb`` equality: key order and spacing do not count), it
moved to another work date, or it is held and no longer returned. A payload held in
quarantine as it is now does not differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from psycopg import sql

from jibble_pipeline.jibble.frames import payload_json
from jibble_pipeline.warehouse.bulk import copy_frame
from jibble_pipeline.warehouse.store import Warehouse

DIFFERENCES = """
WITH held AS (
    SELECT entry_id, belongs_to_date, raw_payload FROM {raw}
    WHERE removed_at IS NULL AND belongs_to_date = ANY(%(days)s)
)
SELECT f.belongs_to_date AS work_date, f.position, r.belongs_to_date AS held_on
FROM fetched f
LEFT JOIN {raw} r ON r.entry_id = f.entry_id AND r.removed_at IS NULL
WHERE (r.entry_id IS NULL OR r.raw_payload <> f.payload OR r.belongs_to_date <> f.belongs_to_date)
  AND NOT EXISTS (
      SELECT 1 FROM {quarantine} q
      WHERE q.partition_date = f.belongs_to_date AND q.raw_payload = f.payload
  )
UNION ALL
SELECT h.belongs_to_date, NULL, NULL FROM held h
WHERE NOT EXISTS (SELECT 1 FROM fetched f WHERE f.entry_id = h.entry_id)
"""


@dataclass(frozen=True)
class Drift:
    """``dates``: the work dates whose entries differ (an entry's new date and the date it
    was held under). ``entries``: the payloads returned now that differ from those held."""

    dates: set[date]
    entries: list[dict[str, Any]]


def drift(warehouse: Warehouse, fetched: Mapping[date, list[Any]]) -> Drift:
    """Compares every entry Jibble returned for each work date of ``fetched`` with the
    warehouse (module docstring)."""
    if not fetched:
        return Drift(set(), [])
    payloads = [
        (day, row if isinstance(row, dict) else {"value": row})
        for day, rows in fetched.items()
        for row in rows
    ]
    frame = pd.DataFrame(
        {
            "position": range(len(payloads)),
            "entry_id": [_entry_id(payload) for _, payload in payloads],
            "belongs_to_date": [day for day, _ in payloads],
            "payload": [payload_json(payload) for _, payload in payloads],
        }
    )
    query = sql.SQL(DIFFERENCES).format(
        raw=warehouse.identifier("raw_time_entries"),
        quarantine=warehouse.identifier("quarantined_entries"),
    )
    with warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE fetched (position integer, entry_id text, belongs_to_date date,"
            " payload jsonb) ON COMMIT DROP"
        )
        columns = ["position", "entry_id", "belongs_to_date", "payload"]
        copy_frame(
            cursor, sql.Identifier("fetched"), frame, columns, ["integer", "text", "date", "jsonb"]
        )
        cursor.execute(query, {"days": sorted(fetched)})
        found = cursor.fetchall()
    dates = {row[0] for row in found} | {row[2] for row in found if row[2] is not None}
    entries = [payloads[row[1]][1] for row in found if row[1] is not None]
    return Drift(dates, entries)


def _entry_id(payload: dict[str, Any]) -> str | None:
    value = payload.get("id")
    return value if isinstance(value, str) and value else None

"""What the warehouse knows of agent-weeks, for comparing them with Jibble's own totals
(``rules.reconciliation``): two set-based reads, whatever the number of agents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pandas as pd
from psycopg import sql

if TYPE_CHECKING:
    from jibble_pipeline.warehouse.resource import WarehouseResource

_WEEK = "{day} - (extract(isodow FROM {day})::int - 1)"

AGENT_WEEKS = """
WITH hours AS (
    SELECT w.week_start, w.person_id, sum(w.work_seconds) AS work_seconds,
           sum(w.incomplete_count) AS open_sessions,
           string_agg(DISTINCT coalesce(g.name, w.group_id, '(no group)'), ', ') AS "group"
    FROM {weekly} w LEFT JOIN {groups} g ON g.group_id = w.group_id
    WHERE w.week_start = ANY(%(weeks)s)
    GROUP BY 1, 2
),
auto AS (
    SELECT {session_week} AS week_start, person_id, count(*) AS auto_outs
    FROM {sessions}
    WHERE auto_out AND belongs_to_date BETWEEN %(first)s AND %(last)s
    GROUP BY 1, 2
),
archived AS (
    SELECT {entry_week} AS week_start, person_id, count(*) AS archived_entries
    FROM {raw}
    WHERE coalesce(status, 'Active') <> 'Active'
      AND belongs_to_date BETWEEN %(first)s AND %(last)s
    GROUP BY 1, 2
)
SELECT week_start, person_id, h."group",
       coalesce(h.work_seconds, 0) AS work_seconds,
       coalesce(h.open_sessions, 0) AS open_sessions,
       coalesce(a.auto_outs, 0) AS auto_outs,
       coalesce(r.archived_entries, 0) AS archived_entries
FROM hours h
FULL JOIN auto a USING (week_start, person_id)
FULL JOIN archived r USING (week_start, person_id)
WHERE week_start = ANY(%(weeks)s)
ORDER BY 1, 2
"""

WATERMARKS = """
SELECT belongs_to_date, max(coalesce(updated_at, created_at)) AS watermark
FROM {raw} WHERE belongs_to_date BETWEEN %(first)s AND %(last)s
GROUP BY 1
"""


def agent_weeks(warehouse: WarehouseResource, weeks: Sequence[date]) -> pd.DataFrame:
    """Per (week, agent): work seconds (weekly_hours, every activity), sessions with no end,
    automatic clock-outs and archived entries held."""
    query = sql.SQL(AGENT_WEEKS).format(
        weekly=warehouse.table("weekly_hours"),
        groups=warehouse.table("client_groups"),
        sessions=warehouse.table("sessions"),
        raw=warehouse.table("raw_time_entries"),
        session_week=sql.SQL(_WEEK.format(day="belongs_to_date")),
        entry_week=sql.SQL(_WEEK.format(day="belongs_to_date")),
    )
    return warehouse.query_frame(query, _bounds(weeks))


def date_watermarks(
    warehouse: WarehouseResource, weeks: Sequence[date]
) -> dict[date, pd.Timestamp]:
    """The newest ``updatedAt`` we hold per work date of the weeks (Jibble's own clock, so an
    entry changed after our last fetch of its date has a newer one)."""
    query = sql.SQL(WATERMARKS).format(raw=warehouse.table("raw_time_entries"))
    frame = warehouse.query_frame(query, _bounds(weeks))
    return {
        row.belongs_to_date: pd.Timestamp(row.watermark)
        for row in frame.itertuples(index=False)
        if row.watermark is not None and not pd.isna(row.watermark)
    }


def _bounds(weeks: Sequence[date]) -> dict[str, object]:
    return {"weeks": list(weeks), "first": min(weeks), "last": max(weeks) + timedelta(days=6)}

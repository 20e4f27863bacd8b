"""Yesterday's problems (docs/rules.md, Daily operations alert), read from the warehouse in
one set-based statement.

One row per problem of a work date: sessions still open or with no clock-out (forgot to
clock out), automatic clock-outs, Out punches with no open session (orphans), entries in
quarantine, and, on a working day, agents of a client group who tracked nothing. Each row
carries the client group it belongs to: the session's group (the agent's group when it
started), else the agent's current group.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

import pandas as pd
from psycopg import sql

from jibble_pipeline.warehouse.store import Warehouse

PROBLEM_KINDS = ("open", "incomplete", "auto_out", "orphan_out", "quarantined", "no_tracking")
# Jibble's people statuses of someone who works now (null: not sent, counted as working).
WORKING_STATUSES = ("joined", "active")

PROBLEMS = """
SELECT s.status AS problem, s.person_id, s.group_id, s.activity_id, s.kind,
       s.start_local AS local_time, s.offset_minutes, NULL::text AS detail, 1 AS entries
FROM {sessions} s
WHERE s.belongs_to_date = %(day)s AND s.status IN ('open', 'incomplete')
UNION ALL
SELECT 'auto_out', s.person_id, s.group_id, s.activity_id, s.kind, s.end_local,
       s.offset_minutes, NULL, 1
FROM {sessions} s
WHERE s.belongs_to_date = %(day)s AND s.auto_out
UNION ALL
SELECT 'orphan_out', a.person_id, a.group_id, NULL, NULL, NULL, NULL, NULL,
       a.orphan_out_count
FROM {attendance} a
WHERE a.belongs_to_date = %(day)s AND a.orphan_out_count > 0
UNION ALL
SELECT 'quarantined', q.raw_payload ->> 'personId', g.group_id, NULL, NULL, NULL, NULL,
       q.reason, 1
FROM {quarantine} q LEFT JOIN {agents} g ON g.person_id = q.raw_payload ->> 'personId'
WHERE q.partition_date = %(day)s
UNION ALL
SELECT 'no_tracking', g.person_id, g.group_id, NULL, NULL, NULL, NULL, NULL, 0
FROM {agents} g
WHERE %(working_day)s AND g.group_id IS NOT NULL AND g.removed_at IS NULL
  AND (g.status IS NULL OR lower(g.status) = ANY(%(working_statuses)s))
  AND (g.created_at IS NULL OR (g.created_at AT TIME ZONE 'UTC')::date <= %(day)s)
  AND NOT EXISTS (SELECT 1 FROM {attendance} a
                  WHERE a.person_id = g.person_id AND a.belongs_to_date = %(day)s)
"""


def is_working_day(day: date, working_days: Sequence[int], holidays: Collection[date] = ()) -> bool:
    """``working_days`` are ISO weekday numbers (Monday = 1); ``holidays`` are not."""
    return day.isoweekday() in working_days and day not in holidays


def load_problems(warehouse: Warehouse, day: date, working_day: bool) -> pd.DataFrame:
    """The problems of work date ``day`` (columns of ``PROBLEMS``); agents who tracked
    nothing only when it is a ``working_day``."""
    tables = {
        "sessions": "sessions",
        "attendance": "daily_attendance",
        "quarantine": "quarantined_entries",
        "agents": "agents",
    }
    query = sql.SQL(PROBLEMS).format(
        **{key: warehouse.identifier(table) for key, table in tables.items()}
    )
    params = {
        "day": day,
        "working_day": working_day,
        "working_statuses": list(WORKING_STATUSES),
    }
    return warehouse.query_frame(query, params)


DELIVERED = """
SELECT d.email, coalesce(sum(s.duration_seconds), 0)::bigint AS delivered_seconds
FROM {directory} d
LEFT JOIN {sessions} s
  ON s.group_id = d.group_id AND s.kind = 'work' AND s.status = 'complete'
 AND s.belongs_to_date BETWEEN %(first)s AND %(last)s
WHERE d.contracted_hours IS NOT NULL
GROUP BY d.email
"""


def load_delivered(warehouse: Warehouse, first: date, last: date) -> dict[str, int]:
    """Seconds of complete work sessions of work dates ``first``..``last`` per client with a
    contract (its email), over the client's groups, in one statement."""
    query = sql.SQL(DELIVERED).format(
        directory=warehouse.identifier("client_directory"),
        sessions=warehouse.identifier("sessions"),
    )
    frame = warehouse.query_frame(query, {"first": first, "last": last})
    return dict(zip(frame["email"], (int(s) for s in frame["delivered_seconds"]), strict=True))

"""Holding a warehouse row lock from a test, and watching who waits for it: a way to stop a
run's write transaction half-way, deterministically, to kill it, restart Postgres under it or
let a second writer catch up with it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from psycopg import sql

T = TypeVar("T")

_WAITING = """
SELECT pid, wait_event, pg_blocking_pids(pid), query FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


@dataclass(frozen=True)
class Waiter:
    pid: int
    wait_event: str  # "advisory", "transactionid", "tuple", ...
    blockers: list[int]
    query: str


def hold_row(conn: psycopg.Connection, schema: str, table: str, day) -> None:
    """Locks one row of ``table`` with work date ``day`` in ``conn``'s open transaction: a
    write that replaces or merges that row waits, inside its own transaction, until ``conn``
    ends its transaction."""
    column = "belongs_to_date"
    query = sql.SQL("SELECT 1 FROM {} WHERE {} = %s LIMIT 1 FOR UPDATE").format(
        sql.Identifier(schema, table), sql.Identifier(column)
    )
    assert conn.execute(query, (day,)).fetchone(), f"no {table} row of {day} to hold"


def waiters(database_url: str) -> list[Waiter]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return [Waiter(*row) for row in conn.execute(_WAITING)]


def wait_for(
    condition: Callable[[], T | None], what: str, timeout: float = 90, every: float = 0.05
) -> T:
    """Polls ``condition`` until it returns something truthy (returned); fails after
    ``timeout`` seconds saying ``what`` never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"waited {timeout:.0f} s, but {what} never happened")


def blocked_writer(database_url: str, holder: psycopg.Connection, statement: str) -> Waiter | None:
    """The session whose ``statement`` (e.g. ``DELETE FROM "s"."sessions"``) waits for a lock
    ``holder`` holds, if any."""
    me = holder.info.backend_pid
    found = [w for w in waiters(database_url) if me in w.blockers and statement in w.query]
    return found[0] if found else None

"""How many runs use an outside API at once, across processes and machines.

The 10-minute tick, the late-edits runs and backfills all call Jibble, and Jibble's limits
are the organisation's, not a process's. Each step that calls it holds one of ``limit``
slots: session-level advisory locks in the warehouse's Postgres, which every run reaches.
A step paces itself at its share of the limits (the number of slots held, see
``transport.pacing``). Postgres releases a lock when its connection ends, so a run that is
killed frees its slot at once: nothing to clean up, nothing that blocks the next runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import psycopg

from jibble_pipeline.warehouse.connection import connect

POLL_SECONDS = 1.0


def _row(conn: psycopg.Connection, query: str, params: tuple[Any, ...]) -> tuple[Any, ...]:
    """The one row of a query that always returns one (an aggregate or a function call)."""
    return cast(tuple[Any, ...], conn.execute(query, params).fetchone())


class SlotsBusy(TimeoutError):
    """Every slot stayed taken for longer than the caller could wait."""


@contextmanager
def api_slot(url: str, api: str, limit: int, wait_seconds: float) -> Iterator[Callable[[], int]]:
    """Holds one of the ``limit`` slots of ``api`` for the block's length; yields a function
    that counts the slots held now (by every process), at least 1."""
    if limit < 1:
        raise ValueError("an API needs at least one slot")
    conn = connect(url, autocommit=True)
    lock = threading.Lock()
    try:
        (key,) = _row(conn, "SELECT hashtext(%s)", (f"jibble-pipeline api {api}",))
        deadline = time.monotonic() + wait_seconds
        while not any(
            _row(conn, "SELECT pg_try_advisory_lock(%s, %s)", (key, slot))[0]
            for slot in range(limit)
        ):
            if time.monotonic() >= deadline:
                raise SlotsBusy(
                    f"all {limit} slots for calling {api} stayed taken for {wait_seconds:g} s "
                    "(other runs are using it); try again later"
                )
            time.sleep(POLL_SECONDS)

        def held() -> int:
            with lock:
                (count,) = _row(
                    conn,
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND classid = %s::oid AND objsubid = 2"
                    " AND database = (SELECT oid FROM pg_database"
                    "                 WHERE datname = current_database())",
                    (key & 0xFFFFFFFF,),
                )
            return max(1, int(count))

        yield held
    finally:
        conn.close()

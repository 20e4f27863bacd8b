"""The least a loader of Jibble time entries can do: the yardstick of the pipeline's CPU.

    .venv/bin/python benchmarks/reference_loader.py URL CLIENT_ID CLIENT_SECRET FIRST LAST
        DATABASE_URL TABLE

httpx with 8 requests in flight (one work date per worker at a time), ``$skip`` paging by
the rows received until ``@odata.count``, and a text COPY of each page into one table
(entry id, work date, payload as ``jsonb``). No validation, no quarantine, no merge, no
resume. Prints one JSON line: entries loaded, CPU seconds (this process, after its imports)
and wall seconds.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import httpx
import psycopg

WORKERS = 8
TOP = 1000


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def token(http: httpx.Client, client_id: str, secret: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    answer = http.post("/connect/token", data=form)
    answer.raise_for_status()
    return answer.json()["access_token"]


def read_date(http: httpx.Client, day: date) -> list[dict]:
    """Every entry of one work date, ``$skip`` advanced by the rows received."""
    rows: list[dict] = []
    total = None
    while total is None or len(rows) < total:
        params = {
            "$filter": f"belongsToDate eq {day.isoformat()}",
            "$orderby": "createdAt asc,id asc",
            "$top": str(TOP),
            "$skip": str(len(rows)),
            "$count": "true",
        }
        answer = http.get("/v1/TimeEntries", params=params)
        answer.raise_for_status()
        body = answer.json()
        total = body["@odata.count"]
        if not body["value"]:
            break
        rows.extend(body["value"])
    return rows


def main() -> None:
    url, client_id, secret, first_text, last_text, database_url, table = sys.argv[1:8]
    first, last = date.fromisoformat(first_text), date.fromisoformat(last_text)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    started_cpu, started = cpu_seconds(), time.perf_counter()
    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
    with (
        httpx.Client(base_url=url, timeout=60, limits=limits) as http,
        psycopg.connect(database_url) as conn,
    ):
        http.headers["Authorization"] = f"Bearer {token(http, client_id, secret)}"
        conn.execute(
            f"CREATE TABLE {table} (entry_id text PRIMARY KEY, work_date date, payload jsonb)"
        )
        lock = threading.Lock()
        loaded = 0
        with ThreadPoolExecutor(WORKERS) as pool:
            for day, rows in zip(days, pool.map(lambda d: read_date(http, d), days), strict=True):
                with lock, conn.cursor() as cursor:
                    copy_sql = f"COPY {table} (entry_id, work_date, payload) FROM STDIN"
                    with cursor.copy(copy_sql) as copy:
                        for row in rows:
                            copy.write_row((row["id"], day, json.dumps(row)))
                loaded += len(rows)
        conn.commit()
    print(
        json.dumps(
            {
                "entries": loaded,
                "cpu_seconds": cpu_seconds() - started_cpu,
                "wall_seconds": time.perf_counter() - started,
            }
        )
    )


if __name__ == "__main__":
    main()

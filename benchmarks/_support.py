"""What the benchmarks share: a Postgres to write to, a simulator in its own process, schemas
made and dropped, timing helpers. Nothing here is used by the pipeline itself."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from jibble_pipeline.jibble.odata import between_dates
from jibble_pipeline.warehouse.connection import libpq_url
from jibble_pipeline.warehouse.embedded import ensure_embedded_postgres, stop_embedded_postgres

PROJECT = Path(__file__).resolve().parent.parent
ENTRY_ORDER = "createdAt asc,id asc"  # the pipeline's $orderby (jibble.tenant.ENTRY_ORDERS[0])


def add_database_argument(parser: Any) -> None:
    parser.add_argument(
        "--database-url",
        help="an existing Postgres (postgresql://...); default: an embedded PostgreSQL 18 in a "
        "temporary folder, stopped at the end",
    )


@contextmanager
def postgres(database_url: str | None) -> Iterator[str]:
    """``database_url``, or an embedded server in a temporary folder for the block's length."""
    if database_url:
        yield libpq_url(database_url)
        return
    with tempfile.TemporaryDirectory(prefix="jibble-bench-") as folder:
        data_dir = Path(folder) / "pgdata"
        url = ensure_embedded_postgres(data_dir)
        try:
            yield url
        finally:
            stop_embedded_postgres(data_dir)


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0].split()[0]


@contextmanager
def scratch_schema(url: str, prefix: str = "bench") -> Iterator[str]:
    """A new schema name, dropped (with everything in it) at the end."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        yield schema
    finally:
        drop_schema(url, schema)


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@dataclass(frozen=True)
class Simulator:
    """A simulator running in its own process (``python -m jibble_pipeline.simulator``)."""

    url: str
    client_id: str
    client_secret: str
    pid: int

    def environment(self) -> dict[str, str]:
        """Pipeline settings (docs/rules.md, Configuration) that point it at this simulator."""
        return {
            "JIBBLE_CLIENT_ID": self.client_id,
            "JIBBLE_CLIENT_SECRET": self.client_secret,
            "JIBBLE_IDENTITY_URL": self.url,
            "JIBBLE_WORKSPACE_URL": self.url,
            "JIBBLE_TIME_TRACKING_URL": self.url,
            "JIBBLE_TIME_ATTENDANCE_URL": self.url,
        }

    def token(self) -> str:
        answer = httpx.post(
            f"{self.url}/connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
        )
        answer.raise_for_status()
        return answer.json()["access_token"]

    def stats(self) -> dict[str, int]:
        """What the simulator answered since it started (or since its faults were set)."""
        answer = httpx.get(
            f"{self.url}/_simulator/stats", headers={"X-Simulator-Control": self.client_secret}
        )
        answer.raise_for_status()
        return answer.json()

    def set_faults(self, **plan: Any) -> None:
        """A new fault plan (``FaultPlan`` fields) from now on; the stats start again."""
        answer = httpx.post(
            f"{self.url}/_simulator/faults",
            json=plan,
            headers={"X-Simulator-Control": self.client_secret},
        )
        answer.raise_for_status()

    def count_entries(self, first: date, last: date, timeout: float = 1800) -> int:
        """The simulator's own count of the entries of work dates [first, last] (ground
        truth). It also makes it generate those dates and cache the sorted result of the
        pipeline's query of each date, so what is timed afterwards is serving, not
        generating (as a real Jibble would)."""
        token = self.token()
        total = self._count(between_dates("belongsToDate", first, last), token, timeout)
        day = first
        while day <= last:
            self._count(between_dates("belongsToDate", day, day), token, timeout)
            day += timedelta(days=1)
        return total

    def _count(self, condition: str, token: str, timeout: float) -> int:
        params = {"$filter": condition, "$orderby": ENTRY_ORDER, "$count": "true", "$top": "1"}
        answer = httpx.get(
            f"{self.url}/v1/TimeEntries",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        answer.raise_for_status()
        return int(answer.json()["@odata.count"])


@contextmanager
def simulator_process(
    *,
    agents: int,
    start: date,
    now: datetime | None,
    page_cap: int,
    seed: int = 7,
    options: list[str] | None = None,
) -> Iterator[Simulator]:
    """Starts the simulator CLI on a free port and stops it (Ctrl-C) at the end. ``options``:
    further CLI options (``--latency-ms 100``, ``--rate-limit 20``, ...)."""
    client_id, client_secret = "benchmark", secrets.token_urlsafe(24)
    command = [
        sys.executable,
        "-m",
        "jibble_pipeline.simulator",
        "--port", "0",
        "--agents", str(agents),
        "--page-cap", str(page_cap),
        "--seed", str(seed),
        "--start", start.isoformat(),
        f"--client-id={client_id}",
        f"--client-secret={client_secret}",  # a secret may start with "-"
    ]  # fmt: skip
    if now is not None:
        command += ["--now", now.isoformat()]
    command += options or []
    process = subprocess.Popen(
        command, cwd=PROJECT, stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    try:
        url = None
        assert process.stdout is not None
        for line in process.stdout:
            match = re.match(r"\s*URL\s+(http://\S+)", line)
            if match:
                url = match.group(1)
                break
        if url is None:
            raise RuntimeError(f"the simulator exited ({process.wait()}) without serving")
        yield Simulator(url, client_id, client_secret, process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def add_api_arguments(parser: Any) -> None:
    """The simulator's remote-API conditions, and the pipeline's pacing settings."""
    parser.add_argument("--latency-ms", type=float, default=0, help="per request, simulator")
    parser.add_argument("--rate-limit", type=float, default=0, help="requests/s, simulator")
    parser.add_argument("--error-rate", type=float, default=0, help="5xx fraction, simulator")
    parser.add_argument("--drop-rate", type=float, default=0, help="dropped, simulator")
    parser.add_argument("--concurrency", type=int, default=8, help="the pipeline's setting")
    parser.add_argument(
        "--max-rps", type=float, default=None, help="the pipeline's requests/s ceiling"
    )


def api_conditions(args: Any) -> dict[str, float]:
    """The ``FaultPlan`` of the remote-API options, set once the benchmark has warmed the
    simulator up (``Simulator.set_faults``)."""
    return {
        "latency_seconds": args.latency_ms / 1000,
        "rate_limit_per_second": args.rate_limit,
        "error_rate_5xx": args.error_rate,
        "drop_rate": args.drop_rate,
    }


def describe_api(args: Any) -> str:
    conditions = [
        f"{args.latency_ms:g} ms per request" if args.latency_ms else "no latency",
        f"limit {args.rate_limit:g} requests/s" if args.rate_limit else "no rate limit",
    ]
    if args.error_rate or args.drop_rate:
        conditions.append(f"{args.error_rate:.0%} 5xx, {args.drop_rate:.0%} dropped")
    ceiling = f"{args.max_rps:g} requests/s" if args.max_rps else "none (adapts to 429s)"
    return (
        f"simulated API: {', '.join(conditions)}; pipeline: concurrency {args.concurrency}, "
        f"ceiling {ceiling}"
    )


class CliRun:
    """The README's raw-entry command for [first, last], run as a user runs it: in its own
    process (group), with the project's ``dagster.yaml`` in a Dagster home of its own."""

    def __init__(self, simulator: Simulator, url: str, schema: str, first: date, last: date):
        self.home = tempfile.mkdtemp(prefix="jibble-bench-home-")
        shutil.copy(PROJECT / "dagster.yaml", Path(self.home) / "dagster.yaml")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JIBBLE_", "DAGSTER_"))}
        env.update(
            simulator.environment(),
            DAGSTER_HOME=self.home,
            JIBBLE_HOME=str(Path(self.home) / "jibble"),
            JIBBLE_DATABASE_URL=url,
            JIBBLE_DB_SCHEMA=schema,
            JIBBLE_PARTITIONS_START=first.isoformat(),
        )
        command = [
            str(Path(sys.executable).with_name("dagster")), "asset", "materialize",
            "-m", "jibble_pipeline.definitions",
            "--select", "raw_time_entries,quarantined_entries",
            "--partition-range", f"{first}...{last}",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip

    def wait(self) -> tuple[int, str]:
        output, _ = self.process.communicate(timeout=3600)
        shutil.rmtree(self.home, ignore_errors=True)
        return self.process.returncode, output

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.wait()


def median(values: list[float]) -> float:
    return statistics.median(values)


class Stopwatch:
    """``with Stopwatch() as watch: ...`` then ``watch.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.started


def with_session_settings(url: str, settings: list[str]) -> str:
    """``url`` whose connections start with ``SET name = value`` for each ``name=value``
    (libpq ``options``; the warehouse's ``connect`` keeps them and adds its own)."""
    if not settings:
        return url
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    extra = " ".join(f"-c {setting}" for setting in settings)
    query["options"] = " ".join(filter(None, [query.get("options"), extra]))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def drop_table(url: str, qualified: str) -> None:
    """Drops ``schema.table`` if it exists."""
    schema, _, name = qualified.partition(".")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, name)))

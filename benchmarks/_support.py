"""What the benchmarks share: a Postgres to write to, schemas made and dropped, work dates,
timing helpers. The simulator and the command run against it: ``benchmarks._simulator``.
Nothing here is used by the pipeline itself."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from jibble_pipeline.warehouse.connection import libpq_url
from jibble_pipeline.warehouse.embedded import ensure_embedded_postgres, stop_embedded_postgres

PROJECT = Path(__file__).resolve().parent.parent
FIRST_MONDAY = date(2025, 1, 6)  # where the benchmarks' ranges of whole weeks start


@dataclass(frozen=True)
class WorkDates:
    """Work dates ``first`` to ``last``, both included."""

    first: date
    last: date

    @classmethod
    def weeks(cls, count: int) -> WorkDates:
        """``count`` whole weeks from Monday 2025-01-06."""
        return cls(FIRST_MONDAY, FIRST_MONDAY + timedelta(weeks=count) - timedelta(days=1))

    @classmethod
    def days_from(cls, first: date, count: int) -> WorkDates:
        """``count`` work dates from ``first``."""
        return cls(first, first + timedelta(days=count - 1))

    def __str__(self) -> str:
        return f"{self.first}..{self.last}"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def now(self) -> datetime:
        """A simulator clock two days after the last date: every entry of the range exists."""
        return datetime.combine(self.last + timedelta(days=2), clock_time(), UTC)


def add_database_arguments(
    parser: argparse.ArgumentParser, *, session_settings_for: str | None = None
) -> None:
    """``--database-url``; with ``session_settings_for`` (whose warehouse connections they
    are), ``--pg-option name=value`` too, repeatable (what-if measurements only)."""
    parser.add_argument(
        "--database-url",
        help="an existing Postgres (postgresql://...); default: an embedded PostgreSQL 18 in a "
        "temporary folder, stopped at the end",
    )
    if session_settings_for:
        parser.add_argument(
            "--pg-option",
            action="append",
            default=[],
            help=f"session setting for {session_settings_for}'s warehouse connections, e.g. "
            "enable_nestloop=off (what-if; repeatable)",
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


@dataclass(frozen=True)
class Database:
    """A Postgres server and a scratch schema in it, as ``scratch_database`` set them up."""

    url: str
    schema: str
    version: str
    given: bool  # by ``--database-url``; otherwise an embedded server
    session_settings: list[str]  # ``--pg-option``: for the code measured, not the set-up

    def session_url(self, *settings: str) -> str:
        """``url`` whose connections start with ``SET name = value`` for each ``name=value`` of
        ``settings`` and of ``session_settings`` (libpq ``options``; the warehouse's
        ``connect`` keeps them and adds its own)."""
        every = [*settings, *self.session_settings]
        if not every:
            return self.url
        parts = urlsplit(self.url)
        query = dict(parse_qsl(parts.query))
        extra = " ".join(f"-c {setting}" for setting in every)
        query["options"] = " ".join(filter(None, [query.get("options"), extra]))
        return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))

    def describe(self, whose: str) -> str:
        """The server's version and origin, and the session settings given to ``whose``
        connections, if any."""
        text = f"database: PostgreSQL {self.version} ({'given URL' if self.given else 'embedded'})"
        if self.session_settings:
            text += f"\nwhat-if session settings for {whose}: {', '.join(self.session_settings)}"
        return text

    def count_rows(self, table: str) -> int:
        with psycopg.connect(self.url) as conn:
            name = sql.Identifier(self.schema, table)
            return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name)).fetchone()[0]


@contextmanager
def scratch_database(
    database_url: str | None, session_settings: list[str] | None = None
) -> Iterator[Database]:
    """``postgres(database_url)`` with a ``scratch_schema`` in it, for the block's length."""
    with postgres(database_url) as url, scratch_schema(url) as schema:
        version = server_version(url)
        yield Database(url, schema, version, bool(database_url), session_settings or [])


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


def drop_table(url: str, qualified: str) -> None:
    """Drops ``schema.table`` if it exists."""
    schema, _, name = qualified.partition(".")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, name)))


def raw_entry_counts(url: str, schema: str) -> tuple[int, int]:
    """The rows of ``raw_time_entries`` and their distinct entry ids (equal: stored once)."""
    with psycopg.connect(url) as conn:
        table = sql.Identifier(schema, "raw_time_entries")
        query = sql.SQL("SELECT count(*), count(DISTINCT entry_id) FROM {}").format(table)
        return conn.execute(query).fetchone()


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


def alternating(first: str, second: str, rounds: int) -> Iterator[tuple[int, str]]:
    """``(round, name)`` for rounds 0, 1, ...: each round runs both, ``first`` first in even
    rounds and ``second`` first in odd ones, so that neither always finds the machine warmed
    by the other."""
    for round_index in range(rounds):
        order = (first, second) if round_index % 2 == 0 else (second, first)
        for name in order:
            yield round_index, name


def describe_ratios(label: str, ratios: list[float], ceiling: float) -> str:
    """``ratios`` of the rounds, their median, and whether it is at most ``ceiling``."""
    verdict = "met" if median(ratios) <= ceiling else "MISSED"
    return (
        f"{label} per round: {', '.join(f'{r:.2f}' for r in ratios)}; median "
        f"{median(ratios):.2f} (target <= {ceiling:g}: {verdict})"
    )

"""The IO manager's partition write of raw entries against a bare binary COPY, same run.

    .venv/bin/python benchmarks/write_path.py --entries 200000 [--rounds 3]
        [--give-up-after 300] [--pg-option enable_nestloop=off]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

The rows are real Jibble-shaped entries: the simulator's organisation (400 agents) makes
the payloads, ``parse_payloads(TimeEntry, ...)`` and ``entries_frame`` turn them into the
frame the ``raw_time_entries`` asset yields. Each round, into the same table (its primary
key and four indexes), in this order:

1. bare COPY, empty table: psycopg 3 ``COPY ... (FORMAT BINARY)`` with ``set_types`` of rows
   already built as Python tuples, in one transaction: the floor for landing these rows;
2. IO manager, empty window: ``PostgresIOManager.handle_output`` for the partition range;
3. IO manager, re-write of the loaded window (the idempotent re-run: nothing changed);
4. bare re-write: ``DELETE`` of the window and the same bare COPY, in one transaction.

The IO manager's writes run under a ``statement_timeout`` (``--give-up-after``): on
PostgreSQL 15 and older, the merge's "mark entries gone at the source" ``UPDATE ... NOT
EXISTS`` can get a nested-loop plan over the unindexed staging table while the table's
statistics are stale (a fresh load), which is quadratic in the window's rows; a write that
gives up is reported as such. ``--pg-option enable_nestloop=off`` measures the rest of the
write path there (a what-if, not a project setting).

Prints the median seconds and rows/s of each and the ratios (bare time / IO manager time,
1.0 = as fast as a bare COPY; target >= 0.7).
"""

from __future__ import annotations

import argparse
import gc
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
from psycopg import sql
from psycopg.types.json import set_json_dumps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import describe_machine, peak_rss_mib  # noqa: E402
from benchmarks._support import Stopwatch, add_database_arguments, median, scratch_database  # noqa: E402
from jibble_pipeline.jibble.frames import entries_frame  # noqa: E402
from jibble_pipeline.jibble.models import TimeEntry, parse_payloads  # noqa: E402
from jibble_pipeline.partitions import daily_partitions  # noqa: E402
from jibble_pipeline.schema import RAW_TIME_ENTRIES  # noqa: E402
from jibble_pipeline.simulator import SyntheticOrganisation  # noqa: E402
from jibble_pipeline.warehouse.bulk import python_values  # noqa: E402
from jibble_pipeline.warehouse.io_manager import PostgresIOManager  # noqa: E402
from jibble_pipeline.warehouse.store import Warehouse  # noqa: E402

FIRST_DATE = date(2025, 1, 1)
TARGET = 0.7


def simulator_payloads(count: int, agents: int = 400) -> list[dict]:
    """The first ``count`` entries of the simulator's organisation, by work date."""
    organisation = SyntheticOrganisation(
        seed=7,
        agents=agents,
        start=FIRST_DATE,
        end=FIRST_DATE + timedelta(days=3660),
        now=datetime(2036, 1, 1, tzinfo=UTC),
    )
    payloads: list[dict] = []
    day = FIRST_DATE
    while len(payloads) < count:
        payloads.extend(organisation.records("TimeEntries", day, day + timedelta(days=13)))
        day += timedelta(days=14)
    return payloads[:count]


def column_types() -> list[str]:
    return [kind.split()[0] for kind in RAW_TIME_ENTRIES.columns.values()]


def bare_copy(url: str, schema: str, rows: list[tuple], delete_window: tuple | None) -> float:
    """One transaction: (optionally) DELETE the window, then a binary COPY of ``rows``."""
    target = sql.Identifier(schema, RAW_TIME_ENTRIES.name)
    columns = sql.SQL(", ").join(map(sql.Identifier, RAW_TIME_ENTRIES.column_names))
    with psycopg.connect(url, options="-c TimeZone=UTC") as conn:
        set_json_dumps(lambda text: text, context=conn)  # payloads are serialised already
        with Stopwatch() as watch, conn.transaction(), conn.cursor() as cursor:
            if delete_window is not None:
                cursor.execute(
                    sql.SQL(
                        "DELETE FROM {} WHERE belongs_to_date >= %s AND belongs_to_date < %s"
                    ).format(target),
                    delete_window,
                )
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(target, columns)
            with cursor.copy(statement) as copy:
                copy.set_types(column_types())
                for row in rows:
                    copy.write_row(row)
    return watch.seconds


def truncate(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(schema, RAW_TIME_ENTRIES.name)))
        conn.execute(sql.SQL("CHECKPOINT"))


def io_manager_write(url: str, schema: str, frame, first: date, last: date) -> float | None:
    """Seconds of ``PostgresIOManager.handle_output`` for the range; None when a statement
    hit the ``statement_timeout`` given in ``url`` (the transaction rolled back)."""
    manager = PostgresIOManager(database_url=url, schema_name=schema)
    context = dg.build_output_context(
        asset_key="raw_time_entries",
        asset_partitions_def=daily_partitions,
        asset_partition_key_range=dg.PartitionKeyRange(first.isoformat(), last.isoformat()),
    )
    try:
        with Stopwatch() as watch:
            manager.handle_output(context, frame)
    except psycopg.errors.QueryCanceled:
        return None
    return watch.seconds


def seconds_text(seconds: float | None, limit: int) -> str:
    return f"{seconds:7.2f} s" if seconds is not None else f"> {limit} s (gave up)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--give-up-after",
        type=int,
        default=300,
        help="statement_timeout (s) of the IO manager's writes; after one gives up, the IO "
        "manager is not tried again",
    )
    add_database_arguments(parser, session_settings_for="the IO manager")
    args = parser.parse_args()

    with Stopwatch() as setup:
        payloads = simulator_payloads(args.entries)
        entries, rejected = parse_payloads(TimeEntry, payloads)
        assert not rejected, rejected[:3]
        frame = entries_frame(entries, datetime.now(UTC))
        del payloads, entries
        gc.collect()
        rows = list(
            zip(*(python_values(frame[c]) for c in RAW_TIME_ENTRIES.column_names), strict=True)
        )
    first, last = frame["belongs_to_date"].min(), frame["belongs_to_date"].max()
    json_bytes = frame["raw_payload"].str.len().mean()
    window = (first, last + timedelta(days=1))
    n = len(frame)

    keys = ("bare", "io_empty", "io_rewrite", "bare_rewrite")
    results: dict[str, list[float | None]] = {key: [] for key in keys}
    limit = args.give_up_after
    with scratch_database(args.database_url, args.pg_option) as database:
        url, schema = database.url, database.schema
        io_url = database.session_url(f"statement_timeout={limit}s")
        Warehouse(url, schema).ensure_schema()
        gave_up = False
        for round_number in range(1, args.rounds + 1):
            truncate(url, schema)
            results["bare"].append(bare_copy(url, schema, rows, None))
            truncate(url, schema)
            empty = rewrite = None
            if not gave_up:
                empty = io_manager_write(io_url, schema, frame, first, last)
                if empty is not None:
                    rewrite = io_manager_write(io_url, schema, frame, first, last)
                gave_up = empty is None or rewrite is None
            results["io_empty"].append(empty)
            results["io_rewrite"].append(rewrite)
            if empty is None:  # the window was rolled back: load it for the bare re-write
                bare_copy(url, schema, rows, None)
            results["bare_rewrite"].append(bare_copy(url, schema, rows, window))
            print(
                f"round {round_number}: bare COPY {results['bare'][-1]:.2f} s; IO manager: "
                f"empty window {seconds_text(empty, limit)}, re-write "
                f"{seconds_text(rewrite, limit)}; bare DELETE+COPY "
                f"{results['bare_rewrite'][-1]:.2f} s",
                flush=True,
            )
        stored = database.count_rows(RAW_TIME_ENTRIES.name)
        assert stored == n, (stored, n)

    def middle(key: str) -> float | None:
        values = results[key]
        return None if None in values else median(values)  # a give-up counts as the worst

    bare = middle("bare")
    print()
    print(f"machine: {describe_machine()}")
    print(database.describe("the IO manager"))
    print(
        f"entries: {n:,} ({first}..{last}), raw payloads of {json_bytes:,.0f} bytes of JSON "
        f"on average; set-up {setup.seconds:.1f} s"
    )

    def line(label: str, seconds: float | None) -> None:
        if seconds is None:
            print(f"  {label:<34} {seconds_text(None, limit)}  ratio < {bare / limit:.3f}")
            return
        rate = n / seconds
        print(f"  {label:<34} {seconds:7.2f} s {rate:>9,.0f} rows/s  ratio {bare / seconds:.2f}")

    print(
        f"medians of {args.rounds} rounds; ratio = bare COPY time / this time (target >= {TARGET}):"
    )
    line("bare binary COPY, empty table", bare)
    line("IO manager, empty window", middle("io_empty"))
    line("IO manager, re-write (re-run)", middle("io_rewrite"))
    line("bare DELETE window + COPY", middle("bare_rewrite"))
    if not gave_up:
        per_round = ", ".join(
            f"{b / e:.2f}/{b / r:.2f}"
            for b, e, r in zip(
                results["bare"], results["io_empty"], results["io_rewrite"], strict=True
            )
        )
        print(f"ratios per round (empty/re-write): {per_round}")
    ratios = [bare / s if s else 0.0 for s in (middle("io_empty"), middle("io_rewrite"))]
    print(
        f"target: empty window {'met' if ratios[0] >= TARGET else 'MISSED'}, "
        f"re-write {'met' if ratios[1] >= TARGET else 'MISSED'}"
    )
    print(f"peak RSS of this process: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()

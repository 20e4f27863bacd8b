"""The raw-entry run as a user starts it, against a remote Jibble and a local one.

    .venv/bin/python benchmarks/remote_latency.py --agents 40 --rounds 3 [--latency-ms 150]
        [--database-url postgresql://...]

Two simulator processes serve the same organisation (clock fixed after the range), one
answering every request after ``--latency-ms`` (a remote API's round trip), one at once.
Each round runs, in alternating order, the raw-entry command of docs/operations.md
(Backfills) for a range of work dates (12 weeks), in its own process with the project's
``dagster.yaml``::

    dagster asset materialize -m jibble_pipeline.definitions \\
        --select raw_time_entries,quarantined_entries --partition-range 2025-01-06...2025-03-30

into an empty schema, and checks every entry was stored once. Prints the wall times and
their ratio (latency / none). Target: at most 1.4 at 150 ms for 40 agents x 12 weeks.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import describe_machine  # noqa: E402
from benchmarks._support import (  # noqa: E402
    CliRun,
    Simulator,
    Stopwatch,
    add_database_argument,
    median,
    postgres,
    scratch_schema,
    simulator_process,
)

TARGET = 1.4


def materialize(simulator: Simulator, url: str, schema: str, first: date, last: date) -> float:
    """Seconds of the CLI run; fails loudly if it fails."""
    with Stopwatch() as watch:
        code, output = CliRun(simulator, url, schema, first, last).wait()
    if code != 0:
        raise RuntimeError(f"the run failed:\n{output[-3000:]}")
    return watch.seconds


def stored(url: str, schema: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        table = sql.Identifier(schema, "raw_time_entries")
        query = sql.SQL("SELECT count(*), count(DISTINCT entry_id) FROM {}").format(table)
        return conn.execute(query).fetchone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--latency-ms", type=float, default=150)
    parser.add_argument("--page-cap", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    add_database_argument(parser)
    args = parser.parse_args()
    first = date(2025, 1, 6)
    last = first + timedelta(weeks=args.weeks) - timedelta(days=1)
    now = datetime.combine(last + timedelta(days=2), clock_time(), UTC)
    common = {"agents": args.agents, "start": date(2025, 1, 1), "now": now}
    times: dict[str, list[float]] = {"remote": [], "local": []}
    with (
        postgres(args.database_url) as url,
        simulator_process(**common, page_cap=args.page_cap) as local,
        simulator_process(
            **common, page_cap=args.page_cap, options=["--latency-ms", str(args.latency_ms)]
        ) as remote,
    ):
        expected = local.count_entries(first, last)
        assert remote.count_entries(first, last) == expected
        servers = {"remote": remote, "local": local}
        for round_number in range(args.rounds):
            order = ["remote", "local"] if round_number % 2 == 0 else ["local", "remote"]
            for name in order:
                with scratch_schema(url) as schema:
                    seconds = materialize(servers[name], url, schema, first, last)
                    rows, distinct = stored(url, schema)
                assert rows == distinct == expected, f"{name}: {rows} rows, {expected} expected"
                times[name].append(seconds)
                print(f"round {round_number + 1}: {name:<6} {seconds:6.1f} s", flush=True)
    ratios = [r / loc for r, loc in zip(times["remote"], times["local"], strict=True)]
    print()
    print(f"machine: {describe_machine()}")
    print(
        f"{args.agents} agents, work dates {first}..{last}: {expected:,} entries, pages of at "
        f"most {args.page_cap}; every run stored each entry once"
    )
    print(f"{args.latency_ms:g} ms per request: {', '.join(f'{t:.1f}' for t in times['remote'])} s")
    print(f"no latency:      {', '.join(f'{t:.1f}' for t in times['local'])} s")
    verdict = "met" if median(ratios) <= TARGET else "MISSED"
    print(
        f"ratio per round: {', '.join(f'{r:.2f}' for r in ratios)}; median "
        f"{median(ratios):.2f} (target <= {TARGET}: {verdict})"
    )


if __name__ == "__main__":
    main()

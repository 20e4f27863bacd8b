"""A long backfill stopped half-way, then run again: how much of it the re-run repeats.

    .venv/bin/python benchmarks/resume.py --agents 400 --weeks 12 [--database-url ...]
    .venv/bin/python benchmarks/resume.py --agents 40 --weeks 12 --limit 3 --latency-ms 100

The raw-entry command of docs/operations.md (Backfills) for a range of work dates, run as a
user runs it (its own process, the project's ``dagster.yaml``), against a simulator process
(pages of at most 100 rows, clock fixed after the range)::

    dagster asset materialize -m jibble_pipeline.definitions \\
        --select raw_time_entries,quarantined_entries --partition-range A...B

1. A clean run into an empty schema: the pages a full run reads.
2. Killed: the same run into another schema, SIGKILLed once the simulator has served half
   the pages of a full run (``--kill-at``), then run again to the end. Also said: the entries
   landed when it was killed, against the entries of the pages served in its first 10 s of
   fetching (a chunk commits at the first whole date after about 10 s: those must be kept).
3. Jibble unavailable: the same into a third schema; once half the dates have landed every
   request is answered 503 until the run gives up; then Jibble answers again and the range
   is run again.

``--limit N``: Jibble's fixed window of N requests a second (AspNetCoreRateLimit's headers,
no ``Retry-After``) on every run; ``--latency-ms``: each request's latency.

For 2 and 3: the pages the re-run read, as a share of the full run's (target <= 60 %), and
whether the warehouse then equals the clean run's (every entry, its payload and date).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import describe_machine  # noqa: E402
from benchmarks._simulator import CliRun, Simulator, run_to_end, weeks_parser, weeks_simulator  # noqa: E402
from benchmarks._support import Stopwatch, WorkDates, postgres, scratch_schema  # noqa: E402

TARGET = 0.6


def landed_dates(url: str, schema: str) -> int:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".ingest_checkpoints',))
        if exists.fetchone()[0] is None:
            return 0
        table = sql.Identifier(schema, "ingest_checkpoints")
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]


def until(condition: Callable[[], bool], run: CliRun, what: str) -> None:
    while not condition():
        if run.process.poll() is not None:
            raise RuntimeError(f"the run ended before {what}")
        time.sleep(0.2)


def entries(url: str, schema: str) -> set[tuple]:
    with psycopg.connect(url) as conn:
        table = sql.Identifier(schema, "raw_time_entries")
        query = sql.SQL(
            "SELECT entry_id, belongs_to_date, raw_payload::text, removed_at IS NULL FROM {}"
        ).format(table)
        return set(conn.execute(query).fetchall())


def fetching(simulator: Simulator, run: CliRun, share_of: int, kill_at: float) -> int | None:
    """Waits until the simulator has served ``kill_at`` of ``share_of`` pages; returns the
    pages it had served 10 s after the run's first request (None: it got there sooner)."""
    in_first_10_s: int | None = None
    while True:
        stats = simulator.stats()
        started = stats["first_request_at"]
        if in_first_10_s is None and started and time.time() - started >= 10:
            in_first_10_s = stats["pages"]
        if stats["pages"] >= kill_at * share_of:
            return in_first_10_s
        if run.process.poll() is not None:
            raise RuntimeError(f"the run ended before {kill_at:.0%} of the pages were served")
        time.sleep(0.1)


def rerun(
    simulator: Simulator,
    url: str,
    schema: str,
    dates: WorkDates,
    truth: set[tuple],
    full: int,
    conditions: dict[str, object],
) -> str:
    """Runs the range again with the faults off: how much it read, and whether the warehouse
    then equals the clean run's."""
    simulator.set_faults(**conditions)
    seconds = run_to_end(simulator, url, schema, dates)
    again = simulator.stats()["pages"]
    same = entries(url, schema) == truth
    return (
        f"re-run read {again:,} pages = {again / full:.1%} of a full run (target <= "
        f"{TARGET:.0%}: {'met' if again / full <= TARGET else 'MISSED'}) in {seconds:.1f} "
        f"s; warehouse {'equals' if same else 'DIFFERS FROM'} the clean run's"
    )


def main() -> None:
    parser = weeks_parser(__doc__, agents=400, latency_ms=0)
    parser.add_argument("--limit", type=int, default=0, help="requests per one-second window")
    parser.add_argument("--kill-at", type=float, default=0.5, help="share of a full run's pages")
    args = parser.parse_args()
    dates = WorkDates.weeks(args.weeks)
    conditions: dict[str, object] = {"latency_seconds": args.latency_ms / 1000}
    if args.limit:
        conditions.update(
            rate_limit_per_second=args.limit,
            rate_limit_style="fixed-window",
            rate_limit_header="none",
        )
    results: list[str] = []
    with (
        postgres(args.database_url) as url,
        weeks_simulator(args, dates) as simulator,
        scratch_schema(url) as clean,
        scratch_schema(url) as killed,
        scratch_schema(url) as outage,
    ):
        expected = simulator.count_entries(dates.first, dates.last)
        print(f"{expected:,} entries in {dates}; clean run...", flush=True)
        simulator.set_faults(**conditions)
        seconds = run_to_end(simulator, url, clean, dates)
        full = simulator.stats()["pages"]
        truth = entries(url, clean)
        assert len(truth) == expected
        results.append(f"clean run: {full:,} pages, {seconds:.1f} s")

        def half_landed(schema: str) -> Callable[[], bool]:
            return lambda: landed_dates(url, schema) >= dates.days / 2

        # 2. SIGKILL part-way.
        print(f"killed at {args.kill_at:.0%} of the pages...", flush=True)
        simulator.set_faults(**conditions)
        run = CliRun(simulator, url, killed, dates)
        early_pages = fetching(simulator, run, full, args.kill_at)
        run.kill()
        kept, first_pages = landed_dates(url, killed), simulator.stats()["pages"]
        landed = len(entries(url, killed))
        if early_pages is None:
            early = "killed within its first 10 s of fetching"
        else:
            kept_early = landed >= early_pages * args.page_cap
            early = (
                f"its first 10 s of fetching served {early_pages:,} pages (at most "
                f"{early_pages * args.page_cap:,} entries): {'kept' if kept_early else 'NOT KEPT'}"
            )
        again = rerun(simulator, url, killed, dates, truth, full, conditions)
        results.append(
            f"killed after {first_pages:,} pages ({first_pages / full:.0%}) with {kept} of "
            f"{dates.days} dates landed, {landed:,} entries; {early}; {again}"
        )

        # 3. Jibble unavailable half-way, then back.
        print("Jibble down half-way...", flush=True)
        simulator.set_faults(**conditions)
        run = CliRun(simulator, url, outage, dates)
        until(half_landed(outage), run, "half the dates landed")
        simulator.set_faults(error_rate_5xx=1.0)
        with Stopwatch() as giving_up:
            code, output = run.wait()
        gave_up = next((line for line in output.splitlines() if "Gave up on" in line), "")
        assert code != 0 and gave_up, output[-3000:]
        kept = landed_dates(url, outage)
        again = rerun(simulator, url, outage, dates, truth, full, conditions)
        results.append(
            f"Jibble down: the run gave up {giving_up.seconds:.0f} s later with {kept} of "
            f"{dates.days} dates landed; {again}"
        )
        results.append(f"  the failed run said: {gave_up.strip()[:300]}")
    print()
    print(f"machine: {describe_machine()}")
    print(f"{args.agents} agents x {args.weeks} weeks, pages of at most {args.page_cap} rows")
    limit = f"a fixed window of {args.limit} requests/s" if args.limit else "no rate limit"
    print(f"simulated API: {args.latency_ms:g} ms per request, {limit}")
    for line in results:
        print(line)


if __name__ == "__main__":
    main()

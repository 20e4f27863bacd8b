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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import describe_machine  # noqa: E402
from benchmarks._simulator import run_to_end, weeks_parser, weeks_simulator  # noqa: E402
from benchmarks._support import (  # noqa: E402
    WorkDates,
    alternating,
    describe_ratios,
    postgres,
    raw_entry_counts,
    scratch_schema,
)

TARGET = 1.4


def main() -> None:
    args = weeks_parser(__doc__, agents=40, latency_ms=150, rounds=3).parse_args()
    dates = WorkDates.weeks(args.weeks)
    times: dict[str, list[float]] = {"remote": [], "local": []}
    with (
        postgres(args.database_url) as url,
        weeks_simulator(args, dates) as local,
        weeks_simulator(args, dates, options=["--latency-ms", str(args.latency_ms)]) as remote,
    ):
        expected = local.count_entries(dates.first, dates.last)
        assert remote.count_entries(dates.first, dates.last) == expected
        servers = {"remote": remote, "local": local}
        for round_index, name in alternating("remote", "local", args.rounds):
            with scratch_schema(url) as schema:
                seconds = run_to_end(servers[name], url, schema, dates)
                rows, distinct = raw_entry_counts(url, schema)
            assert rows == distinct == expected, f"{name}: {rows} rows, {expected} expected"
            times[name].append(seconds)
            print(f"round {round_index + 1}: {name:<6} {seconds:6.1f} s", flush=True)
    ratios = [r / loc for r, loc in zip(times["remote"], times["local"], strict=True)]
    print()
    print(f"machine: {describe_machine()}")
    print(
        f"{args.agents} agents, work dates {dates}: {expected:,} entries, pages of at "
        f"most {args.page_cap}; every run stored each entry once"
    )
    print(f"{args.latency_ms:g} ms per request: {', '.join(f'{t:.1f}' for t in times['remote'])} s")
    print(f"no latency:      {', '.join(f'{t:.1f}' for t in times['local'])} s")
    print(describe_ratios("ratio", ratios, TARGET))


if __name__ == "__main__":
    main()

"""A backfill behind a small fixed-window rate limit, as Jibble's answers show one.

    .venv/bin/python benchmarks/fixed_window.py --agents 40 --weeks 12 --limit 3
        [--latency-ms 100] [--retry-after] [--database-url postgresql://...]

A simulator process serves 40 agents (clock fixed after the range) behind ASP.NET
AspNetCoreRateLimit's fixed window: ``--limit`` requests per window of one second, every
answer carrying ``X-Rate-Limit-Limit: 1s``, ``X-Rate-Limit-Remaining`` and an ISO
``X-Rate-Limit-Reset``; a 429 says nothing about when to come back (no ``Retry-After``,
unless ``--retry-after``). The raw-entry command of docs/operations.md (Backfills) backfills
the range into an empty schema, in its own process with the project's ``dagster.yaml``;
every entry must land once.

Prints the requests the simulator admitted per second between the run's first and last
request, as a share of the limit, and the share of requests answered 429.
Targets: at least 85 % of the limit, at most 5 % answered 429.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import describe_machine  # noqa: E402
from benchmarks._simulator import run_to_end, weeks_parser, weeks_simulator  # noqa: E402
from benchmarks._support import WorkDates, postgres, raw_entry_counts, scratch_schema  # noqa: E402

RATE_TARGET = 0.85
REFUSED_TARGET = 0.05


def main() -> None:
    parser = weeks_parser(__doc__, agents=40, latency_ms=100)
    parser.add_argument("--limit", type=int, default=3, help="requests per one-second window")
    parser.add_argument("--retry-after", action="store_true", help="429s carry Retry-After")
    args = parser.parse_args()
    dates = WorkDates.weeks(args.weeks)
    with (
        postgres(args.database_url) as url,
        weeks_simulator(args, dates) as simulator,
        scratch_schema(url) as schema,
    ):
        # generated before the clock starts
        expected = simulator.count_entries(dates.first, dates.last)
        simulator.set_faults(
            latency_seconds=args.latency_ms / 1000,
            rate_limit_per_second=args.limit,
            rate_limit_style="fixed-window",
            rate_limit_header="Retry-After" if args.retry_after else "none",
        )
        seconds = run_to_end(simulator, url, schema, dates)
        stats = simulator.stats()
        rows, distinct = raw_entry_counts(url, schema)
    assert rows == distinct == expected, f"{rows} rows ({distinct} distinct), {expected} expected"
    span = stats["last_request_at"] - stats["first_request_at"]
    admitted = stats["requests"] - stats["token_requests"] - stats["rate_limited"]
    sent = stats["requests"] - stats["token_requests"]
    rate = admitted / span
    share = rate / args.limit
    refused = stats["rate_limited"] / sent
    print(f"machine: {describe_machine()}")
    print(
        f"{args.agents} agents, work dates {dates}: {expected:,} entries, every one "
        f"stored once; pages of at most {args.page_cap}, {args.latency_ms:g} ms per request"
    )
    print(
        f"limit: {args.limit} requests per 1 s window, ISO X-Rate-Limit-Reset, "
        f"{'Retry-After' if args.retry_after else 'no Retry-After'} on 429s"
    )
    print(f"run: {seconds:.1f} s (the command, start-up included)")
    print(
        f"requests: {sent} sent, {admitted} admitted, {stats['rate_limited']} answered 429, "
        f"over {span:.1f} s from the first to the last"
    )
    print(
        f"admitted per second: {rate:.2f} = {share:.0%} of the limit "
        f"(target >= {RATE_TARGET:.0%}: {'met' if share >= RATE_TARGET else 'MISSED'})"
    )
    print(
        f"answered 429: {refused:.1%} "
        f"(target <= {REFUSED_TARGET:.0%}: {'met' if refused <= REFUSED_TARGET else 'MISSED'})"
    )


if __name__ == "__main__":
    main()

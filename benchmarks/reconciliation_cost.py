"""What the check ``hours_match_jibble`` adds to deriving weekly hours, against a remote Jibble.

    .venv/bin/python benchmarks/reconciliation_cost.py --agents 40 --weeks 12 --latency-ms 150
        [--rate-limit 20] [--rounds 3] [--database-url postgresql://...]

A simulator process serves the organisation with the given latency (and rate limit); the
work dates are ingested and derived once, then each round runs the weekly hours of every
week in one run, as ``derive_weekly_hours`` does, with the check and without it, in
alternating order. Prints the wall times, the check's requests per week (from the
simulator's counters) and what the check costs per week.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import describe_machine  # noqa: E402
from benchmarks._simulator import weeks_parser, weeks_simulator  # noqa: E402
from benchmarks._support import Stopwatch, WorkDates, alternating, median, postgres, scratch_schema  # noqa: E402
from jibble_pipeline.assets.reconciliation import hours_match_jibble  # noqa: E402
from jibble_pipeline.assets.sessions import derive_daily_hours  # noqa: E402
from jibble_pipeline.assets.snapshots import activities, agents, client_groups  # noqa: E402
from jibble_pipeline.assets.time_entries import fetch_time_entries  # noqa: E402
from jibble_pipeline.assets.weekly import weekly_hours  # noqa: E402
from jibble_pipeline.partitions import range_tags  # noqa: E402
from jibble_pipeline.resources import pipeline_resources, server_jibble  # noqa: E402

ASSETS = [agents, client_groups, activities, fetch_time_entries, derive_daily_hours, weekly_hours]


def main() -> None:
    parser = weeks_parser(__doc__, agents=40, latency_ms=150, rounds=3)
    parser.add_argument("--rate-limit", type=float, default=0)
    args = parser.parse_args()
    dates = WorkDates.weeks(args.weeks)
    first, last = dates.first, dates.last
    times: dict[str, list[float]] = {"with check": [], "without": []}
    check_requests: list[int] = []
    with (
        postgres(args.database_url) as url,
        scratch_schema(url) as schema,
        weeks_simulator(args, dates) as sim,
    ):
        resources = pipeline_resources(server_jibble(sim), url, schema)
        instance = dg.DagsterInstance.ephemeral()

        def run(selection: list, checks: list) -> float:
            with Stopwatch() as watch:
                result = dg.materialize(
                    [*ASSETS, *checks], selection=selection, instance=instance,
                    resources=resources, tags=range_tags(*weeks),
                )  # fmt: skip
            assert result.success
            return watch.seconds

        weeks = (first, last)
        ingest = dg.materialize(
            [*ASSETS], selection=ASSETS[:-1], instance=instance, resources=resources,
            tags=range_tags(first, last),
            run_config={"ops": {"derive_daily_hours": {"config": {"now": dates.now.isoformat()}}}},
        )  # fmt: skip
        assert ingest.success
        weeks = (first, last - timedelta(days=6))  # the Mondays
        sim.set_faults(
            latency_seconds=args.latency_ms / 1000, rate_limit_per_second=args.rate_limit
        )
        for round_index, name in alternating("with check", "without", args.rounds):
            before = sim.stats()["requests"]
            checks = [hours_match_jibble] if name == "with check" else []
            times[name].append(run([weekly_hours], checks))
            if name == "with check":
                check_requests.append(sim.stats()["requests"] - before)
            print(f"round {round_index + 1}: {name:<10} {times[name][-1]:6.1f} s", flush=True)

    extra = [w - o for w, o in zip(times["with check"], times["without"], strict=True)]
    print()
    print(f"machine: {describe_machine()}")
    limit = f", limit {args.rate_limit:g} requests/s" if args.rate_limit else ""
    print(f"{args.agents} agents, {args.weeks} weeks ({first}..{last}) in one weekly run; "
          f"{args.latency_ms:g} ms per request{limit}")  # fmt: skip
    print(f"with the check: {', '.join(f'{t:.1f}' for t in times['with check'])} s")
    print(f"without:        {', '.join(f'{t:.1f}' for t in times['without'])} s")
    print(f"the check's requests: {median(check_requests):.0f} "
          f"({median(check_requests) / args.weeks:.1f} per week, token included)")  # fmt: skip
    print(f"the check's cost: {median(extra):.1f} s a run = {median(extra) / args.weeks:.2f} s "
          "per week (median of the rounds)")  # fmt: skip


if __name__ == "__main__":
    main()

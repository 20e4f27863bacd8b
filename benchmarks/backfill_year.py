"""A year of raw entries of a 400-agent organisation, backfilled in one Dagster run.

    .venv/bin/python benchmarks/backfill_year.py --agents 400 --days 365
        [--page-cap 100] [--pg-option enable_nestloop=off] [--database-url postgresql://...]
        [--latency-ms 100] [--rate-limit 20] [--error-rate 0.03] [--concurrency 8]
        [--max-rps 20]

The ``--latency-ms``/``--rate-limit``/``--error-rate``/``--drop-rate`` options make the
simulator behave like the remote Jibble (a round trip per request, a token-bucket limit
answering 429, transient faults); ``--concurrency`` and ``--max-rps`` are the pipeline's
settings (``JIBBLE_CONCURRENCY``, ``JIBBLE_MAX_REQUESTS_PER_SECOND``).

The simulator runs in its own process (``python -m jibble_pipeline.simulator``, clock fixed
two days after the last work date, so every entry of the range exists). Before the clock
starts, one ``$count`` query makes it generate and sort the range (ground truth, and what is
timed is then serving, not generating). The backfill is the real thing: the project's
``fetch_time_entries`` multi-asset (``raw_time_entries`` + ``quarantined_entries``)
materialised in this process for the partition range, as a single run (run tags
``dagster/asset_partition_range_start/end``, as ``dg launch --partition-range`` sets them),
with the project's Jibble resource and Postgres IO manager into an empty warehouse schema.

Prints the run's wall time, entries/s, where the run's time went (from the run's own
events: fetch + validation + frame, then the IO manager's write), the peak RSS of this
process (which does the run), and checks the loaded rows against the simulator's count.
Targets: <= 10 min and <= 1 GiB for 400 agents x 365 days. ``--pg-option`` passes session
settings to the pipeline's warehouse connections (what-if measurements only).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import current_rss_mib, describe_machine, peak_rss_mib, process_cpu_seconds  # noqa: E402
from benchmarks._simulator import (  # noqa: E402
    add_api_arguments,
    api_conditions,
    days_parser,
    describe_api,
    simulator_process,
)
from benchmarks._support import Stopwatch, WorkDates, add_database_arguments, scratch_database  # noqa: E402
from jibble_pipeline.assets.time_entries import fetch_time_entries  # noqa: E402
from jibble_pipeline.partitions import range_tags  # noqa: E402
from jibble_pipeline.resources import pipeline_resources, server_jibble  # noqa: E402

TARGET_SECONDS = 600
TARGET_RSS_MIB = 1024
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def step_phases(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Seconds from the run's start to its step's landmarks (from the event log)."""
    records = instance.all_logs(run_id)
    start = records[0].timestamp
    phases: dict[str, float] = {}
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        name = event.event_type_value
        output = getattr(event.event_specific_data, "step_output_handle", None)
        output_name = getattr(output, "output_name", None)
        if name in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):
            phases[name] = record.timestamp - start
        elif name in ("STEP_OUTPUT", "HANDLED_OUTPUT"):
            output_name = output_name or getattr(event.event_specific_data, "output_name", None)
            phases[f"{name}:{output_name}"] = record.timestamp - start
        elif name == "RUN_SUCCESS" or name == "RUN_FAILURE":
            phases[name] = record.timestamp - start
    return phases


def main() -> None:
    parser = days_parser(__doc__, days=365)
    parser.add_argument("--page-size", type=int, default=1000, help="the pipeline's $top")
    add_database_arguments(parser, session_settings_for="the pipeline")
    add_api_arguments(parser)
    args = parser.parse_args()

    dates = WorkDates.days_from(args.start, args.days)
    first, last = dates.first, dates.last
    with (
        scratch_database(args.database_url, args.pg_option) as database,
        simulator_process(
            agents=args.agents, start=first, now=dates.now, page_cap=args.page_cap
        ) as simulator,
    ):
        with Stopwatch() as warm:
            expected = simulator.count_entries(first, last)
        jibble = server_jibble(
            simulator,
            page_size=args.page_size,
            concurrency=args.concurrency,
            max_requests_per_second=args.max_rps,
        )
        resources = pipeline_resources(jibble, database.session_url(), database.schema)
        instance = dg.DagsterInstance.ephemeral()
        rss_before = current_rss_mib()
        print(
            f"simulator ready: {expected:,} entries for {first}..{last} "
            f"(generated in {warm.seconds:.1f} s); backfilling in one run...",
            flush=True,
        )
        simulator.set_faults(**api_conditions(args))  # from now on; its stats start again
        cpu_before = time.process_time(), process_cpu_seconds(simulator.pid)
        with Stopwatch() as run:
            result = dg.materialize(
                [fetch_time_entries],
                instance=instance,
                resources=resources,
                tags=range_tags(first, last),
                run_config=QUIET,
                raise_on_error=False,
            )
        cpu = (
            time.process_time() - cpu_before[0],
            process_cpu_seconds(simulator.pid) - cpu_before[1],
        )
        peak = peak_rss_mib()
        served = simulator.stats()
        stored = database.count_rows("raw_time_entries")
        quarantined = database.count_rows("quarantined_entries")
        phases = step_phases(instance, result.run_id)
        tags = instance.get_run_by_id(result.run_id).tags

    start_step = phases.get("STEP_START", 0.0)
    step = phases.get("STEP_SUCCESS", phases.get("STEP_FAILURE", run.seconds)) - start_step
    print()
    print(f"machine: {describe_machine()}")
    print(database.describe("the pipeline"))
    print(
        f"organisation: {args.agents} agents, work dates {first}..{last} ({args.days} days), "
        f"simulator pages of at most {args.page_cap} rows, pipeline $top {args.page_size}"
    )
    print(describe_api(args))
    print(f"run: {'succeeded' if result.success else 'FAILED'} ({result.run_id})")
    print(
        f"entries: {expected:,} at the simulator, {stored:,} stored, {quarantined:,} quarantined"
        f" -> {'complete' if stored == expected else 'MISMATCH'}"
    )
    limited = served.get("rate_limited", 0)
    print(
        f"simulator answered {served['requests']:,} requests: {served['pages']:,} pages, "
        f"{limited:,} x 429 ({limited / max(1, served['requests']):.2%}), "
        f"{served['server_errors']:,} x 5xx, {served['dropped']:,} dropped"
    )
    print(
        f"  the run's own count: {tags.get('jibble/requests', '?')} requests, "
        f"{tags.get('jibble/retries', '?')} retries, {tags.get('jibble/rate_limited', '?')} x 429"
    )
    print(f"wall time of the run: {run.seconds:8.1f} s = {expected / run.seconds:,.0f} entries/s")
    print(f"  run start -> step start:            {start_step:8.1f} s")
    print(
        f"  the fetch step (fetched and landed): {step:8.1f} s = "
        f"{served['pages'] / step:,.1f} pages/s, {served['requests'] / step:,.1f} requests/s"
    )
    if args.rate_limit:
        print(
            f"  pages/s as a share of the {args.rate_limit:g} requests/s limit: "
            f"{served['pages'] / step / args.rate_limit:.1%}"
        )
    print(
        f"CPU during the run: this process (the run) {cpu[0]:.1f} s, simulator {cpu[1]:.1f} s "
        f"(2 cores are shared with PostgreSQL)"
    )
    print(
        f"memory (RSS of this process, which does the run): {rss_before:,.0f} MiB before, "
        f"{peak:,.0f} MiB at peak"
    )
    minutes_ok = run.seconds <= TARGET_SECONDS
    memory_ok = peak <= TARGET_RSS_MIB
    print(
        f"targets (400 agents x 365 days): <= {TARGET_SECONDS // 60} min "
        f"{'met' if minutes_ok else 'MISSED'} at this size, <= 1 GiB "
        f"{'met' if memory_ok else 'MISSED'} at this size"
    )


if __name__ == "__main__":
    main()

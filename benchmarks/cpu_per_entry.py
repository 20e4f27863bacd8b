"""CPU seconds per 100,000 entries of the raw-entry step, against a minimal reference loader.

    .venv/bin/python benchmarks/cpu_per_entry.py --agents 400 --weeks 12 [--rounds 2]
        [--latency-ms 100] [--database-url postgresql://...]

One simulator process serves the range (clock fixed after it; pages kept as the bytes sent,
so that once warmed it spends little CPU: its own CPU is printed). Each round runs, in
alternating order, each in a process of its own:

- the pipeline's raw-entry step: ``fetch_time_entries`` materialised for the range as one
  run (validation, quarantine, frames, COPY and merge, progress rows), into an empty schema;
- ``benchmarks/reference_loader.py``: httpx with 8 requests in flight, ``$skip`` paging, a
  text COPY of the payloads into one table, no validation.

Both count their CPU from after their imports (user + system, every thread). Prints CPU
seconds per 100,000 entries of each and their ratio. Target: at most 2x the reference.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import describe_machine, process_cpu_seconds  # noqa: E402
from benchmarks._simulator import Simulator, weeks_parser, weeks_simulator  # noqa: E402
from benchmarks._support import (  # noqa: E402
    WorkDates,
    alternating,
    describe_ratios,
    drop_table,
    postgres,
    scratch_schema,
)

TARGET = 2.0
HERE = Path(__file__).resolve().parent


def pipeline_child(argv: list[str]) -> None:
    """The raw-entry step in this process; prints entries, CPU and wall seconds as JSON."""
    url, client_id, secret, first, last, database_url, schema = argv
    import dagster as dg

    from jibble_pipeline.assets.time_entries import fetch_time_entries
    from jibble_pipeline.partitions import range_tags
    from jibble_pipeline.resources import pipeline_resources, server_jibble

    server = Simulator(url, client_id, secret, 0)
    resources = pipeline_resources(server_jibble(server, page_size=1000), database_url, schema)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    instance = dg.DagsterInstance.ephemeral()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu, started = usage.ru_utime + usage.ru_stime, time.perf_counter()
    result = dg.materialize(
        [fetch_time_entries],
        instance=instance,
        resources=resources,
        tags=range_tags(date.fromisoformat(first), date.fromisoformat(last)),
        run_config=quiet,
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    assert result.success
    entries = int(instance.get_run_by_id(result.run_id).tags["jibble/entries"])
    print(
        json.dumps(
            {
                "entries": entries,
                "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu,
                "wall_seconds": time.perf_counter() - started,
            }
        )
    )


def run_child(command: list[str], simulator: Simulator) -> dict[str, float]:
    before = process_cpu_seconds(simulator.pid)
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-4000:])
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["simulator_cpu_seconds"] = process_cpu_seconds(simulator.pid) - before
    return figures


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--pipeline-child":
        pipeline_child(sys.argv[2:])
        return
    args = weeks_parser(__doc__, agents=400, latency_ms=100, rounds=2).parse_args()
    dates = WorkDates.weeks(args.weeks)
    results: dict[str, list[dict[str, float]]] = {"pipeline": [], "reference": []}
    with postgres(args.database_url) as url, weeks_simulator(args, dates) as simulator:
        expected = simulator.count_entries(dates.first, dates.last)
        simulator.set_faults(latency_seconds=args.latency_ms / 1000)
        common = [simulator.url, simulator.client_id, simulator.client_secret, str(dates.first),
                  str(dates.last), url]  # fmt: skip
        commands = {
            "pipeline": [sys.executable, __file__, "--pipeline-child", *common],
            "reference": [sys.executable, str(HERE / "reference_loader.py"), *common],
        }
        # round 0 warms the server's pages
        for round_index, name in alternating("reference", "pipeline", args.rounds + 1):
            with scratch_schema(url) as schema:
                target = schema if name == "pipeline" else f"{schema}_reference"
                command = [*commands[name], target]
                if name == "reference":
                    command[-1] = f"public.{target}"
                figures = run_child(command, simulator)
                if name == "reference":
                    drop_table(url, f"public.{target}")
            assert figures["entries"] == expected, (name, figures["entries"], expected)
            if round_index:
                results[name].append(figures)
                print(
                    f"round {round_index}: {name:<9} {figures['cpu_seconds']:6.1f} CPU-s, "
                    f"{figures['wall_seconds']:6.1f} s; simulator "
                    f"{figures['simulator_cpu_seconds']:.1f} CPU-s",
                    flush=True,
                )
    per_100k = {
        name: [f["cpu_seconds"] / f["entries"] * 100_000 for f in runs]
        for name, runs in results.items()
    }
    ratios = [p / r for p, r in zip(per_100k["pipeline"], per_100k["reference"], strict=True)]
    print()
    print(f"machine: {describe_machine()}")
    print(
        f"{args.agents} agents, work dates {dates}: {expected:,} entries; pages of at "
        f"most {args.page_cap}, {args.latency_ms:g} ms per request"
    )
    for name, values in per_100k.items():
        print(f"{name:<9} CPU-s per 100,000 entries: {', '.join(f'{v:.1f}' for v in values)}")
    print(describe_ratios("pipeline / reference", ratios, TARGET))


if __name__ == "__main__":
    main()

"""The 10-minute tick's wall time with 10k, 100k and 1M entries of history in the warehouse.

    .venv/bin/python benchmarks/tick_cost.py --sizes 10000,100000,1000000 [--ticks 3]
        [--agents 400] [--database-url postgresql://...]

The tick is the real thing: the project's ``Definitions`` (imported with the environment
pointing at a simulator process and the benchmark's warehouse schema), the schedule
``refresh_every_10_minutes`` evaluated for a scheduled time (default: the latest Thursday
18:00 UTC, so that the window holds busy work days), and the job it targets,
``refresh_daily_assets`` (snapshots, raw entries, quarantine, sessions, attendance and
their asset checks over work dates UTC -2..+1), executed in this process with the run tags
the schedule asked for. The simulator (400 agents, clock fixed at the scheduled time)
serves those dates.

History is loaded quickly and outside the clock: synthetic raw entries (12 punches per
agent-day, ~650-byte payloads, as ``benchmarks/derive_hours.py`` makes them), bulk-COPYed
into ``raw_time_entries`` for dates well before the window, with their sessions and daily
attendance derived by the project's rules and COPYed too; then ``ANALYZE`` (a warehouse that
has had history for a while has statistics). Per size: one warm-up tick (the window's first
load), then ``--ticks`` measured ticks (median). Target: <= 15 s, and flat: the largest
history's tick / the smallest's <= 1.2. Not included: the run's process start-up when the
daemon launches it (a subprocess per run, 7-9 s here; see STACK-NOTES.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.types.json import set_json_dumps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import describe_machine, peak_rss_mib  # noqa: E402
from benchmarks._simulator import simulator_process  # noqa: E402
from benchmarks._support import Stopwatch, add_database_arguments, median, scratch_database  # noqa: E402
from benchmarks.derive_hours import group_history, synthetic_entries  # noqa: E402
from jibble_pipeline.rules.attendance import derive_attendance  # noqa: E402
from jibble_pipeline.rules.groups import assign_groups  # noqa: E402
from jibble_pipeline.rules.sessions import derive_sessions  # noqa: E402
from jibble_pipeline.schema import TABLES, Table  # noqa: E402
from jibble_pipeline.warehouse.bulk import python_values  # noqa: E402

TARGET_SECONDS = 15.0
TARGET_FLATNESS = 1.2
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
PADDING = "x" * 330  # brings the synthetic payloads to the simulator's ~650 bytes


def history_frames(count: int) -> dict[str, pd.DataFrame]:
    """``count`` synthetic raw entries (from 2025-01-01 on) and what the rules derive."""
    entries = synthetic_entries(count)
    now = datetime(2025, 12, 31, tzinfo=UTC)
    result = derive_sessions(entries, now=now, open_after=timedelta(hours=16))
    sessions = assign_groups(result.sessions, group_history(entries))
    sessions["derived_at"] = pd.Timestamp(now)
    attendance = derive_attendance(entries, sessions, result.orphan_outs)

    raw = entries.copy()
    offsets = pd.to_timedelta(raw["offset_minutes"].astype("int64"), unit="m")
    raw["local_time"] = (raw["time_utc"] + offsets).dt.tz_localize(None)
    raw["project_id"] = None
    raw["note"] = None
    raw["created_at"] = raw["time_utc"]
    raw["updated_at"] = raw["time_utc"]
    raw["fetched_at"] = pd.Timestamp(now)
    raw["removed_at"] = pd.NaT
    raw["raw_payload"] = (
        '{"id":"' + raw["entry_id"] + '","personId":"' + raw["person_id"] + '","type":"'
        + raw["type"] + '","time":"' + raw["time_utc"].dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        + '","belongsToDate":"' + raw["belongs_to_date"].astype(str) + '","status":"'
        + raw["status"] + f'","padding":"{PADDING}"}}'
    )  # fmt: skip
    return {"raw_time_entries": raw, "sessions": sessions, "daily_attendance": attendance}


def copy_binary(url: str, schema: str, spec: Table, frame: pd.DataFrame) -> None:
    """A binary COPY of ``frame`` into ``schema.spec`` (history only: not what is measured)."""
    rows = zip(*(python_values(frame[c]) for c in spec.column_names), strict=True)
    columns = sql.SQL(", ").join(map(sql.Identifier, spec.column_names))
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(schema, spec.name), columns
    )
    with psycopg.connect(url, options="-c TimeZone=UTC") as conn, conn.cursor() as cursor:
        set_json_dumps(lambda text: text, context=conn)
        with cursor.copy(statement) as copy:
            copy.set_types([kind.replace(" NOT NULL", "") for kind in spec.columns.values()])
            for row in rows:
                copy.write_row(row)


def reset_warehouse(url: str, schema: str) -> None:
    names = sql.SQL(", ").join(sql.Identifier(schema, name) for name in TABLES)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(names))


def analyze(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for name in TABLES:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, name)))
        conn.execute("CHECKPOINT")


def latest_weekday_tick(now: datetime) -> datetime:
    """The latest Thursday 18:00 UTC before ``now``: its window (Tuesday..Friday) holds two
    full work days, one nearly full and the start of the next, as a weekday tick does."""
    moment = datetime.combine(now.date(), datetime.min.time(), UTC) + timedelta(hours=18)
    while moment.weekday() != 3 or moment > now:
        moment -= timedelta(days=1)
    return moment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--ticks", type=int, default=3, help="measured ticks per size")
    parser.add_argument("--agents", type=int, default=400)
    parser.add_argument("--page-cap", type=int, default=100, help="the simulator's page cap")
    parser.add_argument(
        "--scheduled",
        type=lambda text: datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC),
        help="the tick's scheduled time (default: the latest Thursday 18:00 UTC, a busy window)",
    )
    add_database_arguments(parser, session_settings_for="the pipeline")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    scheduled = args.scheduled or latest_weekday_tick(datetime.now(UTC))
    results: dict[int, list[float]] = {}
    warmups: dict[int, float] = {}
    window_rows: dict[int, int] = {}
    with (
        scratch_database(args.database_url, args.pg_option) as database,
        simulator_process(
            agents=args.agents,
            start=scheduled.date() - timedelta(days=7),
            now=scheduled,
            page_cap=args.page_cap,
        ) as simulator,
    ):
        url, schema = database.url, database.schema
        os.environ.update(simulator.environment())
        os.environ["JIBBLE_DATABASE_URL"] = database.session_url()
        os.environ["JIBBLE_DB_SCHEMA"] = schema
        import dagster as dg

        from jibble_pipeline.definitions import defs, refresh_every_10_minutes
        from jibble_pipeline.warehouse.store import Warehouse

        Warehouse(url, schema).ensure_schema()
        tick = refresh_every_10_minutes.evaluate_tick(
            dg.build_schedule_context(scheduled_execution_time=scheduled)
        )
        request = tick.run_requests[0]
        job = defs.resolve_job_def(request.job_name or "refresh_daily_assets")
        first = date.fromisoformat(request.tags["dagster/asset_partition_range_start"])
        last = date.fromisoformat(request.tags["dagster/asset_partition_range_end"])
        expected = simulator.count_entries(first, last)
        instance = dg.DagsterInstance.ephemeral()

        def run_tick() -> float:
            with Stopwatch() as watch:
                result = job.execute_in_process(
                    instance=instance, tags=request.tags, run_config=QUIET
                )
            assert result.success
            return watch.seconds

        for size in sizes:
            reset_warehouse(url, schema)
            with Stopwatch() as loading:
                frames = history_frames(size)
                history = len(frames["raw_time_entries"])
                for name, frame in frames.items():
                    copy_binary(url, schema, TABLES[name], frame)
                del frames
                analyze(url, schema)
            warmups[size] = run_tick()
            results[size] = [run_tick() for _ in range(args.ticks)]
            stored = database.count_rows("raw_time_entries")
            window_rows[size] = stored - history
            print(
                f"history {size:>9,} entries (loaded in {loading.seconds:5.1f} s): warm-up tick "
                f"{warmups[size]:5.2f} s, ticks "
                + ", ".join(f"{s:5.2f}" for s in results[size])
                + f" s; {stored:,} raw entries stored",
                flush=True,
            )

    print()
    print(f"machine: {describe_machine()}")
    print(database.describe("the pipeline"))
    print(
        f"tick scheduled at {scheduled.isoformat()}: work dates {first}..{last} "
        f"({expected:,} entries at the simulator, {args.agents} agents), job {job.name}"
    )
    for size in sizes:
        ok = "complete" if window_rows[size] == expected else "MISMATCH"
        print(
            f"  history {size:>9,}: tick {median(results[size]):6.2f} s (median of "
            f"{args.ticks}), window rows {window_rows[size]:,} ({ok})"
        )
    largest, smallest = median(results[sizes[-1]]), median(results[sizes[0]])
    flatness = largest / smallest
    slowest = max(median(v) for v in results.values())
    print(
        f"slowest tick {slowest:.2f} s (target <= {TARGET_SECONDS:.0f} s: "
        f"{'met' if slowest <= TARGET_SECONDS else 'MISSED'}); largest/smallest history "
        f"{flatness:.2f} (target <= {TARGET_FLATNESS}: "
        f"{'met' if flatness <= TARGET_FLATNESS else 'MISSED'})"
    )
    print(f"peak RSS of this process: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()

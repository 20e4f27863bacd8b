"""This pipeline's raw-entry load against dlt's, same simulator data, same run, same machine.

    .venv/bin/pip install --require-hashes -r requirements/bench.txt   # dlt: the bench extra
    .venv/bin/python benchmarks/against_dlt.py --agents 400 --days 90 [--rounds 1]
        [--page-cap 100] [--database-url postgresql://...]

One simulator process (``python -m jibble_pipeline.simulator``, clock fixed after the range)
serves both. Each round loads the range into an empty schema twice, in alternating order:

* this pipeline: the ``fetch_time_entries`` multi-asset materialised for the partition
  range in one Dagster run (as ``benchmarks/backfill_year.py`` does);
* dlt: ``rest_api_source`` with OAuth2 client credentials against the simulator's
  ``/connect/token``, the same ``$filter``/``$orderby``, an offset paginator on
  ``$skip``/``$top`` that advances by the rows actually received (the simulator caps pages
  below ``$top`` and sends no ``nextLink``), ``merge`` on ``id`` (idempotent, like the
  pipeline) into the ``postgres`` destination.

Both loads are checked against the simulator's count. Before that, on a one-week range, dlt
is run as people configure it at first, to show whether its defaults lose pages: no
paginator (auto-detection), and ``OffsetPaginator(limit=$top)``.
Target: this pipeline >= 3x faster than dlt.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # no calls home from a benchmark
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dagster as dg  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import describe_machine  # noqa: E402
from benchmarks._simulator import (  # noqa: E402
    ENTRY_ORDER,
    Simulator,
    days_parser,
    simulator_process,
)
from benchmarks._support import (  # noqa: E402
    Stopwatch,
    WorkDates,
    add_database_arguments,
    drop_schema,
    median,
    postgres,
    server_version,
)
from jibble_pipeline.assets.time_entries import fetch_time_entries  # noqa: E402
from jibble_pipeline.jibble.odata import between_dates  # noqa: E402
from jibble_pipeline.partitions import range_tags  # noqa: E402
from jibble_pipeline.resources import pipeline_resources, server_jibble  # noqa: E402

TARGET = 3.0
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


# ------------------------------------------------------------------------------ this pipeline


def pipeline_load(simulator: Simulator, url: str, schema: str, first: date, last: date) -> float:
    resources = pipeline_resources(server_jibble(simulator), url, schema)
    with Stopwatch() as watch:
        result = dg.materialize(
            [fetch_time_entries],
            instance=dg.DagsterInstance.ephemeral(),
            resources=resources,
            tags=range_tags(first, last),
            run_config=QUIET,
        )
    assert result.success
    return watch.seconds


# ------------------------------------------------------------------------------------- dlt


def received_rows_paginator() -> Any:
    """``$skip`` advanced by the rows a page actually held, until an empty page: what Jibble's
    silent page cap needs (dlt's ``OffsetPaginator`` advances by ``limit``, i.e. ``$top``)."""
    from dlt.sources.helpers.rest_client.paginators import OffsetPaginator

    class ReceivedRowsOffsetPaginator(OffsetPaginator):
        def update_state(self, response: Any, data: list[Any] | None = None) -> None:
            if not data:
                self._has_next_page = False
                return
            self.current_value += len(data)

    return ReceivedRowsOffsetPaginator(
        limit=1000, offset_param="$skip", limit_param="$top", total_path=None
    )


def dlt_credentials(url: str) -> str:
    """dlt's postgres credentials: it insists on a password (trust authentication ignores it)
    and on a host name, so a Unix socket directory goes in the ``host`` query parameter,
    which libpq prefers to the URL's host."""
    params = conninfo_to_dict(url)
    user = params.get("user", "postgres")
    password = quote(params.get("password") or "unused", safe="")
    database = params.get("dbname", "postgres")
    host = params.get("host", "localhost")
    port = params.get("port", "5432")
    if host.startswith("/"):
        return f"postgresql://{user}:{password}@localhost:{port}/{database}?host={quote(host)}"
    return f"postgresql://{user}:{password}@{host}:{port}/{database}"


def dlt_load(
    simulator: Simulator,
    url: str,
    schema: str,
    first: date,
    last: date,
    paginator: Any | None,
    work_dir: Path,
) -> float:
    """A dlt pipeline run into dataset ``schema``; the paginator None lets dlt detect one."""
    import dlt
    from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
    from dlt.sources.rest_api import rest_api_source

    client: dict[str, Any] = {
        "base_url": f"{simulator.url}/v1/",
        "auth": OAuth2ClientCredentials(
            access_token_url=f"{simulator.url}/connect/token",
            client_id=simulator.client_id,
            client_secret=simulator.client_secret,
        ),
    }
    if paginator is not None:
        client["paginator"] = paginator
    source = rest_api_source(
        {
            "client": client,
            "resources": [
                {
                    "name": "time_entries",
                    "primary_key": "id",
                    "write_disposition": "merge",
                    "endpoint": {
                        "path": "TimeEntries",
                        "params": {
                            "$filter": between_dates("belongsToDate", first, last),
                            "$orderby": ENTRY_ORDER,
                        },
                        "data_selector": "value",
                    },
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name=f"jibble_{schema}",
        pipelines_dir=str(work_dir),
        destination=dlt.destinations.postgres(credentials=dlt_credentials(url)),
        dataset_name=schema,
    )
    with Stopwatch() as watch:
        pipeline.run(source)
    return watch.seconds


# --------------------------------------------------------------------------------- checks


def count_ids(url: str, schema: str, table: str, column: str) -> tuple[int, int]:
    """(rows, distinct ids) of a table; (0, 0) when it was never created."""
    query = sql.SQL("SELECT count(*), count(DISTINCT {}) FROM {}").format(
        sql.Identifier(column), sql.Identifier(schema, table)
    )
    with psycopg.connect(url) as conn:
        try:
            return conn.execute(query).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0, 0


def check_dlt_defaults(
    simulator: Simulator, url: str, first: date, work_dir: Path
) -> list[tuple[str, int, int]]:
    """One week loaded by dlt as configured at first: (configuration, loaded, expected)."""
    from dlt.sources.helpers.rest_client.paginators import OffsetPaginator

    last = first + timedelta(days=6)
    expected = simulator.count_entries(first, last)
    configurations = [
        ("no paginator (dlt detects one)", None),
        (
            "OffsetPaginator(limit=1000, $skip/$top, total_path=None)",
            OffsetPaginator(limit=1000, offset_param="$skip", limit_param="$top", total_path=None),
        ),
        ("offset advanced by rows received (used below)", received_rows_paginator()),
    ]
    outcomes = []
    for number, (label, paginator) in enumerate(configurations):
        schema = f"bench_dlt_defaults_{number}_{os.getpid()}"
        try:
            try:
                dlt_load(simulator, url, schema, first, last, paginator, work_dir)
                loaded = count_ids(url, schema, "time_entries", "id")[1]
            except Exception as error:  # a configuration that fails outright is an outcome too
                print(f"  {label}: failed: {type(error).__name__}: {str(error)[:200]}")
                loaded = -1
            outcomes.append((label, loaded, expected))
        finally:
            drop_schema(url, schema)
    return outcomes


def main() -> None:
    parser = days_parser(__doc__, days=90)
    parser.add_argument("--rounds", type=int, default=1)
    add_database_arguments(parser)
    args = parser.parse_args()

    import dlt

    dates = WorkDates.days_from(args.start, args.days)
    first, last = dates.first, dates.last
    timings: dict[str, list[float]] = {"pipeline": [], "dlt": []}
    counts: dict[str, list[tuple[int, int]]] = {"pipeline": [], "dlt": []}
    with (
        postgres(args.database_url) as url,
        tempfile.TemporaryDirectory(prefix="jibble-dlt-") as folder,
        simulator_process(
            agents=args.agents, start=first, now=dates.now, page_cap=args.page_cap
        ) as simulator,
    ):
        version = server_version(url)
        print("dlt as configured at first, one week:", flush=True)
        defaults = check_dlt_defaults(simulator, url, first, Path(folder))
        for label, loaded, expected in defaults:
            print(f"  {label}: {loaded:,} of {expected:,} entries", flush=True)
        with Stopwatch() as warm:
            expected = simulator.count_entries(first, last)
        print(f"simulator ready: {expected:,} entries (generated in {warm.seconds:.1f} s)")
        for round_number in range(1, args.rounds + 1):
            order = ["pipeline", "dlt"] if round_number % 2 else ["dlt", "pipeline"]
            for name in order:
                schema = f"bench_{name}_{round_number}_{os.getpid()}"
                try:
                    if name == "pipeline":
                        seconds = pipeline_load(simulator, url, schema, first, last)
                        counted = count_ids(url, schema, "raw_time_entries", "entry_id")
                    else:
                        paginator = received_rows_paginator()
                        seconds = dlt_load(
                            simulator, url, schema, first, last, paginator, Path(folder)
                        )
                        counted = count_ids(url, schema, "time_entries", "id")
                finally:
                    drop_schema(url, schema)
                timings[name].append(seconds)
                counts[name].append(counted)
                print(
                    f"round {round_number}: {name:<8} {seconds:7.1f} s, {counted[0]:,} rows, "
                    f"{counted[1]:,} distinct ids",
                    flush=True,
                )

    pipeline_seconds, dlt_seconds = median(timings["pipeline"]), median(timings["dlt"])
    ratio = dlt_seconds / pipeline_seconds
    print()
    print(f"machine: {describe_machine()}")
    print(f"database: PostgreSQL {version} ({'given URL' if args.database_url else 'embedded'})")
    print(f"dlt {dlt.__version__}")
    print(
        f"organisation: {args.agents} agents, work dates {first}..{last}, simulator pages of at "
        f"most {args.page_cap} rows; {expected:,} entries (ground truth)"
    )
    for name, seconds in (("this pipeline", pipeline_seconds), ("dlt", dlt_seconds)):
        print(f"  {name:<14} {seconds:7.1f} s  {expected / seconds:>8,.0f} entries/s (median)")
    for name in ("pipeline", "dlt"):
        complete = all(c == (expected, expected) for c in counts[name])
        print(f"  {name} loaded every entry once: {'yes' if complete else 'NO'} {counts[name]}")
    print(f"ratio dlt time / pipeline time: {ratio:.2f} (target >= {TARGET}: ", end="")
    print(f"{'met' if ratio >= TARGET else 'MISSED'})")
    lost = [label for label, loaded, exp in defaults[:2] if loaded != exp]
    print(f"dlt configurations that lose or fail on data: {', '.join(lost) or 'none'}")


if __name__ == "__main__":
    main()

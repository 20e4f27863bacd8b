"""``jibble-pipeline``: set up, backfill recent weeks and serve the Dagster UI."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Schedule and sensor state is kept per code location name: one name however Dagster starts.
CODE_LOCATION_NAME = "jibble_pipeline"
# Runs started here log step events at INFO (the UI keeps the full debug log).
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def use_project_dagster_home() -> Path:
    """DAGSTER_HOME defaults to the project folder, whose dagster.yaml keeps Dagster's own
    run, event and schedule storage in the same Postgres as the warehouse."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        if not (PROJECT_ROOT / "dagster.yaml").exists():
            sys.exit("Set DAGSTER_HOME to a folder holding the project's dagster.yaml.")
        os.environ["DAGSTER_HOME"] = home = str(PROJECT_ROOT)
    return Path(home)


class UsageError(ValueError):
    """A mistake on the command line; the message says what to fix."""


def parse_day(text: str, what: str) -> date:
    """``YYYY-MM-DD``, or ``today``/``yesterday``/``tomorrow`` (UTC)."""
    today = datetime.now(UTC).date()
    relative = {"today": today, "yesterday": today - timedelta(days=1)}
    relative["tomorrow"] = today + timedelta(days=1)
    if text.lower() in relative:
        return relative[text.lower()]
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{what} must be a work date like 2025-01-06 (or today, yesterday), got {text!r}."
        ) from None


def check_range(first: date, last: date) -> None:
    """A range of work dates that has partitions, or one line saying what is wrong."""
    from jibble_pipeline.settings.pipeline import latest_work_date, load_settings

    start = load_settings().partitions_start
    if last < first:
        raise UsageError(f"The range {first}..{last} is reversed: give the earlier date first.")
    if first < start:
        raise UsageError(
            f"{first} is before the first work date, {start} (JIBBLE_PARTITIONS_START)."
        )
    if last > latest_work_date():
        raise UsageError(
            f"{last} is in the future: the latest work date is {latest_work_date()} "
            "(tomorrow in UTC, for agents east of it)."
        )


def describe_setup() -> str:
    """Where the data comes from and goes; connects to the warehouse first, so a wrong
    ``JIBBLE_DATABASE_URL`` is one line before Dagster's storage is touched."""
    from jibble_pipeline.settings.pipeline import load_settings
    from jibble_pipeline.warehouse.connection import (
        check_reachable,
        redact,
        resolve_database_url,
    )

    settings = load_settings()
    url = resolve_database_url(settings)
    check_reachable(url)
    lines = []
    if settings.demo_mode:
        lines.append(
            "DEMO MODE: JIBBLE_CLIENT_ID/JIBBLE_CLIENT_SECRET are not set, so the pipeline reads "
            "the project's local Jibble simulator (synthetic organisation), not Jibble."
        )
    else:
        lines.append(f"Jibble API: {settings.time_tracking_url} (credentials from the environment)")
    if settings.embedded_database:
        lines.append(f"Warehouse: embedded PostgreSQL, data folder {settings.embedded_data_dir}")
        lines.append(
            f"  psql: psql 'postgresql://postgres@/postgres?host={settings.embedded_data_dir}'"
        )
    else:
        lines.append(f"Warehouse: {redact(url)}")
    lines.append(f"  schema: {settings.db_schema}")
    lines.append(f"Dagster instance: DAGSTER_HOME={os.environ.get('DAGSTER_HOME', '(not set)')}")
    return "\n".join(lines)


def backfill(first: date, last: date) -> None:
    """Snapshots and daily assets for [first, last] in one run, then their weeks in another."""
    import dagster as dg

    from jibble_pipeline.definitions import defs
    from jibble_pipeline.partitions import monday_on_or_before, range_tags

    instance = dg.DagsterInstance.get()
    daily = defs.resolve_job_def("refresh_daily_assets")
    weekly = defs.resolve_job_def("derive_weekly_hours")
    print(f"Backfilling work dates {first}..{last} (one run) ...", flush=True)
    daily.execute_in_process(instance=instance, tags=range_tags(first, last), run_config=QUIET)
    weeks = (monday_on_or_before(first), monday_on_or_before(last))
    print(f"Deriving weekly hours for weeks {weeks[0]}..{weeks[1]} (one run) ...", flush=True)
    weekly.execute_in_process(instance=instance, tags=range_tags(*weeks), run_config=QUIET)
    print(describe_tables(), flush=True)


def build_digests(first_week: date, last_week: date) -> None:
    """The weeks' client digests and the report site, as the Monday job builds them; sent
    only when an email backend is configured (the demo has none: a dry run)."""
    import dagster as dg

    from jibble_pipeline.definitions import defs
    from jibble_pipeline.partitions import range_tags
    from jibble_pipeline.settings.digests import load_digest_settings

    settings = load_digest_settings()
    job = defs.resolve_job_def("send_weekly_digests")
    sending = "a dry run, nothing sent" if settings.dry_run else f"sent by {settings.email_backend}"
    print(f"Client digests and the report site for weeks {first_week}..{last_week} "
          f"({sending}) ...", flush=True)  # fmt: skip
    # The weeks' hours were just derived: the job's other steps only, not weekly_hours again.
    steps = ["client_directory", "client_digests", "sent_digests", "report_site"]
    job.execute_in_process(
        instance=dg.DagsterInstance.get(),
        tags=range_tags(first_week, last_week),
        run_config=QUIET,
        asset_selection=[dg.AssetKey(name) for name in steps],
    )
    index = settings.reports_dir / "index.html"
    print(f"Report site: {index} (`jibble-pipeline serve-reports` serves it)", flush=True)


def build_alert(day: date) -> None:
    """The operations alert of work date ``day``, as the morning schedule builds it (the
    demo's is a dry run)."""
    import dagster as dg

    from jibble_pipeline.definitions import defs
    from jibble_pipeline.settings.alerts import load_alert_settings

    job = defs.resolve_job_def("send_daily_alert")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(), partition_key=day.isoformat(), run_config=QUIET
    )
    (materialization,) = result.asset_materializations_for_node("operations_alert")
    problems = materialization.metadata["problems"].value
    sending = "a dry run, nothing sent" if load_alert_settings().dry_run else "sent"
    print(f"Operations alert for {day} ({sending}): {problems} problem(s); the message is in "
          "the metadata of operations_alert", flush=True)  # fmt: skip


def describe_tables() -> str:
    """Row counts of the warehouse tables, to show where the data went."""
    from psycopg import sql

    from jibble_pipeline.schema import TABLES
    from jibble_pipeline.settings.pipeline import load_settings
    from jibble_pipeline.warehouse.io_manager import open_warehouse

    settings = load_settings()
    warehouse = open_warehouse(
        settings.database_url, settings.db_schema, str(settings.embedded_data_dir)
    )
    counts = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, count(*) FROM {}").format(sql.Literal(name), warehouse.identifier(name))
        for name in TABLES
    )
    lines = [f"Warehouse tables ({settings.db_schema}):"]
    for name, rows in warehouse.query_frame(counts).itertuples(index=False):
        lines.append(f"  {name:<22} {rows:>9,} rows")
    return "\n".join(lines)


def command_demo(args: argparse.Namespace) -> None:
    from jibble_pipeline.partitions import monday_on_or_before
    from jibble_pipeline.settings.pipeline import load_settings

    use_project_dagster_home()
    print(describe_setup(), flush=True)
    today = datetime.now(UTC).date()
    # Whole weeks: the first Monday of the range, so no week of the demo is short.
    first = max(monday_on_or_before(today - timedelta(weeks=args.weeks)), _partitions_start())
    backfill(first, today + timedelta(days=1))
    build_digests(monday_on_or_before(first), monday_on_or_before(today))
    if load_settings().demo_mode:  # a late edit at the simulator, and the correction it makes
        from jibble_pipeline.demo_correction import show_a_correction

        show_a_correction(monday_on_or_before(today) - timedelta(days=7))
    build_alert(today - timedelta(days=1))
    if args.no_serve:
        return
    dagster = _dagster_executable()
    print(
        f"\nDagster UI: http://{args.host}:{args.port} (the 10-minute schedule is running; "
        "Ctrl-C stops it)",
        flush=True,
    )
    os.execv(
        dagster,
        [
            dagster,
            "dev",
            "-w",
            str(PROJECT_ROOT / "workspace.yaml"),  # the code location's one name
            "-h",
            args.host,
            "-p",
            str(args.port),
        ],
    )


def command_backfill(args: argparse.Namespace) -> None:
    first, last = parse_day(args.start, "START"), parse_day(args.end, "END")
    check_range(first, last)
    use_project_dagster_home()
    print(describe_setup(), flush=True)
    backfill(first, last)


def command_serve_code(args: argparse.Namespace) -> None:
    """The user-code gRPC server of a deployment (the image's entry point): the settings and
    the warehouse are checked first, so a wrong or missing one is one line, not a server
    that serves a load error."""
    print(describe_setup(), flush=True)
    dagster = _dagster_executable()
    os.execv(
        dagster,
        [
            dagster,
            "code-server",
            "start",
            "-h",
            args.host,
            "-p",
            str(args.port),
            "-m",
            "jibble_pipeline.definitions",
            "--location-name",
            CODE_LOCATION_NAME,
        ],
    )


def _dagster_executable() -> str:
    return shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))


def command_doctor(args: argparse.Namespace) -> None:
    """What the tenant does and what the pipeline will do (``jibble.doctor``); exits 1 when
    something would stop a run. Needs no warehouse and no Dagster instance."""
    from jibble_pipeline.jibble.doctor.findings import Plan
    from jibble_pipeline.jibble.doctor.probes import Doctor
    from jibble_pipeline.jibble.doctor.report import as_json, as_text, write_sample
    from jibble_pipeline.resources import jibble_resource
    from jibble_pipeline.settings.pipeline import latest_work_date, load_settings

    settings = load_settings()
    plan = Plan(
        first_date=settings.partitions_start,
        last_date=latest_work_date() - timedelta(days=1),
        concurrency=settings.concurrency,
        max_requests_per_second=settings.max_requests_per_second,
        organization_id=settings.organization_id,
    )
    where = (
        "the project's local Jibble simulator (DEMO MODE: no credentials set)"
        if settings.demo_mode
        else f"Jibble at {settings.time_tracking_url}"
    )
    if not args.json:
        print(f"Asking {where} what it accepts ...", flush=True)
    resource = jibble_resource(settings, secrets_from_env=False)
    with resource.get_client() as client:
        diagnosis = Doctor(client, plan).run()
    print(as_json(diagnosis) if args.json else as_text(diagnosis))
    if args.sample:
        written = write_sample(Path(args.sample), diagnosis.samples)
        print(f"Redacted sample of what the tenant sends: {written}", file=sys.stderr)
    if diagnosis.blocked:
        sys.exit("jibble-pipeline: a run would stop on what is marked BLOCKS above.")


def command_stop_database(_: argparse.Namespace) -> None:
    from jibble_pipeline.settings.pipeline import load_settings
    from jibble_pipeline.warehouse.embedded import stop_embedded_postgres

    settings = load_settings()
    stop_embedded_postgres(settings.embedded_data_dir)
    print(f"Stopped the embedded PostgreSQL in {settings.embedded_data_dir}")


def _partitions_start() -> date:
    from jibble_pipeline.settings.pipeline import load_settings

    return load_settings().partitions_start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jibble-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="sync, backfill the last weeks, then serve the Dagster UI"
    )
    demo.add_argument("--weeks", type=int, default=4, help="weeks of history to backfill")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=3000)
    demo.add_argument("--no-serve", action="store_true", help="backfill only, do not serve")
    demo.set_defaults(run=command_demo)
    fill = commands.add_parser(
        "backfill",
        help="backfill work dates START..END (inclusive; YYYY-MM-DD, today or yesterday)",
    )
    fill.add_argument("start")
    fill.add_argument("end")
    fill.set_defaults(run=command_backfill)
    from jibble_pipeline.digest import serve

    reports = commands.add_parser("serve-reports", help="serve the static report site")
    serve.add_arguments(reports)
    reports.set_defaults(run=serve.command_serve_reports)
    code = commands.add_parser(
        "serve-code", help="serve the definitions to a Dagster deployment (user-code gRPC server)"
    )
    code.add_argument("--host", default="0.0.0.0", help="address to listen on")
    code.add_argument("--port", type=int, default=4000, help="port to listen on")
    code.set_defaults(run=command_serve_code)
    doctor = commands.add_parser(
        "doctor",
        help="ask the Jibble tenant what it accepts, and say what the pipeline will do",
    )
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.add_argument(
        "--sample",
        metavar="DIR",
        help="also write the first page of each endpoint there, names and ids redacted",
    )
    doctor.set_defaults(run=command_doctor)
    stop = commands.add_parser("stop-database", help="stop the embedded PostgreSQL server")
    stop.set_defaults(run=command_stop_database)
    args = parser.parse_args(argv)
    from jibble_pipeline.jibble.errors import JibbleError
    from jibble_pipeline.settings.fields import ConfigurationError

    try:
        args.run(args)
    except (UsageError, ConfigurationError, ConnectionError, JibbleError) as error:
        sys.exit(f"jibble-pipeline: {error}")


if __name__ == "__main__":
    main()

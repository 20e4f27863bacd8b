"""Serves a demo organisation until Ctrl-C:
``python -m jibble_pipeline.simulator --port 8765 --agents 40 --page-cap 100 [--seed N]``.

The organisation follows the real clock, with work dates from ``--start`` to two days ahead,
like the pipeline's demo mode; ``--now 2026-01-01T00:00:00Z`` fixes its clock instead (a
dataset that does not grow while it is read, as benchmarks need). ``--latency-ms 80
--rate-limit 10`` make it behave like the remote, rate-limited API (``--rate-limit-style
fixed-window`` as AspNetCoreRateLimit limits); ``--error-rate`` and ``--drop-rate`` inject
faults. ``--orderable``, ``--no-updated-at-filter``, ``--public-reports``,
``--time-zone-field``, ``--other-organisation-agents`` and ``--hour-entries`` play the
variants of Jibble that public evidence allows (``simulator.dialect``);
``--as-public-evidence-allows`` plays all of them. Point the pipeline at it with the printed
settings.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta

from jibble_pipeline.settings.catalog import DEFAULT_PARTITIONS_START
from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation
from jibble_pipeline.simulator.dialect import TIME_ZONE_FIELDS, Dialect
from jibble_pipeline.simulator.reports import REPORT_AVAILABILITY
from jibble_pipeline.simulator.server import RATE_LIMIT_HEADERS, RATE_LIMIT_STYLES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m jibble_pipeline.simulator",
        description="Serve a synthetic Jibble organisation on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--page-cap", type=int, default=100, help="rows per page at most")
    parser.add_argument("--seed", type=int, default=7, help="7 is the demo mode's organisation")
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=DEFAULT_PARTITIONS_START,
        help="first work date with time entries (YYYY-MM-DD)",
    )
    parser.add_argument(
        "--now",
        type=_instant,
        help="fixed clock (ISO 8601 instant, e.g. 2026-01-01T00:00:00Z) instead of the real one",
    )
    parser.add_argument("--client-id", help="fixed credentials instead of random ones")
    parser.add_argument("--client-secret")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    parser.add_argument(
        "--latency-jitter-ms", type=float, default=0.0, help="uniform random extra latency, at most"
    )
    parser.add_argument(
        "--rate-limit", type=float, default=0.0, help="requests per second (0: no limit)"
    )
    parser.add_argument(
        "--rate-limit-burst", type=float, help="requests at once (default: one second's worth)"
    )
    parser.add_argument(
        "--rate-limit-style",
        choices=RATE_LIMIT_STYLES,
        default="token-bucket",
        help="fixed-window: AspNetCoreRateLimit's windows of one second, with its headers",
    )
    parser.add_argument(
        "--rate-limit-header",
        choices=RATE_LIMIT_HEADERS,
        default="Retry-After",
        help="what a 429 says about when to come back",
    )
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction answered 5xx")
    parser.add_argument(
        "--drop-rate", type=float, default=0.0, help="fraction of connections dropped"
    )
    parser.add_argument("--fault-seed", type=int, default=0, help="seeds the random faults")
    parser.add_argument(
        "--reports",
        choices=REPORT_AVAILABILITY,
        default="available",
        help="TrackedTimeReport: served, refused by the plan (402) or missing (404)",
    )
    parser.add_argument(
        "--orderable", help="the only properties $orderby accepts, comma-separated (e.g. time)"
    )
    parser.add_argument(
        "--no-updated-at-filter", action="store_true", help="refuse $filter on updatedAt"
    )
    parser.add_argument(
        "--public-reports",
        action="store_true",
        help="TrackedTimeReport as public callers use it (subGroupBy, no paging, TimeSpans)",
    )
    parser.add_argument("--time-zone-field", choices=TIME_ZONE_FIELDS, default="timeZone")
    parser.add_argument(
        "--other-organisation-agents",
        type=int,
        default=0,
        help="people of a second organisation the same credentials see",
    )
    parser.add_argument("--hour-entries", action="store_true", help="serve HourEntries")
    parser.add_argument(
        "--as-public-evidence-allows",
        action="store_true",
        help="every variant above at once",
    )
    args = parser.parse_args(argv)
    try:
        faults = FaultPlan(
            latency_seconds=args.latency_ms / 1000,
            latency_jitter_seconds=args.latency_jitter_ms / 1000,
            rate_limit_per_second=args.rate_limit,
            rate_limit_burst=args.rate_limit_burst,
            error_rate_5xx=args.error_rate,
            drop_rate=args.drop_rate,
            seed=args.fault_seed,
            rate_limit_style=args.rate_limit_style,
            rate_limit_header=args.rate_limit_header,
        )
        dialect = (
            Dialect.as_public_evidence_allows()
            if args.as_public_evidence_allows
            else Dialect(
                orderable=tuple(args.orderable.split(",")) if args.orderable else None,
                updated_at_filterable=not args.no_updated_at_filter,
                public_reports=args.public_reports,
                time_zone=args.time_zone_field,
                other_organisation_agents=args.other_organisation_agents,
                hour_entries=args.hour_entries,
            )
        )
    except ValueError as error:
        parser.error(str(error))

    now = args.now or datetime.now(UTC)
    organisation = SyntheticOrganisation(
        seed=args.seed,
        agents=args.agents,
        start=args.start,
        end=now.date() + timedelta(days=2),
        now=args.now,
    )
    simulator = JibbleSimulator(
        organisation,
        page_cap=args.page_cap,
        faults=faults,
        client_id=args.client_id,
        client_secret=args.client_secret,
        port=args.port,
        reports=args.reports,
        dialect=dialect,
    )
    with simulator:
        print(
            f"Jibble simulator: {args.agents} agents (seed {args.seed}), work dates "
            f"{organisation.start}..{organisation.end}, pages of at most {args.page_cap} rows"
            f"{', clock fixed at ' + args.now.isoformat() if args.now else ''}\n"
            f"  URL            {simulator.url}\n"
            f"  client id      {simulator.client_id}\n"
            f"  client secret  {simulator.client_secret}\n"
            f"{_conditions(faults)}\n"
            "Settings for the pipeline:\n"
            f"  export JIBBLE_CLIENT_ID={simulator.client_id}\n"
            f"  export JIBBLE_CLIENT_SECRET={simulator.client_secret}\n"
            f"  export JIBBLE_IDENTITY_URL={simulator.url}\n"
            f"  export JIBBLE_WORKSPACE_URL={simulator.url}\n"
            f"  export JIBBLE_TIME_TRACKING_URL={simulator.url}\n"
            f"  export JIBBLE_TIME_ATTENDANCE_URL={simulator.url}\n\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("Stopped.")


def _conditions(plan: FaultPlan) -> str:
    """Banner lines for the latency, rate limit and faults that are set."""
    lines = []
    if plan.latency_seconds or plan.latency_jitter_seconds:
        lines.append(
            f"  latency        {plan.latency_seconds * 1000:g} ms"
            f" + up to {plan.latency_jitter_seconds * 1000:g} ms"
        )
    if plan.rate_limit_per_second and plan.rate_limit_style == "fixed-window":
        lines.append(
            f"  rate limit     {plan.window_limit} requests per window of "
            f"{plan.rate_limit_window_seconds:g} s (429s say: {plan.rate_limit_header})"
        )
    elif plan.rate_limit_per_second:
        lines.append(
            f"  rate limit     {plan.rate_limit_per_second:g} requests/s,"
            f" bursts of {plan.rate_limit_capacity:g}"
        )
    if plan.error_rate_5xx or plan.drop_rate:
        lines.append(
            f"  faults         {plan.error_rate_5xx:g} answered 5xx, {plan.drop_rate:g} dropped"
            f" (seed {plan.seed})"
        )
    return "".join(f"{line}\n" for line in lines)


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add Z)")
    return moment.astimezone(UTC)


if __name__ == "__main__":
    main()

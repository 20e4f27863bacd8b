"""Serves a demo organisation until Ctrl-C:
``python -m jibble_pipeline.simulator --port 8765 --agents 40 --page-cap 100 [--seed N]``.

The organisation follows the real clock, with work dates from ``--start`` to two days ahead,
like the pipeline's demo mode; ``--now 2026-01-01T00:00:00Z`` fixes its clock instead (a
dataset that does not grow while it is read, as benchmarks need). Point the pipeline at it
with the printed settings.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta

from jibble_pipeline.settings import DEFAULT_PARTITIONS_START
from jibble_pipeline.simulator import JibbleSimulator, SyntheticOrganisation


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
    args = parser.parse_args(argv)

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
        client_id=args.client_id,
        client_secret=args.client_secret,
        port=args.port,
    )
    with simulator:
        print(
            f"Jibble simulator: {args.agents} agents (seed {args.seed}), work dates "
            f"{organisation.start}..{organisation.end}, pages of at most {args.page_cap} rows"
            f"{', clock fixed at ' + args.now.isoformat() if args.now else ''}\n"
            f"  URL            {simulator.url}\n"
            f"  client id      {simulator.client_id}\n"
            f"  client secret  {simulator.client_secret}\n\n"
            "Settings for the pipeline:\n"
            f"  export JIBBLE_CLIENT_ID={simulator.client_id}\n"
            f"  export JIBBLE_CLIENT_SECRET={simulator.client_secret}\n"
            f"  export JIBBLE_IDENTITY_URL={simulator.url}\n"
            f"  export JIBBLE_WORKSPACE_URL={simulator.url}\n"
            f"  export JIBBLE_TIME_TRACKING_URL={simulator.url}\n\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("Stopped.")


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add Z)")
    return moment.astimezone(UTC)


if __name__ == "__main__":
    main()

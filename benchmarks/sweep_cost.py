"""What the late-edits sweep costs a tenant that cannot filter on ``updatedAt``.

    .venv/bin/python benchmarks/sweep_cost.py [--agents 40 400] [--page-cap 100 1000]

For each number of agents and page cap, a simulator (in this process, on the real clock,
refusing ``$filter`` on ``updatedAt`` and ``$orderby`` on ``createdAt``) serves the last
month, and the sweep's own reading (``automation.late_edits.read_slice``) reads every work
date of its window once, as one pass does. Prints the requests of a pass, what the sweep
spends per 10-minute schedule tick (a pass starts every 10 minutes, or when the last ends if
it takes longer), and how long a pass takes at the default budget of 60 requests a minute.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jibble_pipeline.automation.late_edits import read_slice, sweep_window  # noqa: E402
from jibble_pipeline.jibble.client import JibbleClient  # noqa: E402
from jibble_pipeline.simulator import JibbleSimulator, SyntheticOrganisation  # noqa: E402
from jibble_pipeline.simulator.dialect import Dialect  # noqa: E402

BUDGET = 60  # requests a minute, JIBBLE_SWEEP_REQUESTS_PER_MINUTE's default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[40, 400])
    parser.add_argument("--page-cap", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args()
    now = datetime.now(UTC)
    window = sweep_window(now, (now - timedelta(days=60)).date())
    assert window is not None
    first, last = window
    dates = (last - first).days + 1
    print(f"sweep window {first}..{last} ({dates} work dates)")
    print("agents | page cap | entries | requests a pass | a 10-minute tick | a pass takes")
    for agents in args.agents:
        org = SyntheticOrganisation(
            seed=7, agents=agents, start=first - timedelta(days=1), end=now.date()
        )
        entries = len(org.time_entries_for_dates(first, last))
        for cap in args.page_cap:
            dialect = Dialect(orderable=("time", "personId"), updated_at_filterable=False)
            with JibbleSimulator(org, page_cap=cap, dialect=dialect) as simulator:
                client = JibbleClient(
                    simulator.client_id,
                    simulator.client_secret,
                    identity_url=simulator.url,
                    workspace_url=simulator.url,
                    time_tracking_url=simulator.url,
                )
                with client:
                    fetched, _ = read_slice(client, first, last, budget=10**9)
                    requests = client.stats.requests - 1  # the token
            assert len(fetched) == dates
            tick = min(requests, 10 * BUDGET)
            minutes = math.ceil(requests / BUDGET)
            print(
                f"{agents:>6} | {cap:>8} | {entries:>7,} | {requests:>15,} | "
                f"{tick:>16,} | {minutes} minute(s)"
            )


if __name__ == "__main__":
    main()

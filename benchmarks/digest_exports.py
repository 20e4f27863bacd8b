"""What the client-week exports (CSV and Excel) add to rendering a week's digests, in memory.

    .venv/bin/python benchmarks/digest_exports.py --agents 400 --clients 12 --rounds 3

Builds a week of synthetic sessions (the rules over ``derive_hours``' synthetic entries),
then times, per round, a week's digests as ``client_digests`` renders them, split into the
digests alone and their exports (the tables, and their CSV and workbook bytes), and writes
the folder ``client_digests`` publishes. Prints the median of each part and the exports'
share of the whole; the machine is shared, so the share is the figure to compare.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import describe_machine  # noqa: E402
from benchmarks._support import median  # noqa: E402
from benchmarks.derive_hours import ENTRIES_PER_DAY, group_history, synthetic_entries  # noqa: E402
from jibble_pipeline.digest.directory import Client  # noqa: E402
from jibble_pipeline.digest.exports import build_client_export  # noqa: E402
from jibble_pipeline.digest.weeks import digest_week  # noqa: E402
from jibble_pipeline.rules.groups import assign_groups  # noqa: E402
from jibble_pipeline.rules.sessions import derive_sessions  # noqa: E402
from jibble_pipeline.rules.weekly import sum_weekly_hours  # noqa: E402
from jibble_pipeline.warehouse.names import Names  # noqa: E402

WEEK = date(2025, 1, 6)  # the synthetic entries start on Wednesday 1 Jan 2025
GROUPS = 60  # derive_hours.group_history's groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=400, help="multiple of 400 (the generator's)")
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    days = 12  # Wed 1 .. Sun 12 Jan: the week of 6 Jan whole
    entries = synthetic_entries(400 * days * ENTRIES_PER_DAY * (args.agents // 400))
    derived = derive_sessions(
        entries, now=datetime(2025, 2, 1, tzinfo=UTC), open_after=timedelta(hours=16)
    )
    sessions = assign_groups(derived.sessions, group_history(entries))
    in_week = sessions["belongs_to_date"].between(WEEK, WEEK + timedelta(days=6))
    sessions = sessions[in_week].reset_index(drop=True)
    weekly = sum_weekly_hours(sessions)
    clients = [
        Client(email=f"client{c}@bench.example", name=f"Client {c}",
               group_ids=tuple(f"g{g}" for g in range(c, GROUPS, args.clients)))
        for c in range(args.clients)
    ]  # fmt: skip
    names = Names(
        agents={p: f"Agent {p}" for p in sessions["person_id"].unique()},
        groups={f"g{g}": f"Group {g}" for g in range(GROUPS)},
        activities={str(a): f"Activity {a}" for a in range(12)},
    )

    whole, exports, files, written = [], [], [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        week = digest_week(WEEK, clients, weekly, sessions, names, datetime.now(UTC))
        with tempfile.TemporaryDirectory() as folder:
            week.publish(Path(folder))
            whole.append(time.perf_counter() - started)
        # The exports' part of that, again on their own: their tables, then their bytes.
        started = time.perf_counter()
        built = [build_client_export(d, sessions, names) for d in week.digests]
        tables = time.perf_counter()
        contents = [export.files() for export in built]
        encoded = time.perf_counter()
        exports.append(encoded - started)
        files.append(encoded - tables)
        written.append(sum(len(b) for c in contents for b in c.values()))

    print(f"machine: {describe_machine()}")
    print(f"week {WEEK}: {len(sessions):,} sessions of {sessions['person_id'].nunique()} agents, "
          f"{len(clients)} clients, {len(week.exports) * 3} export files "
          f"({written[-1] / 1e6:.2f} MB)")  # fmt: skip
    print(f"client_digests' work for the week (render + publish): {median(whole):6.2f} s")
    print(f"  of which the exports (tables, CSV and workbook bytes): {median(exports):6.2f} s "
          f"= {median(exports) / median(whole):.0%}")  # fmt: skip
    print(f"  of which the CSV and workbook bytes:                   {median(files):6.2f} s "
          f"({median(files) / len(clients) * 1000:.0f} ms per client-week)")  # fmt: skip


if __name__ == "__main__":
    main()

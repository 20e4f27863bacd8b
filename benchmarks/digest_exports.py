"""Rendering a week of client digests, their exports and the week's pages of the report site,
in memory and on a temporary disk.

    .venv/bin/python benchmarks/digest_exports.py --agents 400 --clients 12 --rounds 3

Builds a week of synthetic sessions (the rules over ``derive_hours``' synthetic entries),
then times, per round, a week's digests as ``client_digests`` renders them, split into the
digests alone and their exports (the tables, and their CSV and workbook bytes), and the
week's site pages as ``report_site`` renders them (every agent's week, the pages with their
charts and, where the code has one, each client's as-reported history). Prints the median
of each part; the machine is shared, so figures are compared within one sequence.

The same script runs on older code (a checkout beside this one): what the older code has no
parameter for (contracts, a client's weeks, its history) is left out there.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jibble_pipeline  # noqa: E402
from benchmarks._machine import describe_machine  # noqa: E402
from benchmarks._support import median  # noqa: E402
from benchmarks.derive_hours import ENTRIES_PER_DAY, group_history, synthetic_entries  # noqa: E402
from jibble_pipeline.digest.directory.clients import Client  # noqa: E402
from jibble_pipeline.digest.exports import build_client_export  # noqa: E402
from jibble_pipeline.digest.site.pages import agent_weeks  # noqa: E402
from jibble_pipeline.digest.site.paths import week_dir  # noqa: E402
from jibble_pipeline.digest.site.publish import publish  # noqa: E402
from jibble_pipeline.digest.site.render import render_week  # noqa: E402
from jibble_pipeline.digest.weeks import digest_week  # noqa: E402
from jibble_pipeline.rules.attendance import derive_attendance  # noqa: E402
from jibble_pipeline.rules.groups import assign_groups  # noqa: E402
from jibble_pipeline.rules.sessions import derive_sessions  # noqa: E402
from jibble_pipeline.rules.weekly import sum_weekly_hours  # noqa: E402
from jibble_pipeline.warehouse.display_names import Names  # noqa: E402

WEEK = date(2025, 1, 6)  # the synthetic entries start on Wednesday 1 Jan 2025
GROUPS = 60  # derive_hours.group_history's groups
SITE_EXTRAS = "trends" in inspect.signature(render_week).parameters


def site_extras(digests: list, rendered_at: datetime) -> dict[str, object]:
    """What a newer ``render_week`` also draws: each client's last 12 weeks (its chart) and
    what it was told (a digest and a correction, each next to the week now)."""
    from jibble_pipeline.digest.corrections import Correction
    from jibble_pipeline.digest.history import ReportedVersion

    trends = {
        d.client_email: {WEEK - timedelta(weeks=n): d.total_seconds - n * 600 for n in range(12)}
        for d in digests
    }
    history = {}
    for d in digests:
        told = d.model_copy(update={"total_seconds": d.total_seconds - 2700})
        correction = Correction(
            week_start=WEEK, client_email=d.client_email, client_name=d.client_name, version=2,
            previous=1, previous_reported_at=rendered_at, rows=[], days=[],
            total_before=told.total_seconds, total_after=d.total_seconds,
        )  # fmt: skip
        history[(WEEK, d.client_email)] = [
            ReportedVersion(1, "digest", rendered_at, False, told, None),
            ReportedVersion(2, "correction", rendered_at, False, d, correction),
        ]
    return {"trends": trends, "history": history}


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
    attendance = derive_attendance(entries, sessions, derived.orphan_outs)
    in_week = sessions["belongs_to_date"].between(WEEK, WEEK + timedelta(days=6))
    sessions = sessions[in_week].reset_index(drop=True)
    attendance = attendance[attendance["belongs_to_date"].between(WEEK, WEEK + timedelta(days=6))]
    weekly = sum_weekly_hours(sessions)
    # Half the clients buy hours (a contract): the digest, the site and the exports show
    # delivery against it where the code knows contracts; older code ignores the field.
    clients = [
        Client(email=f"client{c}@bench.example", name=f"Client {c}",
               group_ids=tuple(f"g{g}" for g in range(c, GROUPS, args.clients)),
               **({"contract": {"hours": 1000.0}} if c % 2 else {}))  # type: ignore[arg-type]
        for c in range(args.clients)
    ]  # fmt: skip
    names = Names(
        agents={p: f"Agent {p}" for p in sessions["person_id"].unique()},
        groups={f"g{g}": f"Group {g}" for g in range(GROUPS)},
        activities={str(a): f"Activity {a}" for a in range(12)},
    )

    whole, exports, files, written, site, pages = [], [], [], [], [], []
    for _ in range(args.rounds):
        rendered_at = datetime.now(UTC)
        started = time.perf_counter()
        week = digest_week(WEEK, clients, weekly, sessions, names, rendered_at)
        with tempfile.TemporaryDirectory() as folder:
            week.publish(Path(folder))
            whole.append(time.perf_counter() - started)
        # The week's pages of the site, as report_site renders and writes them.
        started = time.perf_counter()
        extras = site_extras(week.digests, rendered_at) if SITE_EXTRAS else {}
        agents = agent_weeks(WEEK, sessions, attendance, names)
        rendered = render_week(WEEK, week.digests, agents, rendered_at, **extras)  # type: ignore[arg-type]
        with tempfile.TemporaryDirectory() as folder:
            publish(Path(folder), week_dir(WEEK), rendered)
        site.append(time.perf_counter() - started)
        pages.append(len(rendered))
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
    print(f"code: {Path(jibble_pipeline.__file__).parent.parent}")
    print(f"week {WEEK}: {len(sessions):,} sessions of {sessions['person_id'].nunique()} agents, "
          f"{len(clients)} clients, {len(week.exports) * 3} export files "
          f"({written[-1] / 1e6:.2f} MB), {pages[-1]} site pages "
          f"(charts and history: {'yes' if SITE_EXTRAS else 'no'})")  # fmt: skip
    print(f"client_digests' work for the week (render + publish): {median(whole):6.2f} s")
    print(f"  of which the exports (tables, CSV and workbook bytes): {median(exports):6.2f} s "
          f"= {median(exports) / median(whole):.0%}")  # fmt: skip
    print(f"  of which the CSV and workbook bytes:                   {median(files):6.2f} s "
          f"({median(files) / len(clients) * 1000:.0f} ms per client-week)")  # fmt: skip
    print(f"report_site's work for the week (render + publish):     {median(site):6.2f} s")
    print(f"the week rendered (digests, exports and site):          "
          f"{median(whole) + median(site):6.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()

"""Late edits at a tenant that cannot filter on ``updatedAt`` and refuses ``$orderby`` on
``createdAt``: the sweep reads recent work dates again and re-derives those that changed.

With the real daemon: an edit, an archive and a new entry on work dates spread over the last
month reach raw entries, sessions and weekly hours, with no run asked by hand. And the
sensor's own evaluation: it reads a slice a minute within its budget of requests, goes on
where it stopped, and asks nothing when nothing changed."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from jibble_pipeline.automation.late_edits import SweepCursor, late_edits_sweep, sweep_window
from jibble_pipeline.partitions import daily_partitions
from jibble_pipeline.resources import server_jibble
from jibble_pipeline.simulator import JibbleSimulator, SyntheticOrganisation
from jibble_pipeline.simulator.dialect import Dialect
from jibble_pipeline_tests.pipeline_harness import BIN, PROJECT_ROOT, Pipeline, cli_environment

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

TODAY = datetime.now(UTC).date()
START = TODAY - timedelta(days=40)
DIALECT = Dialect(orderable=("time", "personId"), updated_at_filterable=False)
WITHIN = 15 * 60  # seconds: from the edits to weekly hours, at most


def organisation(agents: int) -> SyntheticOrganisation:
    return SyntheticOrganisation(seed=13, agents=agents, start=START, end=TODAY + timedelta(days=1))


def person_day(org: SyntheticOrganisation, day: date) -> list[list[dict[str, Any]]]:
    """Each agent's Active entries of ``day``, in time order."""
    by_person: dict[str, list[dict[str, Any]]] = {}
    for entry in org.time_entries_for_dates(day, day):
        if entry.get("status", "Active") == "Active":
            by_person.setdefault(entry["personId"], []).append(entry)
    return [sorted(es, key=lambda e: (e["time"], e["id"])) for es in by_person.values()]


def a_last_work_out(org: SyntheticOrganisation, day: date) -> dict[str, Any]:
    """An Out that ends a work session and is the day's last entry of its agent."""
    for entries in person_day(org, day):
        *_, before, last = entries
        if last["type"] == "Out" and before["type"] == "In" and not before.get("breakId"):
            return last
    raise AssertionError(f"no agent ends {day} with a work session and an Out")


def an_activity_switch(org: SyntheticOrganisation, day: date) -> dict[str, Any]:
    """An In that switches from one work activity to another (archiving it joins the two
    sessions into one: the same hours, one session fewer)."""
    for entries in person_day(org, day):
        for before, switch, after in zip(entries, entries[1:], entries[2:], strict=False):
            plain = not before.get("breakId") and not switch.get("breakId")
            if (
                before["type"] == switch["type"] == "In"
                and plain
                and after["time"] > switch["time"]
            ):
                if before.get("activityId") == switch.get("activityId"):
                    continue
                return switch
    raise AssertionError(f"no activity switch on {day}")


def an_agent_off(org: SyntheticOrganisation, day: date) -> dict[str, Any]:
    """A person with no entry on ``day``."""
    working = {e["personId"] for e in org.time_entries_for_dates(day, day)}
    return next(p for p in org.people if p["id"] not in working)


def latest(days_ago: int, weekend: bool) -> date:
    """The latest weekday (or weekend day) at least ``days_ago`` days ago."""
    day = TODAY - timedelta(days=days_ago)
    while (day.weekday() >= 5) != weekend:
        day -= timedelta(days=1)
    return day


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def fetch(url: str, query: str, *params: Any) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_edits_archives_and_new_entries_reach_weekly_hours_through_the_daemon(
    tmp_path: Path, own_database: str
):
    org = organisation(40)
    with JibbleSimulator(org, page_cap=100, dialect=DIALECT) as simulator:
        env = cli_environment(tmp_path / "home", simulator, own_database, "jibble")
        env.update(
            JIBBLE_PARTITIONS_START=START.isoformat(),
            JIBBLE_EMBEDDED_POSTGRES="never",
            JIBBLE_SWEEP_REQUESTS_PER_MINUTE="1000",  # a whole month per evaluation
        )
        first = TODAY - timedelta(days=31)
        backfill = subprocess.run(
            [str(BIN / "jibble-pipeline"), "backfill", first.isoformat(), TODAY.isoformat()],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert backfill.returncode == 0, (backfill.stdout + backfill.stderr)[-4000:]
        learned = dict(fetch(own_database, "SELECT capability, value FROM jibble.jibble_tenant"))
        assert learned["entry_order"] == "time asc"
        assert learned["updated_at_filter"] == "refused"

        def weekly(person: str, day: date) -> tuple[int, int]:
            rows = fetch(
                own_database,
                "SELECT coalesce(sum(work_seconds), 0), coalesce(sum(session_count), 0)"
                " FROM jibble.weekly_hours WHERE person_id = %s AND week_start = %s",
                person, week_of(day),
            )  # fmt: skip
            return int(rows[0][0]), int(rows[0][1])

        # Three changes at Jibble, on work dates spread over the last month.
        edited_day, archived_day = latest(26, weekend=False), latest(15, weekend=False)
        added_day = latest(3, weekend=True)
        out = a_last_work_out(org, edited_day)
        switch = an_activity_switch(org, archived_day)
        off = an_agent_off(org, added_day)
        before = {
            "edited": weekly(out["personId"], edited_day),
            "archived": weekly(switch["personId"], archived_day),
            "added": weekly(off["id"], added_day),
        }
        later = datetime.fromisoformat(out["time"]) + timedelta(minutes=45)
        org.edit_entry(out["id"], time=later.isoformat().replace("+00:00", "Z"))
        org.archive_entry(switch["id"])
        noon = datetime.combine(added_day, datetime.min.time(), UTC) + timedelta(hours=10)
        added = [
            org.add_entry({"personId": off["id"], "type": kind, "belongsToDate":
                           added_day.isoformat(), "time": at.isoformat().replace("+00:00", "Z")})
            for kind, at in (("In", noon), ("Out", noon + timedelta(hours=1)))
        ]  # fmt: skip
        edited_at = time.monotonic()

        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")],
            cwd=PROJECT_ROOT, env=env, stdout=(tmp_path / "daemon.log").open("w"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            expected = {
                "edited": (before["edited"][0] + 2700, before["edited"][1]),
                "archived": (before["archived"][0], before["archived"][1] - 1),
                "added": (before["added"][0] + 3600, before["added"][1] + 1),
            }
            people = {"edited": (out["personId"], edited_day),
                      "archived": (switch["personId"], archived_day),
                      "added": (off["id"], added_day)}  # fmt: skip
            in_sessions = in_weekly = None  # when the edited clock-out reached each
            while time.monotonic() - edited_at < WITHIN:
                if in_sessions is None and fetch(
                    own_database,
                    "SELECT 1 FROM jibble.sessions WHERE end_entry_id = %s AND end_utc = %s",
                    out["id"], later,
                ):  # fmt: skip
                    in_sessions = time.monotonic()
                now = {name: weekly(*where) for name, where in people.items()}
                if in_weekly is None and now["edited"] == expected["edited"]:
                    in_weekly = time.monotonic()
                if now == expected:
                    break
                time.sleep(5)
            else:
                log = (tmp_path / "daemon.log").read_text()[-5000:]
                pytest.fail(f"weekly hours {now}, expected {expected}, after {WITHIN} s\n{log}")
            took = time.monotonic() - edited_at
        finally:
            os.killpg(daemon.pid, 9)
            daemon.wait()

    assert took < WITHIN
    # Weekly hours follow their sessions within 2 minutes (seen by polls 5 s apart).
    assert in_sessions is not None and in_weekly is not None
    assert in_weekly - in_sessions < 120, f"{in_weekly - in_sessions:.0f} s"
    raw = dict(
        fetch(
            own_database,
            "SELECT entry_id, coalesce(status, 'Active') || ' ' || time_utc::text"
            " FROM jibble.raw_time_entries WHERE entry_id = ANY(%s) AND removed_at IS NULL",
            [out["id"], switch["id"], *(e["id"] for e in added)],
        )
    )
    assert raw[switch["id"]].startswith("Archived ")
    assert datetime.fromisoformat(raw[out["id"]].split(" ", 1)[1]) == later
    assert all(raw[e["id"]].startswith("Active ") for e in added)
    starts = fetch(
        own_database,
        "SELECT count(*) FROM jibble.sessions WHERE start_entry_id = %s OR end_entry_id = %s",
        switch["id"], switch["id"],
    )  # fmt: skip
    assert starts == [(0,)]  # the archived switch neither starts nor ends a session


def test_the_sweep_reads_a_slice_within_its_budget_and_goes_on_where_it_stopped(
    database_url: str, warehouse_schema: str
):
    org = organisation(12)
    with JibbleSimulator(org, page_cap=100, dialect=DIALECT) as simulator:
        pipeline = Pipeline(simulator, database_url, warehouse_schema)
        window = sweep_window(datetime.now(UTC), daily_partitions.start.date())
        assert window is not None
        assert pipeline.daily(window[0], window[1]).success
        jibble = server_jibble(simulator, page_size=1000, sweep_requests=20)
        resources = {"jibble": jibble, "warehouse": pipeline.resources["warehouse"]}

        def evaluate(cursor: str | None) -> tuple[Any, SweepCursor, int]:
            simulator.reset_stats()
            with dg.build_sensor_context(
                instance=pipeline.instance, cursor=cursor, resources=resources
            ) as context:
                result = late_edits_sweep(context)
            assert isinstance(result, dg.SensorResult)
            return result, SweepCursor.load(result.cursor), simulator.stats.requests

        result, cursor, requests = evaluate(None)
        assert not result.run_requests  # nothing changed since the backfill
        assert cursor.passes == 1 and cursor.next_date is not None
        assert 20 <= requests <= 30  # the budget, and the date being read finishes
        middle = date.fromisoformat(cursor.next_date)
        assert window[0] < middle < window[1]

        entry = a_last_work_out(org, middle + timedelta(days=1))
        org.edit_entry(entry["id"], note="corrected by the team lead")
        passes = [cursor]
        while passes[-1].next_date is not None:
            result, cursor, _ = evaluate(passes[-1].dump() if passes else None)
            passes.append(cursor)
            if result.run_requests:
                (request,) = result.run_requests
                day = middle + timedelta(days=1)
                assert request.tags["dagster/asset_partition_range_start"] == day.isoformat()
                assert request.tags["dagster/asset_partition_range_end"] == day.isoformat()
                break
        else:
            pytest.fail("the pass ended without finding the edit")
        assert all(c.passes == 1 for c in passes)

        # A pass done, the next waits ten minutes from the start of the last one.
        done = SweepCursor(next_date=None, passes=1, started=datetime.now(UTC).isoformat())
        simulator.reset_stats()
        with dg.build_sensor_context(
            instance=pipeline.instance, cursor=done.dump(), resources=resources
        ) as context:
            waiting = late_edits_sweep(context)
        assert isinstance(waiting, dg.SkipReason) and "the next starts at" in str(waiting)
        assert simulator.stats.requests == 0

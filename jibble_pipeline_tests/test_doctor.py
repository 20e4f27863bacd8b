"""``jibble-pipeline doctor`` through the command line: it names what each variant of Jibble
does (docs/jibble-api.md), says what would stop a run, and writes a sample a user can share
without sharing their people's data. Then the backfill of docs/operations.md, run as a user
runs it, against the hardest tenant the evidence allows."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from jibble_pipeline.cli import main
from jibble_pipeline.jibble.reports import logged_seconds
from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation
from jibble_pipeline.simulator.dialect import Dialect
from jibble_pipeline.transport.pacing import WINDOW_SAFETY
from jibble_pipeline_tests.pipeline_harness import BIN, PROJECT_ROOT, cli_environment

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

TODAY = datetime.now(UTC).date()
FIXED_WINDOW = FaultPlan(rate_limit_per_second=5, rate_limit_style="fixed-window")


def organisation() -> SyntheticOrganisation:
    """Twelve agents on the real clock: the doctor looks at the last days."""
    return SyntheticOrganisation(
        seed=9, agents=12, start=TODAY - timedelta(days=40), end=TODAY + timedelta(days=1)
    )


def doctor(
    simulator: JibbleSimulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    *arguments: str,
    **settings: str,
) -> tuple[int, dict, str]:
    """Exit code, the JSON findings (by capability) and stderr of ``doctor --json``."""
    for name in list(__import__("os").environ):
        if name.startswith("JIBBLE_"):
            monkeypatch.delenv(name)
    env = {
        "JIBBLE_CLIENT_ID": simulator.client_id,
        "JIBBLE_CLIENT_SECRET": simulator.client_secret,
        **{f"JIBBLE_{name.upper()}_URL": simulator.url for name in
           ("identity", "workspace", "time_tracking", "time_attendance")},
        "JIBBLE_PARTITIONS_START": (TODAY - timedelta(days=30)).isoformat(),
        **settings,
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = 0
    try:
        main(["doctor", "--json", *arguments])
    except SystemExit as stopped:
        code = 1 if stopped.code else 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    return code, {f["capability"]: f for f in report["findings"]} | {"_": report}, err


def test_a_tenant_as_the_simulator_reads_it_blocks_nothing(monkeypatch, capsys):
    with JibbleSimulator(organisation(), page_cap=100) as simulator:
        code, found, _ = doctor(simulator, monkeypatch, capsys)
    assert code == 0 and not found["_"]["blocked"]
    assert found["TimeEntries sort order"]["answered"] == "createdAt asc,id asc accepted"
    assert found["$filter on updatedAt"]["answered"] == "accepted"
    assert "asked as paged, durations as ISO 8601" in found["TrackedTimeReport"]["answered"]
    assert found["page cap"]["answered"].startswith("pages of at most 100 rows")
    assert found["nextLink"]["answered"] == "never sent"
    assert found["$count"]["answered"] == "honoured"
    assert found["$skip"]["answered"] == "honoured"
    assert found["rate limit"]["answered"] == "no rate-limit headers"
    assert found["organisations"]["answered"].startswith("1 visible")
    assert found["HourEntries"]["answered"].startswith("none")
    assert "about" in found["backfill estimate"]["will_do"]
    # A few dozen small requests, well under a minute.
    assert found["_"]["requests"] <= 40 and found["_"]["seconds"] < 60


def test_each_variant_is_named_for_what_it_does(monkeypatch, capsys):
    dialect = Dialect.as_public_evidence_allows()
    with JibbleSimulator(
        organisation(), page_cap=100, dialect=dialect, faults=FIXED_WINDOW
    ) as simulator:
        code, found, _ = doctor(simulator, monkeypatch, capsys)
        logged = simulator.organisation.hour_entries(TODAY - timedelta(days=14), TODAY)
    hours = sum(seconds for *_, seconds in logged_seconds(logged)) / 3600
    assert code == 0, found
    order = found["TimeEntries sort order"]
    refusal = (
        "createdAt asc,id asc: The query specified in the URI is not valid. The property "
        "'createdAt' cannot be used in the $orderby query option."
    )
    assert refusal in order["answered"]
    assert order["answered"].endswith("time asc accepted")
    assert order["will_do"] == "reads each work date sorted by time asc"
    assert "$orderby=id asc" in found["People"]["answered"]
    assert found["People"]["will_do"] == "reads them in the server's own order"
    updated = found["$filter on updatedAt"]
    assert updated["answered"].startswith("refused (400: ")
    assert "'updatedAt' cannot be used in the $filter" in updated["answered"]
    assert updated["will_do"].startswith("late edits by reading the last 31 days again")
    report = found["TrackedTimeReport"]["answered"]
    assert "asked as subGroupBy=None, durations as TimeSpan" in report
    assert "paged refused" in report
    limit = found["rate limit"]
    assert "X-Rate-Limit-Limit: 1s" in limit["answered"]
    assert "implies 5 requests per 1 s" in limit["answered"]
    assert limit["will_do"] == f"paces at {5 * WINDOW_SAFETY:.1f} requests/s"
    zones = found["time zones"]["answered"]
    assert zones.startswith("of 12 people of the organisation sampled: ")
    assert " from cultureSettings.timeZone" in zones and " from timeZone" not in zones
    assert found["organisations"]["answered"].startswith("2 visible")
    assert "rows of the others are left out" in found["organisations"]["will_do"]
    entries = found["HourEntries"]
    assert f"{len(logged)} entries holding {hours:.1f} h" in entries["answered"]
    assert "hour_entries_not_counted warns" in entries["will_do"]
    assert f"at {5 * WINDOW_SAFETY:.1f} requests/s" in found["backfill estimate"]["will_do"]


def test_a_blocking_finding_fails_with_a_line_saying_what_to_set(monkeypatch, capsys):
    with JibbleSimulator(organisation(), page_cap=100) as simulator:
        code, found, err = doctor(
            simulator, monkeypatch, capsys, JIBBLE_ORGANIZATION_ID="no-such-organisation"
        )
    assert code == 1
    assert found["organisations"]["blocking"]
    assert (
        "JIBBLE_ORGANIZATION_ID=no-such-organisation is not among them"
        in (found["organisations"]["will_do"])
    )


def test_the_sample_holds_no_name_email_note_or_phone_of_the_organisation(
    monkeypatch, capsys, tmp_path: Path
):
    org = organisation()
    # Every entry of the last week carries a note that names its agent and a phone number.
    people = {p["id"]: p for p in org.people}
    for day in (TODAY - timedelta(days=n) for n in range(1, 8)):
        for entry in org.time_entries_for_dates(day, day):
            person = people[entry["personId"]]
            org.edit_entry(entry["id"], note=f"{person['fullName']} ({person['phoneNumber']})")
    dialect = Dialect(hour_entries=True, time_zone="ICultureSettings/TimeZone")
    with JibbleSimulator(org, page_cap=100, dialect=dialect) as simulator:
        code, _, _ = doctor(simulator, monkeypatch, capsys, "--sample", str(tmp_path / "s"))
        originals = [p["id"] for p in org.people] + [o["id"] for o in org.organizations]
    assert code == 0
    files = {f.name: f.read_text() for f in (tmp_path / "s").iterdir()}
    endpoints = ["token", "People", "TimeEntries", "HourEntries", "Groups", "Activities",
                 "Organizations"]  # fmt: skip
    assert {f"{name}.json" for name in endpoints} | {"README.txt"} <= set(files)
    sample = "\n".join(files.values())
    secrets = [simulator.client_secret, *simulator.issued_tokens()]
    personal = [
        value
        for person in org.people
        for value in (
            person["fullName"],
            person["preferredName"],
            person["email"],
            person["phoneNumber"],
        )  # fmt: skip
    ]
    personal += [g["name"] for g in org.groups] + [o["name"] for o in org.organizations]
    personal += ["Covering the morning queue", "Logged from the timesheet"]
    for value in [*personal, *secrets, *originals]:
        assert value not in sample, value
    entries = json.loads(files["TimeEntries.json"])["value"]
    assert entries and all(e["note"].startswith("<note ") for e in entries)
    # Ids are hashed the same way everywhere: an entry's person is a person of the sample.
    sampled_people = {p["id"] for p in json.loads(files["People.json"])["value"]}
    assert len(sampled_people) == 12
    assert {e["personId"] for e in entries} <= sampled_people
    # What the pipeline needs to see stays as Jibble sent it.
    assert {e["type"] for e in entries} <= {"In", "Out"}
    assert all(e["time"].endswith("Z") and e["offset"].startswith(("PT", "-PT")) for e in entries)
    zones = {p.get("ICultureSettings/TimeZone") for p in json.loads(files["People.json"])["value"]}
    assert "Asia/Manila" in zones


def test_the_readme_backfill_is_exact_against_the_hardest_tenant(tmp_path, database_url,
                                                                 warehouse_schema):  # fmt: skip
    """``jibble-pipeline backfill`` as a user runs it, against every variant at once."""
    first, last = date(2025, 2, 3), date(2025, 2, 16)
    org = SyntheticOrganisation(
        seed=3, agents=12, start=date(2025, 1, 20), end=date(2025, 2, 28),
        now=datetime(2025, 2, 20, 8, tzinfo=UTC),
    )  # fmt: skip
    with JibbleSimulator(
        org,
        page_cap=100,
        dialect=Dialect.as_public_evidence_allows(),
        faults=FaultPlan(**{**vars(FIXED_WINDOW), "rate_limit_header": "none"}),
    ) as simulator:
        env = cli_environment(tmp_path / "home", simulator, database_url, warehouse_schema)
        env["JIBBLE_PARTITIONS_START"] = "2025-01-20"
        done = subprocess.run(
            [str(BIN / "jibble-pipeline"), "backfill", first.isoformat(), last.isoformat()],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        expected = {e["id"] for e in org.time_entries_for_dates(first, last)}
        others = {p["id"] for p in simulator.other.people} if simulator.other else set()
    with psycopg.connect(database_url) as conn:

        def column(table: str, name: str) -> set:
            query = sql.SQL("SELECT {} FROM {}").format(
                sql.Identifier(name), sql.Identifier(warehouse_schema, table)
            )
            return {row[0] for row in conn.execute(query)}

        assert column("raw_time_entries", "entry_id") == expected
        assert not column("agents", "person_id") & others
        assert not column("weekly_hours", "person_id") & others
        assert None not in column("agents", "time_zone")
        learned = dict(conn.execute(
            sql.SQL("SELECT capability, value FROM {}").format(
                sql.Identifier(warehouse_schema, "jibble_tenant"))
        ).fetchall())  # fmt: skip
    assert learned["entry_order"] == "time asc"
    assert learned["updated_at_filter"] == "refused"
    assert learned["report_shape"] == "subGroupBy=None"
    assert learned["rate_limit"] == "5/1s"

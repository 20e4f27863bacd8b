"""The check ``hours_match_jibble``: a simulator week ingested by the real pipeline, then compared
with the simulator's own TrackedTimeReport over HTTP — clean, with a late edit Jibble has and
we have not fetched, and for tenants whose plan refuses the report (402) or lacks it (404)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from jibble_pipeline.jibble.client import JibbleClient
from jibble_pipeline.jibble.reports import ReportUnavailable, parse_duration_seconds
from jibble_pipeline.rules.reconciliation import NO_KNOWN_CAUSE, compare, late_edit_counts
from jibble_pipeline.settings.fields import ConfigurationError
from jibble_pipeline.settings.pipeline import load_settings
from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation
from jibble_pipeline.simulator.reports import duration_text, tracked_time
from jibble_pipeline_tests.pipeline_harness import Pipeline, PipelineSetup

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

FIRST, LAST = date(2025, 2, 3), date(2025, 2, 9)  # one Monday week
T0 = datetime(2025, 2, 12, 8, tzinfo=UTC)
# The ``pipeline`` fixture (conftest.py): the week of ten agents derived, weekly hours too.
PIPELINE_SETUP = PipelineSetup(
    seed=3, agents=10, start=date(2025, 1, 20), end=date(2025, 2, 20),
    first=FIRST, last=LAST, now=T0, weekly=True,
)  # fmt: skip
CHECK = "hours_match_jibble"


def evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (found,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK]
    return found


def table_rows(found: dg.AssetCheckEvaluation) -> list[dict[str, Any]]:
    return [record.data for record in found.metadata["differences"].value.records]


def work_seconds_by_agent(pipeline: Pipeline) -> dict[str, int]:
    weekly = pipeline.table("weekly_hours", "person_id")
    return {k: int(v) for k, v in weekly.groupby("person_id")["work_seconds"].sum().items()}


def last_work_out(org: SyntheticOrganisation, day: date) -> dict[str, Any]:
    """An agent's last Active Out of ``day`` that ends a work session, the day's last entry."""
    by_person: dict[str, list[dict[str, Any]]] = {}
    for entry in org.time_entries_for_dates(day, day):
        if entry.get("status", "Active") == "Active":
            by_person.setdefault(entry["personId"], []).append(entry)
    for entries in by_person.values():
        entries.sort(key=lambda e: (e["time"], e["id"]))
        *_, before, last = entries
        if last["type"] == "Out" and before["type"] == "In" and not before.get("breakId"):
            return last
    raise AssertionError(f"no agent ends {day} with a work session and an Out")


def test_a_clean_week_matches_jibble(pipeline: Pipeline):
    found = evaluation(pipeline.weekly(FIRST, LAST))
    ours = work_seconds_by_agent(pipeline)
    assert found.passed, table_rows(found)
    assert found.severity == dg.AssetCheckSeverity.WARN
    assert found.metadata["agents_compared"].value == len(ours) == 10
    assert found.metadata["agents_differing"].value == 0
    assert found.metadata["total_difference_seconds"].value == 0
    assert found.metadata["tolerance_seconds"].value == 60.0
    assert table_rows(found) == []


def test_a_late_edit_not_fetched_is_found_with_its_agent_difference_and_cause(
    pipeline: Pipeline,
):
    simulator = pipeline.simulator
    org = simulator.organisation
    before = work_seconds_by_agent(pipeline)
    out = last_work_out(org, date(2025, 2, 5))
    later = datetime.fromisoformat(out["time"]) + timedelta(minutes=45)
    org.edit_entry(out["id"], time=later.isoformat().replace("+00:00", "Z"))  # at Jibble only
    simulator.faults = FaultPlan(latency_seconds=0.05, latency_jitter_seconds=0.05)
    simulator.reset_stats()

    found = evaluation(pipeline.weekly(FIRST, LAST))

    assert not found.passed
    assert found.severity == dg.AssetCheckSeverity.WARN
    assert simulator.stats.as_dict()["reports"] == 1  # one report for the week, over HTTP
    assert work_seconds_by_agent(pipeline) == before  # our figure: the version we fetched
    (row,) = table_rows(found)
    name = pipeline.table("agents", "person_id").set_index("person_id").loc[out["personId"]]
    assert row["agent"] == name["full_name"]
    group = pipeline.table("client_groups", "group_id").set_index("group_id")
    assert row["group"] == group.loc[name["group_id"], "name"]
    assert row["difference_seconds"] == 2700
    assert row["difference"] == "+0:45"
    ours = before[out["personId"]]
    assert (row["ours"], row["jibble"]) == (format_hm(ours), format_hm(ours + 2700))
    assert "1 entry changed at Jibble after our last fetch" in row["causes"]
    assert found.metadata["agents_differing"].value == 1
    assert found.metadata["total_difference_seconds"].value == 2700
    assert found.metadata["agents_compared"].value == 10

    # Fetching the date again brings the edit in: the figures agree once more.
    assert pipeline.daily(FIRST, LAST, now=T0).success
    assert evaluation(pipeline.weekly(FIRST, LAST)).passed


def format_hm(seconds: int) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


@pytest.mark.parametrize(
    ("tenant", "reason"),
    [
        ("restricted", "402 feature_restricted_subscription"),
        ("missing", "this Jibble tenant has no TrackedTimeReport (404"),
    ],
)
def test_a_tenant_without_the_report_passes_skipped_with_the_reason(
    pipeline: Pipeline, tenant: str, reason: str
):
    pipeline.simulator.reports = tenant
    result = pipeline.weekly(FIRST, LAST)
    found = evaluation(result)
    assert result.success
    assert found.passed
    skipped = found.metadata["skipped"].value
    assert skipped.startswith("not available: ") and reason in skipped
    assert "differences" not in found.metadata
    said = [
        event.message
        for event in pipeline.instance.all_logs(result.run_id)
        if event.message and f"{CHECK} skipped" in event.message
    ]
    assert said == [f"{CHECK} skipped: {skipped}"]  # once, not as an error
    assert pipeline.simulator.stats.as_dict()["reports"] >= 1


def test_the_client_reads_the_report_across_capped_pages_with_the_token():
    org = SyntheticOrganisation(seed=5, agents=7, start=date(2025, 3, 1), end=date(2025, 3, 20),
                                now=datetime(2025, 3, 20, tzinfo=UTC))  # fmt: skip
    first, last = date(2025, 3, 3), date(2025, 3, 9)
    expected: dict[str, float] = {}
    for person, _, _, seconds in tracked_time(org.time_entries_for_dates(first, last)):
        expected[person] = expected.get(person, 0) + seconds
    with JibbleSimulator(org, page_cap=3) as simulator:  # 7 members: three pages
        url = simulator.url
        with JibbleClient(
            simulator.client_id, simulator.client_secret, identity_url=url, workspace_url=url,
            time_tracking_url=url, time_attendance_url=url, page_size=3,
        ) as client:  # fmt: skip
            assert client.tracked_time_by_member(first, last) == expected
            simulator.reports = "restricted"
            refused = client.tracked_time_by_member(first, last)
        assert simulator.stats.pages >= 3 and simulator.stats.token_requests == 1
    assert len(expected) == 7
    assert isinstance(refused, ReportUnavailable) and refused.status == 402


def test_durations_read_as_jibble_writes_them():
    for seconds in (0, 59, 2700, 137_525, 400_000):
        assert parse_duration_seconds(duration_text(seconds)) == seconds
    assert duration_text(137_525) == "PT38H12M5S"
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_seconds("PT")


def test_compare_flags_beyond_the_tolerance_and_names_each_cause():
    week = date(2025, 2, 3)
    ours = pd.DataFrame(
        [
            (week, "p1", "Acme", 36_000, 1, 1, 2),  # 30 s off: within the tolerance
            (week, "p2", "Acme", 36_000, 0, 0, 0),  # an hour off, nothing to explain it
        ],
        columns=["week_start", "person_id", "group", "work_seconds", "open_sessions",
                 "auto_outs", "archived_entries"],
    )  # fmt: skip
    theirs = pd.DataFrame(
        [(week, "p1", 36_030.0), (week, "p2", 32_400.0), (week, "p3", 600.0)],
        columns=["week_start", "person_id", "jibble_seconds"],
    )
    held = {date(2025, 2, 4): pd.Timestamp("2025-02-10T00:00:00Z")}
    changed = [
        {"personId": "p3", "belongsToDate": "2025-02-04", "updatedAt": "2025-02-11T09:00:00Z"},
        {"personId": "p2", "belongsToDate": "2025-02-04", "updatedAt": "2025-02-10T00:00:00Z"},
    ]  # p2's is the version we hold
    compared = compare(
        ours, theirs, late_edit_counts(changed, held), tolerance_seconds=60,
        agent_names={"p1": "Ada", "p2": "Bo"}, agent_groups={"p3": "Cobalt"},
    ).set_index("person_id")  # fmt: skip
    assert list(compared["differs"]) == [False, True, True]
    assert compared.loc["p1", "causes"] == (
        "1 session with no end (Jibble may count them, we count zero); "
        "1 automatic clock-out; 2 archived entries"
    )
    assert compared.loc["p2", "difference"] == "-1:00"
    assert compared.loc["p2", "causes"] == NO_KNOWN_CAUSE
    assert (compared.loc["p3", "agent"], compared.loc["p3", "group"]) == ("p3", "Cobalt")
    assert compared.loc["p3", "difference_seconds"] == 600
    assert compared.loc["p3", "causes"].startswith("1 entry changed at Jibble")


def test_the_settings_name_the_reports_host_and_the_tolerance():
    defaults = load_settings({})
    assert defaults.time_attendance_url == "https://time-attendance.prod.jibble.io"
    assert defaults.reconcile_tolerance_seconds == 60.0
    chosen = load_settings({"JIBBLE_TIME_ATTENDANCE_URL": "http://127.0.0.1:9/",
                            "JIBBLE_RECONCILE_TOLERANCE_SECONDS": "300"})  # fmt: skip
    assert (chosen.time_attendance_url, chosen.reconcile_tolerance_seconds) == (
        "http://127.0.0.1:9",
        300.0,
    )
    with pytest.raises(ConfigurationError) as refused:
        load_settings({"JIBBLE_RECONCILE_TOLERANCE_SECONDS": "a minute"})
    assert str(refused.value) == (
        "JIBBLE_RECONCILE_TOLERANCE_SECONDS must be a number of at least 0, got 'a minute'."
    )

"""The pipeline against every variant of Jibble that public evidence allows (docs/jibble-api.md),
one at a time and all together: a two-week backfill lands the same raw entries, sessions and
weekly hours as against the simulator's default reading, ``hours_match_jibble`` compares real
totals, and what was learned of the tenant is kept and told once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pytest

from jibble_pipeline.jibble.reports import logged_seconds
from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation
from jibble_pipeline.simulator.dialect import Dialect
from jibble_pipeline_tests.pipeline_harness import Pipeline
from jibble_pipeline_tests.warehouse_state import differences, warehouse_rows

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

FIRST, LAST = date(2025, 2, 3), date(2025, 2, 16)  # two Monday weeks
T0 = datetime(2025, 2, 20, 8, tzinfo=UTC)
SEED, AGENTS = 3, 12
COMPARED = ["raw_time_entries", "quarantined_entries", "sessions", "daily_attendance",
            "weekly_hours"]  # fmt: skip
FIXED_WINDOW = {"rate_limit_per_second": 10, "rate_limit_style": "fixed-window"}
VARIANTS: dict[str, tuple[Dialect, FaultPlan]] = {
    "orderby_limited": (Dialect(orderable=("time", "personId")), FaultPlan()),
    "no_updated_at_filter": (Dialect(updated_at_filterable=False), FaultPlan()),
    "public_reports": (Dialect(public_reports=True), FaultPlan()),
    "fixed_window_with_retry_after": (Dialect(), FaultPlan(**FIXED_WINDOW)),
    "fixed_window_without_retry_after": (
        Dialect(),
        FaultPlan(**FIXED_WINDOW, rate_limit_header="none"),
    ),
    "time_zone_in_settings_object": (Dialect(time_zone="cultureSettings"), FaultPlan()),
    "time_zone_as_flat_key": (Dialect(time_zone="ICultureSettings/TimeZone"), FaultPlan()),
    "second_organisation": (Dialect(other_organisation_agents=5), FaultPlan()),
    "hour_entries": (Dialect(hour_entries=True), FaultPlan()),
    "all_together": (
        Dialect.as_public_evidence_allows(),
        FaultPlan(**{**FIXED_WINDOW, "rate_limit_per_second": 5}, rate_limit_header="none"),
    ),
}


def organisation() -> SyntheticOrganisation:
    return SyntheticOrganisation(
        seed=SEED, agents=AGENTS, start=date(2025, 1, 20), end=date(2025, 2, 28), now=T0
    )


def backfill(pipeline: Pipeline) -> dg.ExecuteInProcessResult:
    """The two weeks' daily assets in one run, then their weeks (with the checks)."""
    assert pipeline.daily(FIRST, LAST, now=T0).success
    weekly = pipeline.weekly(FIRST, LAST)
    assert weekly.success
    return weekly


@pytest.fixture(scope="module")
def reference(database_url: str) -> dict[str, Any]:
    """The same organisation backfilled against the simulator's default reading."""
    import psycopg
    from psycopg import sql

    schema = "test_dialect_reference"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    with JibbleSimulator(organisation(), page_cap=100) as simulator:
        pipeline = Pipeline(simulator, database_url, schema)
        backfill(pipeline)
        agents = pipeline.table("agents", "person_id")
    rows = warehouse_rows(database_url, schema, tables=COMPARED)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    zones = dict(zip(agents["person_id"], agents["time_zone"], strict=True))
    assert rows["weekly_hours"] and sum(z is not None for z in zones.values()) >= AGENTS - 1
    return {"rows": rows, "zones": zones}


def check(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    (found,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return found


def tenant_observations(result: dg.ExecuteInProcessResult) -> list[dg.AssetObservation]:
    return [
        event.event_specific_data.asset_observation  # type: ignore[union-attr]
        for event in result.all_events
        if event.event_type_value == "ASSET_OBSERVATION"
        and event.asset_key == dg.AssetKey("jibble_tenant")
    ]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_two_week_backfill_is_exact_against_each_variant(
    variant: str, reference: dict[str, Any], database_url: str, warehouse_schema: str
):
    dialect, faults = VARIANTS[variant]
    with JibbleSimulator(organisation(), page_cap=100, dialect=dialect, faults=faults) as simulator:
        pipeline = Pipeline(simulator, database_url, warehouse_schema)
        weekly = backfill(pipeline)
        stats = simulator.stats
        agents = pipeline.table("agents", "person_id")
        tenant = pipeline.table("jibble_tenant", "capability")
        learned = dict(zip(tenant["capability"], tenant["value"], strict=True))

        # Raw entries, quarantine, sessions, attendance and weeks: as against the default.
        rows = warehouse_rows(database_url, warehouse_schema, tables=COMPARED)
        assert not differences(rows, reference["rows"]), differences(rows, reference["rows"])
        # Every agent's time zone, wherever the tenant keeps it.
        assert (
            dict(zip(agents["person_id"], agents["time_zone"], strict=True)) == reference["zones"]
        )

        # Jibble's own totals are compared, not skipped.
        matched = check(weekly, "hours_match_jibble")
        assert "skipped" not in matched.metadata
        assert matched.metadata["agents_compared"].value == AGENTS
        logged = logged_seconds(simulator.organisation.hour_entries(FIRST, LAST))
        if dialect.hour_entries:
            assert logged, "the variant has hours logged as durations"
            assert not matched.passed
            causes = [r.data["causes"] for r in matched.metadata["differences"].value.records]
            assert all("logged as hour entries" in cause for cause in causes)
            weeks = {(person, day - timedelta(days=day.weekday())) for person, day, _ in logged}
            assert len(causes) == len(weeks)
            not_counted = check(weekly, "hour_entries_not_counted")
            assert not not_counted.passed
            assert not_counted.metadata["seconds_not_counted"].value == sum(s for *_, s in logged)
        else:
            assert matched.passed, matched.metadata["differences"]
            assert check(weekly, "hour_entries_not_counted").metadata["skipped"]

        # What the tenant refuses was learned and kept for the next runs.
        if dialect.orderable is not None:
            assert learned["entry_order"] == "time asc"
            assert learned["workspace_order"] == ""
        else:
            assert learned["entry_order"] == "createdAt asc,id asc"
        assert learned["report_shape"] == ("subGroupBy=None" if dialect.public_reports else "paged")
        assert learned["report_durations"] == ("TimeSpan" if dialect.public_reports else "ISO 8601")
        if faults.rate_limit_style == "fixed-window":
            assert learned["rate_limit"] == f"{faults.window_limit}/1s"
            assert stats.rate_limited <= 0.05 * stats.requests, stats

        if simulator.other is not None:
            others = {p["id"] for p in simulator.other.people}
            foreign_entries = {e["id"] for e in simulator.other.time_entries_for_dates(FIRST, LAST)}
            assert foreign_entries and others
            held = warehouse_rows(database_url, warehouse_schema, exact=True)
            text = repr(held)
            assert not any(i in text for i in others | foreign_entries)

        # A second backfill starts from what was learned: nothing is told again.
        simulator.reset_stats()
        again = pipeline.daily(FIRST, LAST, now=T0)
        assert again.success
        assert not tenant_observations(again)
        assert simulator.stats.requests > 0


def learned_lines(pipeline: Pipeline, result: dg.ExecuteInProcessResult) -> list[str]:
    """The run log's lines that tell what was learned of the tenant."""
    logs = pipeline.instance.all_logs(result.run_id)
    return [e.user_message for e in logs if "Learned of this Jibble" in e.user_message]


def test_what_is_learned_is_told_once_in_the_log_and_in_the_ui(
    database_url: str, warehouse_schema: str
):
    dialect = Dialect(orderable=("time", "personId"), updated_at_filterable=False)
    with JibbleSimulator(organisation(), page_cap=100, dialect=dialect) as simulator:
        pipeline = Pipeline(simulator, database_url, warehouse_schema)
        first = pipeline.daily(FIRST, LAST, now=T0)
        observed = tenant_observations(first)
        assert observed, "the run that learned it shows it on jibble_tenant"
        told = "\n".join(str(o.metadata["learned_now"].value) for o in observed)
        assert "TimeEntries sorted by: time asc" in told
        assert "createdAt asc,id asc refused" in told
        assert "cannot be used in the $orderby query option" in told
        profile = observed[-1].metadata["profile"].value.records
        assert {r.data["capability"] for r in profile} >= {"entry_order", "workspace_order"}
        lines = learned_lines(pipeline, first)
        assert sum("TimeEntries sorted by" in line for line in lines) == 1

        simulator.reset_stats()
        again = pipeline.daily(FIRST + timedelta(days=7), LAST, now=T0)
        assert not tenant_observations(again)
        assert not learned_lines(pipeline, again)
        # Nothing refused is asked again: every request of the second run was answered.
        assert simulator.stats.requests == simulator.stats.pages + simulator.stats.token_requests

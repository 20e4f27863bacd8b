"""The Definitions object loads and holds everything operators rely on."""

import dagster as dg

from jibble_pipeline.definitions import defs

DAILY_ASSETS = {"raw_time_entries", "quarantined_entries", "sessions", "daily_attendance"}
SNAPSHOTS = {"agents", "client_groups", "activities", "agent_group_history"}
DIGEST_ASSETS = {"client_directory", "client_digests", "sent_digests", "report_site"}
TENANT = {"jibble_tenant"}  # observed by every step that learns what the tenant accepts


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == DAILY_ASSETS | SNAPSHOTS | {"weekly_hours"} | DIGEST_ASSETS | TENANT | {
        "sent_corrections",
        "operations_alert",
    }


def test_partitioned_assets_backfill_in_a_single_run():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.partitions_def is None:
            assert key.to_user_string() in SNAPSHOTS | TENANT | {"client_directory"}
            continue
        if key.to_user_string() == "operations_alert":  # one message per day, one run each
            assert node.backfill_policy == dg.BackfillPolicy.multi_run(1)
            continue
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), key


def test_partitions_are_work_dates_and_monday_weeks():
    graph = defs.resolve_asset_graph()
    daily = graph.get(dg.AssetKey("raw_time_entries")).partitions_def
    weekly = graph.get(dg.AssetKey("weekly_hours")).partitions_def
    assert daily.get_first_partition_key() == "2025-01-01"
    assert weekly.get_first_partition_key() == "2024-12-30"  # a Monday
    assert daily.timezone == weekly.timezone == "UTC"


def test_schedule_sensors_and_checks_are_registered():
    assert defs.resolve_schedule_def("refresh_every_10_minutes")
    assert defs.resolve_sensor_def("weekly_hours_automation")
    assert defs.resolve_sensor_def("late_edits_sensor")
    assert defs.resolve_sensor_def("late_edits_sweep")
    assert defs.resolve_job_def("refetch_work_dates")
    check_names = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert {
        "no_duplicate_entry_ids",
        "no_quarantined_entries",
        "sessions_do_not_overlap",
        "active_entries_accounted_for",
        "orphan_outs",
        "incomplete_sessions_per_week",
        "weekly_totals_match_sessions",
        "hours_match_jibble",
        "hour_entries_not_counted",
    } <= check_names


def test_digests_are_weekly_and_sent_by_the_monday_schedule():
    graph = defs.resolve_asset_graph()
    weekly = graph.get(dg.AssetKey("weekly_hours")).partitions_def
    for name in ("client_digests", "sent_digests", "report_site"):
        assert graph.get(dg.AssetKey(name)).partitions_def == weekly, name
    # Sending never happens by automation: only the schedule (or a person) sends.
    assert graph.get(dg.AssetKey("sent_digests")).automation_condition is None
    schedule = defs.resolve_schedule_def("weekly_digests")
    assert schedule.cron_schedule.endswith("* * 1")  # Mondays
    assert schedule.job_name == "send_weekly_digests"
    assert defs.resolve_sensor_def("digest_automation")
    job = defs.resolve_job_def("send_weekly_digests")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == (
        DIGEST_ASSETS | {"weekly_hours"}
    )


def test_the_ui_shows_each_table_s_columns_from_its_one_definition():
    """The column schema the catalog shows is the warehouse table's, column for column."""
    from jibble_pipeline.schema import table

    graph = defs.resolve_asset_graph()
    shown_tables = DIGEST_ASSETS - {"report_site"} | {"weekly_hours", "sent_corrections"}
    for name in DAILY_ASSETS | SNAPSHOTS | shown_tables:
        shown = graph.get(dg.AssetKey(name)).metadata["dagster/column_schema"]
        spec = table(name)
        assert [c.name for c in shown.columns] == spec.column_names, name
        assert [c.type for c in shown.columns] == spec.column_types, name
        not_null = [not c.constraints.nullable for c in shown.columns]
        assert not_null == ["NOT NULL" in kind for kind in spec.columns.values()], name


def test_corrections_are_sent_by_their_sensor_never_by_automation():
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("sent_corrections"))
    assert node.partitions_def == graph.get(dg.AssetKey("weekly_hours")).partitions_def
    assert node.automation_condition is None
    job = defs.resolve_job_def("send_corrections")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "client_digests",
        "sent_corrections",
        "report_site",
    }
    sensor = defs.resolve_sensor_def("corrections_sensor")
    assert sensor.job_name == "send_corrections"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING

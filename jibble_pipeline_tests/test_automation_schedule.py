"""The tick refreshes every work date that can still change (docs/rules.md, Refresh window)."""

from datetime import UTC, date, datetime

import dagster as dg
import pytest

from jibble_pipeline.automation.schedules import refresh_every_10_minutes, refresh_window
from jibble_pipeline.partitions import RANGE_END_TAG, RANGE_START_TAG


@pytest.mark.parametrize(
    ("now", "first", "last"),
    [
        # Just after UTC midnight: Americas still on the 9th, Asia already on the 10th.
        (datetime(2025, 3, 10, 0, 5, tzinfo=UTC), date(2025, 3, 8), date(2025, 3, 11)),
        # Midday UTC: Kiribati (UTC+14) is already on the 11th.
        (datetime(2025, 3, 10, 12, 0, tzinfo=UTC), date(2025, 3, 8), date(2025, 3, 11)),
        # Just before UTC midnight: Baker Island (UTC-12) is still on the 10th at noon.
        (datetime(2025, 3, 10, 23, 55, tzinfo=UTC), date(2025, 3, 8), date(2025, 3, 11)),
        # Year boundary.
        (datetime(2026, 1, 1, 0, 0, tzinfo=UTC), date(2025, 12, 30), date(2026, 1, 2)),
    ],
)
def test_window_covers_every_date_agents_can_be_on(now, first, last):
    assert refresh_window(now, date(2025, 1, 1)) == (first, last)
    # Every offset from UTC-12 to UTC+14 puts the local date inside the window.
    for offset_hours in range(-12, 15):
        local = (now.timestamp() + offset_hours * 3600) // 86400
        local_date = date.fromordinal(date(1970, 1, 1).toordinal() + int(local))
        assert first <= local_date <= last


def test_window_never_starts_before_the_first_partition():
    now = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)
    assert refresh_window(now, date(2025, 1, 1)) == (date(2025, 1, 1), date(2025, 1, 2))


@pytest.mark.parametrize(
    ("tick", "first", "last"),
    [
        (datetime(2025, 6, 2, 0, 0, tzinfo=UTC), "2025-05-31", "2025-06-03"),
        (datetime(2025, 6, 2, 13, 40, tzinfo=UTC), "2025-05-31", "2025-06-03"),
        (datetime(2025, 6, 2, 23, 50, tzinfo=UTC), "2025-05-31", "2025-06-03"),
    ],
)
def test_tick_requests_one_run_over_the_date_range(tick, first, last):
    context = dg.build_schedule_context(scheduled_execution_time=tick)
    request = refresh_every_10_minutes.evaluate_tick(context).run_requests[0]
    assert request.tags[RANGE_START_TAG] == first
    assert request.tags[RANGE_END_TAG] == last
    assert request.partition_key is None
    assert int(request.tags["dagster/max_runtime"]) > 0  # a dead tick cannot hold its slot
    # Two ticks never share a run key, one tick evaluated twice does.
    again = refresh_every_10_minutes.evaluate_tick(context).run_requests[0]
    assert again.run_key == request.run_key
    later = dg.build_schedule_context(scheduled_execution_time=tick.replace(minute=tick.minute + 5))
    assert refresh_every_10_minutes.evaluate_tick(later).run_requests[0].run_key != request.run_key


def test_schedule_runs_every_ten_minutes_in_utc():
    assert refresh_every_10_minutes.cron_schedule == "*/10 * * * *"
    assert refresh_every_10_minutes.execution_timezone == "UTC"
    assert refresh_every_10_minutes.default_status == dg.DefaultScheduleStatus.RUNNING

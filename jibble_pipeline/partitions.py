"""Partitions keyed by the agents' local work date (``belongsToDate``).

Both definitions use UTC as their clock, so a daily key is simply a work date and a
weekly key is the Monday that starts an ISO week of work dates.
"""

from collections.abc import Mapping
from datetime import date, timedelta

import dagster as dg

from jibble_pipeline.settings.pipeline import load_settings

PARTITIONS_TIMEZONE = "UTC"
# The tags of a run over a range of partition keys (one run per backfill, or per tick).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def range_tags(first: date, last: date) -> dict[str, str]:
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


FAR_PAST = date(1900, 1, 1)
FAR_FUTURE = date(9999, 12, 31)


def run_dates(tags: Mapping[str, str]) -> tuple[date, date]:
    """First and last partition key of a run, from its tags, as dates (all history when
    the run is not partitioned). The one way a run's range is read: a sensor reads it from a
    run's tags, an asset or a check from its own run's (``context.run.tags``), exactly as
    Dagster derives the context's partition keys."""
    first = tags.get(RANGE_START_TAG) or tags.get("dagster/partition")
    last = tags.get(RANGE_END_TAG) or tags.get("dagster/partition")
    if not first or not last:
        return FAR_PAST, FAR_FUTURE
    return date.fromisoformat(first), date.fromisoformat(last)


def run_days(tags: Mapping[str, str]) -> list[date]:
    """Every work date of a run's daily partitions (its tags: ``run_dates``)."""
    first, last = run_dates(tags)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def run_weeks(tags: Mapping[str, str]) -> list[date]:
    """The Mondays of a run's weekly partitions (its tags: ``run_dates``); none when the run
    is not partitioned."""
    first, last = run_dates(tags)
    if first == FAR_PAST:
        return []
    return [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]


def monday_on_or_before(day: date) -> date:
    return day - timedelta(days=day.weekday())


def build_daily_partitions(start: date) -> dg.DailyPartitionsDefinition:
    # end_offset=1: agents east of UTC are already working on "tomorrow".
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(), end_offset=1, timezone=PARTITIONS_TIMEZONE
    )


def build_weekly_partitions(start: date) -> dg.WeeklyPartitionsDefinition:
    # day_offset=1: weeks start on Monday; end_offset=1 includes the week in progress.
    return dg.WeeklyPartitionsDefinition(
        start_date=monday_on_or_before(start).isoformat(),
        day_offset=1,
        end_offset=1,
        timezone=PARTITIONS_TIMEZONE,
    )


_start = load_settings().partitions_start
daily_partitions = build_daily_partitions(_start)
weekly_partitions = build_weekly_partitions(_start)

# A week may begin before the first daily partition; those days simply do not exist.
week_of_days = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)

"""Raw time entries, one daily partition per work date (``belongsToDate``)."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.metadata import rejected_metadata, table_metadata
from jibble_pipeline.automation.partitions import daily_partitions
from jibble_pipeline.jibble.frames import entries_frame, quarantine_frame
from jibble_pipeline.jibble.models import Rejected, TimeEntry, parse_payloads
from jibble_pipeline.jibble.resource import JibbleResource

GROUP = "time_tracking"


def window_dates(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """First and last work date (inclusive) of the run's partition or partition range."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def split_by_window(
    entries: list[TimeEntry], first: date, last: date
) -> tuple[list[TimeEntry], list[Rejected]]:
    """Entries of the requested dates, and the rest (a server ignoring the filter) as rejects."""
    inside = [e for e in entries if first <= e.belongs_to_date <= last]
    outside = [
        Rejected(payload=e.raw, reason=f"belongsToDate {e.belongs_to_date} outside {first}..{last}")
        for e in entries
        if not first <= e.belongs_to_date <= last
    ]
    return inside, outside


def quarantine_dates(rejected: list[Rejected], first: date, last: date) -> list[date]:
    """Each reject is kept under its own work date when readable, else the window's first."""
    days = []
    for item in rejected:
        try:
            day = date.fromisoformat(str(item.payload.get("belongsToDate")))
        except ValueError:
            day = first
        days.append(day if first <= day <= last else first)
    return days


@dg.multi_asset(
    outs={
        "raw_time_entries": dg.AssetOut(
            description="Every time entry ever seen, newest version, with its raw JSON payload.",
            kinds={"jibble", "postgres"},
        ),
        "quarantined_entries": dg.AssetOut(
            description="Entries that failed validation, with the reason and the raw payload.",
            kinds={"postgres"},
        ),
    },
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
)
def fetch_time_entries(
    context: dg.AssetExecutionContext, jibble: JibbleResource
) -> Iterator[dg.Output]:
    """Fetch the run's whole work-date range in one paged stream and split valid from invalid."""
    first, last = window_dates(context)
    fetched_at = datetime.now(UTC)
    with jibble.get_client(context.log) as client:
        payloads = client.time_entries(first, last)
        stats = client.stats
    parsed, rejected = parse_payloads(TimeEntry, payloads)
    entries, outside = split_by_window(parsed, first, last)
    rejected = [*rejected, *outside]
    if rejected:
        context.log.warning(f"{len(rejected)} entries quarantined (see quarantined_entries)")

    frame = entries_frame(entries, fetched_at)
    per_date = frame.groupby("belongs_to_date").size().rename("entries").reset_index()
    per_status = frame["status"].fillna("(missing)").value_counts()
    yield dg.Output(
        frame,
        "raw_time_entries",
        metadata={
            "work_dates": f"{first}..{last}",
            "entries": len(frame),
            "pages_fetched": stats.pages,
            "requests": stats.requests,
            "retries": stats.retries,
            "rate_limited": stats.rate_limited,
            "token_refreshes": stats.token_refreshes,
            "first_time_utc": _instant(frame["time_utc"].min()),
            "last_time_utc": _instant(frame["time_utc"].max()),
            "entries_by_status": table_metadata(
                per_status.rename_axis("status").rename("entries").reset_index()
            ),
            "entries_per_date": table_metadata(per_date),
        },
    )
    quarantined = quarantine_frame(
        rejected, quarantine_dates(rejected, first, last), context.run.run_id, fetched_at
    )
    yield dg.Output(quarantined, "quarantined_entries", metadata=rejected_metadata(rejected))


def _instant(value: pd.Timestamp) -> str:
    return "" if pd.isna(value) else value.isoformat()

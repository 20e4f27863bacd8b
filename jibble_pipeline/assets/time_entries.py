"""Raw time entries, one daily partition per work date (``belongsToDate``)."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.jibble_api import jibble_session
from jibble_pipeline.assets.metadata import selected_names
from jibble_pipeline.assets.table_metadata import table_out
from jibble_pipeline.ingest.time_entries import (
    CHUNK_ENTRIES,
    COMMIT_SECONDS,
    DateFigures,
    EntryLoad,
    collections_for_a_stream,
)
from jibble_pipeline.jibble.errors import JibbleError
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.partitions import daily_partitions, run_dates
from jibble_pipeline.warehouse.date_window import DateWindow
from jibble_pipeline.warehouse.landing import entry_counts
from jibble_pipeline.warehouse.resource import WarehouseResource

GROUP = "time_tracking"
RAW, QUARANTINE = "raw_time_entries", "quarantined_entries"


class FetchConfig(dg.Config):
    """How often a long range commits (whole work dates, at the first date boundary after
    this many entries or seconds of fetching): what a killed run loses besides the pages in
    flight, and what its re-run fetches again."""

    commit_every_entries: int = CHUNK_ENTRIES
    commit_every_seconds: float = COMMIT_SECONDS


@dg.multi_asset(
    outs={
        RAW: table_out(
            RAW,
            "Every time entry ever seen, newest version, with its raw JSON payload.",
            kinds={"jibble", "postgres"},
        ),
        QUARANTINE: table_out(
            QUARANTINE,
            "Entries that failed validation, one row each, with the reason and the raw "
            "payload, until they are fixed at the source.",
            kinds={"postgres"},
        ),
    },
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    # Either may be selected alone (``--select raw_time_entries``); both tables are written
    # together whichever was, since a quarantine row belongs with the fetch that found it.
    can_subset=True,
)
def fetch_time_entries(
    context: dg.AssetExecutionContext,
    config: FetchConfig,
    jibble: JibbleResource,
    warehouse: WarehouseResource,
) -> Iterator[dg.AssetMaterialization | dg.MaterializeResult]:
    """Fetch the run's work dates (several pages at once) and land them in chunks of whole
    dates, each committed with its quarantine: a long backfill shows its dates as they land,
    and a re-run after a failure continues where it stopped."""
    first, last = run_dates(context.run.tags)
    selected = selected_names(context)
    with jibble_session(context, jibble, warehouse) as client:
        load = EntryLoad(
            client,
            warehouse.open(),
            first,
            last,
            run_id=context.run.run_id,
            log=context.log,
            chunk_entries=config.commit_every_entries,
            commit_seconds=config.commit_every_seconds,
        )
        landed: list[pd.DataFrame] = []
        try:
            with collections_for_a_stream():
                for chunk, last_chunk in load.run():
                    landed.append(chunk.counts)
                    if not last_chunk and RAW in selected:
                        # The run's own results record the final chunk.
                        yield from landed_events(chunk.counts, load, RAW)
        except JibbleError as error:
            for counts in landed:  # the quarantine of the dates kept is kept too
                if QUARANTINE in selected:
                    yield from landed_events(counts, load, QUARANTINE)
            raise dg.Failure(description=f"{error} {progress_note(load)}") from None
        stats = client.stats
    counts = entry_counts(warehouse.open(), DateWindow(first, last + timedelta(days=1)))
    for row in counts.itertuples(index=False):
        figures = load.figures[row.work_date]
        key = row.work_date.isoformat()
        if RAW in selected:
            context.add_asset_metadata(raw_metadata(row, figures), asset_key=RAW, partition_key=key)
        if QUARANTINE in selected:
            context.add_asset_metadata(
                {"dagster/row_count": int(row.quarantined)},
                asset_key=QUARANTINE,
                partition_key=key,
            )
    summary = {
        "jibble/work_dates": f"{first}..{last}",
        "jibble/entries": str(sum(f.fetched for f in load.figures.values())),
        "jibble/resumed_dates": str(len(load.resumed)),
        "jibble/requests": str(stats.requests),
        "jibble/retries": str(stats.retries),
        "jibble/rate_limited": str(stats.rate_limited),
    }
    context.instance.add_run_tags(context.run.run_id, summary)
    context.log.info(", ".join(f"{k.removeprefix('jibble/')} {v}" for k, v in summary.items()))
    if load.rejected:
        context.log.warning(f"{load.rejected} entries quarantined (see {QUARANTINE})")
    for name in (RAW, QUARANTINE):
        if name in selected:
            yield dg.MaterializeResult(asset_key=name)


def raw_metadata(row, figures: DateFigures) -> dict[str, Any]:
    """One work date's figures: what the warehouse holds now and what this run fetched."""
    metadata: dict[str, Any] = {
        "dagster/row_count": int(row.stored),
        "fetched": figures.fetched,
        "removed_at_source": int(row.removed),
        "quarantined": int(row.quarantined),
    }
    if figures.resumed_from:
        metadata["landed_by_run"] = figures.resumed_from  # unchanged since: not fetched again
    if figures.statuses:
        metadata["active"] = figures.statuses.get("Active", 0) + figures.statuses.get(
            "(missing)", 0
        )
        metadata["not_active"] = figures.fetched - metadata["active"]
    if figures.first_time is not None and figures.last_time is not None:  # set together
        metadata["first_time_utc"] = figures.first_time.isoformat()
        metadata["last_time_utc"] = figures.last_time.isoformat()
    return metadata


def landed_events(
    counts: pd.DataFrame, load: EntryLoad, asset: str
) -> Iterator[dg.AssetMaterialization]:
    """A chunk of dates has landed while the run goes on: the UI shows them at once (raw
    entries as they land, their quarantine when a run fails), and a run that fails or is
    killed later still shows truthfully what it landed."""
    for row in counts.itertuples(index=False):
        metadata = (
            raw_metadata(row, load.figures[row.work_date])
            if asset == RAW
            else {"dagster/row_count": int(row.quarantined)}
        )
        yield dg.AssetMaterialization(
            asset_key=asset, partition=row.work_date.isoformat(), metadata=metadata
        )


def progress_note(load: EntryLoad) -> str:
    landed = len(load.landed) + len(load.resumed)
    if not landed:
        return "Nothing of the range was landed."
    return (
        f"{landed} of {len(load.dates)} work dates of {load.first}..{load.last} landed and are "
        "kept; re-running the same range continues from there."
    )

"""Raw time entries, one daily partition per work date (``belongsToDate``)."""

import gc
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd

from jibble_pipeline.assets.metadata import rejected_metadata, table_metadata
from jibble_pipeline.automation.partitions import daily_partitions
from jibble_pipeline.jibble.client import ClientStats
from jibble_pipeline.jibble.frames import entries_frame, quarantine_frame
from jibble_pipeline.jibble.models import Rejected, TimeEntry, parse_payloads
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.streams import read_ahead
from jibble_pipeline.warehouse.io_manager import FrameStream

GROUP = "time_tracking"
BATCH_PAYLOADS = 5_000  # payloads validated and written together while the fetch goes on


def payload_batches(pages: Iterable[list[dict]]) -> Iterator[list[dict]]:
    """Pages joined into batches of about ``BATCH_PAYLOADS`` (fewer, larger writes)."""
    batch: list[dict] = []
    for page in pages:
        batch.extend(page)
        if len(batch) >= BATCH_PAYLOADS:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def objects_so_far_frozen() -> Iterator[None]:
    """Keeps Python's full garbage collections, which a stream of millions of payloads
    triggers again and again, from walking every object the process already had (Dagster's
    and the run's): about a sixth of a backfill's time otherwise."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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
    """Fetch the run's whole work-date range in one paged stream, written page by page while
    it is read (one transaction), and quarantine what fails validation."""
    first, last = window_dates(context)
    stream = EntryStream(first, last, datetime.now(UTC))
    with jibble.get_client(context.log) as client, objects_so_far_frozen():
        # Three stages at once: a thread reads pages, another validates and frames them,
        # and this one (the IO manager, when the output is yielded) writes the frames.
        frames = read_ahead(stream.frames(client.time_entry_pages(first, last)), depth=2)
        yield dg.Output(
            FrameStream(frames, lambda: stream.metadata(client.stats)),
            "raw_time_entries",
            metadata={"work_dates": f"{first}..{last}"},
        )
    rejected = stream.rejected
    if rejected:
        context.log.warning(f"{len(rejected)} entries quarantined (see quarantined_entries)")
    quarantined = quarantine_frame(
        rejected, quarantine_dates(rejected, first, last), context.run.run_id, stream.fetched_at
    )
    yield dg.Output(quarantined, "quarantined_entries", metadata=rejected_metadata(rejected))


class EntryStream:
    """Pages of payloads to warehouse frames, one page at a time, keeping the rejects and
    the counts the run's metadata shows."""

    def __init__(self, first: date, last: date, fetched_at: datetime):
        self.first, self.last, self.fetched_at = first, last, fetched_at
        self.rejected: list[Rejected] = []
        self.entries = 0
        self.per_date: Counter[date] = Counter()
        self.per_status: Counter[str] = Counter()
        self.first_time: pd.Timestamp | None = None
        self.last_time: pd.Timestamp | None = None

    def frames(self, pages: Iterator[list[dict]]) -> Iterator[pd.DataFrame]:
        """A frame per batch of pages, the pages read a batch or two ahead."""
        # Closed on the way out: the page reader stops when the writer stops early.
        with closing(read_ahead(payload_batches(pages), depth=2)) as batches:
            for batch in batches:
                yield self.frame(batch)

    def frame(self, payloads: list[dict]) -> pd.DataFrame:
        """The warehouse frame of a batch of payloads; its rejects are kept aside."""
        parsed, rejected = parse_payloads(TimeEntry, payloads)
        entries, outside = split_by_window(parsed, self.first, self.last)
        self.rejected += [*rejected, *outside]
        frame = entries_frame(entries, self.fetched_at)
        self._count(frame)
        return frame

    def _count(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        self.entries += len(frame)
        self.per_date.update(frame["belongs_to_date"])
        self.per_status.update(frame["status"].fillna("(missing)"))
        low, high = frame["time_utc"].min(), frame["time_utc"].max()
        self.first_time = low if self.first_time is None else min(self.first_time, low)
        self.last_time = high if self.last_time is None else max(self.last_time, high)

    def metadata(self, stats: ClientStats) -> dict[str, object]:
        per_date = pd.DataFrame(
            sorted(self.per_date.items()), columns=["belongs_to_date", "entries"]
        )
        per_status = pd.DataFrame(self.per_status.most_common(), columns=["status", "entries"])
        return {
            "entries": self.entries,
            "pages_fetched": stats.pages,
            "requests": stats.requests,
            "retries": stats.retries,
            "rate_limited": stats.rate_limited,
            "token_refreshes": stats.token_refreshes,
            "first_time_utc": _instant(self.first_time),
            "last_time_utc": _instant(self.last_time),
            "entries_by_status": table_metadata(per_status),
            "entries_per_date": table_metadata(per_date),
        }


def _instant(value: pd.Timestamp | None) -> str:
    return "" if value is None or pd.isna(value) else value.isoformat()

"""Raw time entries of a range of work dates, fetched and landed in chunks of whole dates.

Three stages run at once: the client reads the dates' pages (several requests in flight), a
thread validates and frames them in chunks, and the caller's thread writes each chunk with
its quarantine rows and a progress row per date in one transaction. A chunk ends at the
first date boundary after ``COMMIT_SECONDS`` of fetching or ``CHUNK_ENTRIES`` entries,
whichever comes first: a run that fails or is killed keeps the dates it landed and loses
about that much fetching, plus the pages in flight, the chunk being validated and the one
waiting to be written. A re-run of the same range skips the landed dates that have not changed at
the source since (one ``updatedAt`` query tells), so it continues where the first stopped
and ends like a clean run.

Small chunks cost little: a commit is a handful of statements beside the COPY that every
entry costs anyway (``benchmarks/resume.py``, ``benchmarks/backfill_year.py``).
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from jibble_pipeline.jibble.client import JibbleClient
from jibble_pipeline.jibble.frames import entries_frame, quarantine_frame
from jibble_pipeline.jibble.models import Rejected, TimeEntry, parse_payloads
from jibble_pipeline.streams import read_ahead
from jibble_pipeline.warehouse.date_window import DateWindow
from jibble_pipeline.warehouse.landing import (
    EntryBatch,
    LandedChunk,
    RangeProgress,
    forget_landed,
    land_entries,
    landed_dates,
)
from jibble_pipeline.warehouse.store import Warehouse

CHUNK_ENTRIES = 2_000  # a chunk ends at the first date boundary after this many entries,
COMMIT_SECONDS = 1.0  # or this many seconds after its first date came
RESUME_WITHIN = timedelta(hours=24)  # landed dates older than this are fetched again
CHANGE_OVERLAP = timedelta(minutes=10)  # clock skew between Jibble and this machine
YOUNG_THRESHOLD = 50_000


@dataclass
class DateFigures:
    """What was fetched for one work date, for its partition's metadata."""

    fetched: int = 0
    quarantined: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    first_time: pd.Timestamp | None = None
    last_time: pd.Timestamp | None = None
    resumed_from: str | None = None  # the run that landed it, when it was not fetched again


@contextmanager
def collections_for_a_stream() -> Iterator[None]:
    """Garbage collection fit for a stream of millions of short-lived payloads: full
    collections no longer walk every object the process already had (Dagster's and the
    run's: frozen), and the young generation is collected every ``YOUNG_THRESHOLD``
    allocations instead of 700, while pages, batches and chunks in flight would otherwise
    be scanned again and again (together about a fifth of a backfill's time)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


class EntryLoad:
    """The fetch of the work dates [first, last] into the warehouse."""

    def __init__(
        self,
        client: JibbleClient,
        warehouse: Warehouse,
        first: date,
        last: date,
        *,
        run_id: str,
        log: Any,
        now: datetime | None = None,
        chunk_entries: int = CHUNK_ENTRIES,
        commit_seconds: float = COMMIT_SECONDS,
    ):
        if last < first:
            raise ValueError(f"work dates {first}..{last}: the last is before the first")
        self.client, self.warehouse, self.log = client, warehouse, log
        self.chunk_entries = max(1, chunk_entries)
        self.commit_seconds = max(0.0, commit_seconds)
        self.first, self.last = first, last
        self.fetched_at = now or datetime.now(UTC)
        self.progress = RangeProgress(first, last, run_id, self.fetched_at)
        self.dates = DateWindow(first, last + timedelta(days=1)).dates()
        self.figures: dict[date, DateFigures] = {day: DateFigures() for day in self.dates}
        self.landed: list[date] = []
        self.rejected = 0

    # -------------------------------------------------------------------------- run

    def run(self) -> Iterator[tuple[LandedChunk, bool]]:
        """Fetches and lands the range chunk by chunk; yields each committed chunk and
        whether it was the last of a range that completes. Dates landed by an unfinished
        earlier fetch of the same range, unchanged since, are not fetched again."""
        resumed = self._resumed()
        to_fetch = [day for day in self.dates if day not in resumed]
        pages = self.client.time_entries_by_date(to_fetch)
        failure: Exception | None = None
        with closing(read_ahead(self._batches(pages), depth=1)) as batches:
            batch = next(batches, None)
            while batch is not None:
                chunk = land_entries(self.warehouse, [batch], self.progress)
                self.landed.extend(chunk.window.dates())
                try:
                    batch = next(batches, None)
                except Exception as error:  # raised once the chunks read before it are told
                    batch, failure = None, error
                yield chunk, batch is None and failure is None
        if failure is not None:
            raise failure
        forget_landed(self.warehouse, self.first, self.last, self.fetched_at - RESUME_WITHIN)

    @property
    def resumed(self) -> list[date]:
        return [day for day, figures in self.figures.items() if figures.resumed_from]

    def _resumed(self) -> set[date]:
        """Dates an unfinished fetch of this range landed recently, with no entry created,
        edited or archived since (``updatedAt``); their figures are taken from then."""
        landed = landed_dates(
            self.warehouse, self.first, self.last, self.fetched_at - RESUME_WITHIN
        )
        if landed.empty:
            return set()
        since = pd.Timestamp(min(landed["fetched_at"])).to_pydatetime() - CHANGE_OVERLAP
        days = list(landed["work_date"])
        changed = self.client.time_entries_changed_since(since, work_dates=(min(days), max(days)))
        if changed is None:
            self.log.info(
                "This Jibble tenant cannot filter on updatedAt, so whether the dates an "
                "unfinished run landed changed since cannot be asked: they are kept as landed "
                "(an edit made since is caught by the late-edits sweep of recent work dates)"
            )
        touched = {str(payload.get("belongsToDate")) for payload in changed or []}
        resumed = set()
        for row in landed.itertuples(index=False):
            if row.work_date.isoformat() in touched:
                continue
            figures = self.figures[row.work_date]
            figures.fetched, figures.quarantined = int(row.entries), int(row.quarantined)
            figures.resumed_from = row.run_id
            resumed.add(row.work_date)
        if resumed:
            self.log.info(
                f"Resuming {self.first}..{self.last}: {len(resumed)} of {len(self.dates)} work "
                "dates were landed by an unfinished run and have not changed since; "
                "fetching the rest"
            )
        return resumed

    # ---------------------------------------------------------------------- stages

    def _batches(self, pages: Iterable[tuple[date, list[dict]]]) -> Iterator[EntryBatch]:
        """Consecutive fetched dates joined into chunks of about ``chunk_entries`` entries,
        or of what ``commit_seconds`` brought."""
        days: list[date] = []
        payloads: list[tuple[date, list[dict]]] = []
        size, started = 0, time.monotonic()
        try:
            for day, rows in pages:
                if days and day != days[-1] + timedelta(days=1):  # a resumed date between
                    yield self._batch(days, payloads)
                    days, payloads, size = [], [], 0
                if not days:
                    started = time.monotonic()
                days.append(day)
                payloads.append((day, rows))
                size += len(rows)
                full = size >= self.chunk_entries
                if full or time.monotonic() - started >= self.commit_seconds:
                    yield self._batch(days, payloads)
                    days, payloads, size = [], [], 0
        except Exception:  # the fetch failed: the dates read whole so far are landed first
            if days:
                yield self._batch(days, payloads)
            raise
        if days:
            yield self._batch(days, payloads)

    def _batch(self, days: list[date], payloads: list[tuple[date, list[dict]]]) -> EntryBatch:
        """Validated entries as a warehouse frame; rejects (and entries of another date than
        the one asked for: a server ignoring the filter) filed under the date asked for."""
        entries: list[TimeEntry] = []
        rejected: list[Rejected] = []
        filed_under: list[date] = []
        for day, rows in payloads:
            parsed, bad = parse_payloads(TimeEntry, rows)
            for entry in parsed:
                if entry.belongs_to_date == day:
                    entries.append(entry)
                else:
                    reason = f"belongsToDate {entry.belongs_to_date} asked for {day}"
                    bad.append(Rejected(payload=entry.raw, reason=reason))
            rejected += bad
            filed_under += [day] * len(bad)
            self.figures[day].quarantined = len(bad)
        frame = entries_frame(entries, self.fetched_at)
        self._count(frame)
        self.rejected += len(rejected)
        quarantine = quarantine_frame(rejected, filed_under, self.progress.run_id, self.fetched_at)
        return EntryBatch(DateWindow(days[0], days[-1] + timedelta(days=1)), frame, quarantine)

    def _count(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        for day, rows in frame.groupby("belongs_to_date", sort=False):
            figures = self.figures[day]
            figures.fetched = len(rows)
            figures.statuses = Counter(rows["status"].fillna("(missing)"))
            figures.first_time = rows["time_utc"].min()
            figures.last_time = rows["time_utc"].max()

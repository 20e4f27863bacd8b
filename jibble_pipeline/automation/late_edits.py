"""Late edits: entries edited, archived or added days after their work date.

The 10-minute schedule refreshes only the work dates that can still change in the normal
course of a day. Older dates change when someone corrects a timesheet. The sensor here
keeps a durable ``updatedAt`` watermark in its cursor, asks Jibble for entries changed
since it (minus a safety overlap), and requests re-materialisation of exactly the work
dates those entries touch (their new date, and their stored old date when an edit moved
them). The watermark advances only once the runs it requested have succeeded; a failed
run leaves it where it was, so the next evaluation asks again. Because of the overlap each
query sees again the changes the previous one handled: the cursor remembers those, by entry
id and ``updatedAt``, so that one edit is re-derived once.
"""

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import cast

import dagster as dg
from psycopg import sql

from jibble_pipeline.assets.jibble_api import tenant_client
from jibble_pipeline.automation.schedules import refresh_window
from jibble_pipeline.automation.sensors import UNFINISHED, running_sensor
from jibble_pipeline.jibble.client import JibbleClient
from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.jibble.tenant import UPDATED_AT_FILTER
from jibble_pipeline.partitions import daily_partitions, range_tags, run_days
from jibble_pipeline.warehouse.drift import drift
from jibble_pipeline.warehouse.resource import WarehouseResource
from jibble_pipeline.warehouse.tenant import load_profile, tenant_key

WATERMARK_TAG = "jibble/late_edits_until"
OVERLAP = timedelta(minutes=10)  # clock skew and entries committed late on Jibble's side
MAX_GAP_DAYS = 3  # dates closer than this share one run (refetching a day costs little)
LOST_RUNS_AFTER = timedelta(hours=1)  # requested runs never seen by then: ask again
SWEEP_DAYS = 31  # the sweep reads the work dates of the last month again
SWEEP_SECONDS = 30.0  # an evaluation reads no longer than this, well inside a sensor's limit
SWEEP_EVERY = timedelta(minutes=10)  # a pass starts this long after the last one started
SWEEP_TAG = "jibble/late_edits_sweep"

refetch_work_dates = dg.define_asset_job(
    "refetch_work_dates",
    selection=dg.AssetSelection.assets(
        "raw_time_entries", "quarantined_entries", "sessions", "daily_attendance"
    ),
    description="Re-fetch and re-derive a range of work dates (late edits, manual repairs).",
)


@dataclass
class LateEditsCursor:
    """``watermark``: every change before it has landed. ``pending_until``: the runs
    requested for changes up to that instant, not yet known to have succeeded.

    ``handled`` (entry id -> ``updatedAt``): the changes inside the overlap window that
    succeeded runs have handled, which the next query returns again and must not re-run.
    ``pending_changes``: the ones the pending runs handle; they join ``handled`` only once
    those runs succeed, so a failed run asks again for all of them. Both keep only changes
    the next query can see again, so the cursor stays small; cursors written before these
    two fields existed load with both empty."""

    watermark: str
    pending_until: str | None = None
    pending_runs: list[str] = field(default_factory=list)
    handled: dict[str, str] = field(default_factory=dict)
    pending_changes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, text: str | None) -> "LateEditsCursor | None":
        return cls(**json.loads(text)) if text else None

    def dump(self) -> str:
        return json.dumps(asdict(self))


def date_ranges(dates: Iterable[date], max_gap_days: int = MAX_GAP_DAYS) -> list[tuple[date, date]]:
    """Sorted dates merged into inclusive ranges; dates at most ``max_gap_days`` apart join.

    >>> date_ranges([date(2025, 1, 9), date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 30)])
    [(datetime.date(2025, 1, 2), datetime.date(2025, 1, 3)), (datetime.date(2025, 1, 9), \
datetime.date(2025, 1, 9)), (datetime.date(2025, 1, 30), datetime.date(2025, 1, 30))]
    """
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(dates)):
        if ranges and (day - ranges[-1][1]).days <= max_gap_days:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def dates_to_refetch(changed: list[dict], stored_dates: Iterable[date], now: datetime) -> set[date]:
    """Work dates of changed entries (and where they were stored before), within the
    partitions, leaving out the dates the 10-minute schedule refreshes anyway."""
    dates = set(stored_dates)
    for payload in changed:
        try:
            dates.add(date.fromisoformat(str(payload.get("belongsToDate"))))
        except ValueError:
            continue  # an unreadable entry is quarantined when its date is fetched
    first_partition = daily_partitions.start.date()
    scheduled_first, _ = refresh_window(now, first_partition)
    return {d for d in dates if first_partition <= d < scheduled_first}


def _version(payload: object) -> tuple[str, str] | None:
    """(entry id, ``updatedAt`` in UTC) of a changed entry, or None without them: a new edit
    of an entry has a new ``updatedAt``, the same change seen again has the same."""
    if not isinstance(payload, dict) or not payload.get("id"):
        return None
    try:
        updated = datetime.fromisoformat(str(payload.get("updatedAt")))
    except ValueError:
        return None
    updated = updated.astimezone(UTC) if updated.tzinfo else updated.replace(tzinfo=UTC)
    return str(payload["id"]), updated.isoformat()


def versions(changed: Iterable[object]) -> dict[str, str]:
    """Entry id -> ``updatedAt`` of the changed entries that have both."""
    return dict(version for payload in changed if (version := _version(payload)))


def unhandled(changed: list[dict], handled: dict[str, str]) -> list[dict]:
    """The changes not handled yet. An entry without a usable ``updatedAt`` counts as new
    each time: nothing tells whether it is the change handled before."""
    return [
        p
        for p in changed
        if (version := _version(p)) is None or handled.get(version[0]) != version[1]
    ]


def _within_overlap(changes: dict[str, str], watermark: str) -> dict[str, str]:
    """The changes a query from ``watermark`` returns again (``updatedAt`` at or after
    ``watermark - OVERLAP``); older ones cannot come back, so the cursor forgets them."""
    since = datetime.fromisoformat(watermark) - OVERLAP
    return {i: at for i, at in changes.items() if datetime.fromisoformat(at) >= since}


def _stored_dates(warehouse: WarehouseResource, entry_ids: list[str]) -> list[date]:
    if not entry_ids:
        return []
    query = sql.SQL("SELECT DISTINCT belongs_to_date FROM {} WHERE entry_id = ANY(%(ids)s)").format(
        warehouse.table("raw_time_entries")
    )
    return list(warehouse.query_frame(query, {"ids": entry_ids})["belongs_to_date"])


def _runs_state(instance: dg.DagsterInstance, until: str, now: datetime) -> str:
    """``succeeded``, ``failed`` or ``waiting`` for the runs requested up to ``until``."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={WATERMARK_TAG: until}))
    if not runs:
        lost = now - datetime.fromisoformat(until) > LOST_RUNS_AFTER
        return "failed" if lost else "waiting"
    if any(r.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED) for r in runs):
        return "failed"
    done = all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    return "succeeded" if done else "waiting"


@running_sensor(
    refetch_work_dates,
    300,
    "Re-derives past work dates whose entries changed in Jibble (updatedAt).",
)
def late_edits_sensor(
    context: dg.SensorEvaluationContext, jibble: JibbleResource, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    now = datetime.now(UTC).replace(microsecond=0)
    cursor = LateEditsCursor.load(context.cursor)
    if cursor is None:
        # History is loaded by backfills; watching starts now.
        context.update_cursor(LateEditsCursor(watermark=now.isoformat()).dump())
        return dg.SkipReason(f"Watching for late edits from {now.isoformat()}")

    if cursor.pending_until is not None:
        state = _runs_state(context.instance, cursor.pending_until, now)
        if state == "waiting":
            return dg.SkipReason(f"Waiting for the runs of changes up to {cursor.pending_until}")
        if state == "succeeded":
            handled = cursor.handled | cursor.pending_changes
            until = cursor.pending_until
            cursor = LateEditsCursor(watermark=until, handled=_within_overlap(handled, until))
        else:
            context.log.warning("A late-edit run failed; asking Jibble again from the watermark")
            cursor = LateEditsCursor(watermark=cursor.watermark, handled=cursor.handled)

    since = datetime.fromisoformat(cursor.watermark) - OVERLAP
    with tenant_client(jibble, warehouse, context.log) as client:
        changed = client.time_entries_changed_since(since, until=now)
    if changed is None:
        return dg.SkipReason(
            "This Jibble tenant cannot filter on updatedAt: late_edits_sweep reads recent "
            "work dates again instead"
        )
    fresh = unhandled(changed, cursor.handled)
    ids = [str(p["id"]) for p in fresh if isinstance(p, dict) and p.get("id")]
    dates = dates_to_refetch(fresh, _stored_dates(warehouse, ids), now)
    if not dates:
        handled = _within_overlap(cursor.handled | versions(fresh), now.isoformat())
        context.update_cursor(LateEditsCursor(watermark=now.isoformat(), handled=handled).dump())
        return dg.SkipReason(
            f"{len(changed)} changed entries ({len(changed) - len(fresh)} already handled), "
            "none new on a past work date"
        )

    until = now.isoformat()
    requests = [
        dg.RunRequest(
            run_key=f"late-edits:{until}:{first}",
            tags={**range_tags(first, last), WATERMARK_TAG: until},
        )
        for first, last in date_ranges(dates)
    ]
    context.log.info(
        f"{len(fresh)} entries changed since {since.isoformat()} "
        f"({len(changed) - len(fresh)} already handled): re-deriving "
        f"{len(dates)} work dates in {len(requests)} run(s)"
    )
    pending = LateEditsCursor(
        cursor.watermark,
        until,
        [cast(str, r.run_key) for r in requests],  # each request above has one
        handled=cursor.handled,
        pending_changes=_within_overlap(versions(fresh), until),
    )
    return dg.SensorResult(run_requests=requests, cursor=pending.dump())


# ------------------------------------------------------------------------------------ sweep


@dataclass
class SweepCursor:
    """``next_date``: where the pass in progress goes on (None: a new pass starts);
    ``passes``: passes started so far; ``started``: when the last pass started."""

    next_date: str | None = None
    passes: int = 0
    started: str | None = None

    @classmethod
    def load(cls, text: str | None) -> "SweepCursor":
        return cls(**json.loads(text)) if text else cls()

    def dump(self) -> str:
        return json.dumps(asdict(self))


def sweep_window(now: datetime, first_partition: date) -> tuple[date, date] | None:
    """The work dates the sweep reads: the last ``SWEEP_DAYS`` days, up to the first date
    the 10-minute schedule refreshes anyway (None when nothing is left)."""
    scheduled_first, _ = refresh_window(now, first_partition)
    first = max(first_partition, now.date() - timedelta(days=SWEEP_DAYS))
    last = scheduled_first - timedelta(days=1)
    return (first, last) if first <= last else None


def read_slice(
    client: JibbleClient, first: date, last: date, budget: int
) -> tuple[dict[date, list], date]:
    """Whole work dates from ``first`` on, until ``last`` or the slice's ``budget`` of
    requests (or ``SWEEP_SECONDS``) is spent; returns them and the date after the last one
    read."""
    started, requests = time.monotonic(), client.stats.requests
    fetched: dict[date, list] = {}
    day = first
    while day <= last:
        if client.stats.requests - requests >= budget:
            break
        if time.monotonic() - started >= SWEEP_SECONDS:
            break
        for read, rows in client.time_entries_by_date([day]):
            fetched[read] = rows
        day += timedelta(days=1)
    return fetched, day


def _dates_in_flight(instance: dg.DagsterInstance) -> set[date]:
    """Work dates of the sweep's runs not finished yet (not asked for twice)."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={SWEEP_TAG: "1"}, statuses=UNFINISHED))
    dates: set[date] = set()
    for run in runs:
        dates |= set(run_days(run.tags))
    return dates


SWEEP_DESCRIPTION = (
    "For a Jibble tenant that cannot filter on updatedAt: reads the last month's work dates "
    "again, a slice a minute, and re-derives those that changed."
)


@running_sensor(refetch_work_dates, 60, SWEEP_DESCRIPTION)
def late_edits_sweep(
    context: dg.SensorEvaluationContext, jibble: JibbleResource, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    profile = load_profile(warehouse.open(), tenant_key(jibble.tenant))
    if profile.get(UPDATED_AT_FILTER) is None:
        with tenant_client(jibble, warehouse, context.log) as client:
            client.updated_at_filterable()  # learned, and kept for every run and sensor
        profile = load_profile(warehouse.open(), tenant_key(jibble.tenant))
    if profile.get(UPDATED_AT_FILTER) != "refused":
        return dg.SkipReason(
            "This Jibble tenant filters on updatedAt: late_edits_sensor follows its changes"
        )
    now = datetime.now(UTC).replace(microsecond=0)
    first_partition = daily_partitions.start.date()
    window = sweep_window(now, first_partition)
    if window is None:
        return dg.SkipReason("No work date older than the 10-minute schedule's yet")
    cursor = SweepCursor.load(context.cursor)
    start = date.fromisoformat(cursor.next_date) if cursor.next_date else None
    if start is None or not window[0] <= start <= window[1]:
        due = datetime.fromisoformat(cursor.started) + SWEEP_EVERY if cursor.started else now
        if now < due:
            return dg.SkipReason(f"Sweep pass {cursor.passes} is done; the next starts at {due}")
        start, cursor.passes, cursor.started = window[0], cursor.passes + 1, now.isoformat()
    with tenant_client(jibble, warehouse, context.log) as client:
        fetched, after_last = read_slice(client, start, window[1], jibble.sweep_requests)
        requests = client.stats.requests
    found = drift(warehouse.open(), fetched)
    scheduled_first, _ = refresh_window(now, first_partition)
    dates = {d for d in found.dates if first_partition <= d < scheduled_first}
    dates -= _dates_in_flight(context.instance)
    cursor.next_date = after_last.isoformat() if after_last <= window[1] else None
    read = f"{start}..{after_last - timedelta(days=1)}" if fetched else "nothing"
    context.log.info(
        f"Sweep pass {cursor.passes}: read {read} again ({requests} requests); "
        f"{len(dates)} work date(s) changed"
    )
    run_requests = [
        dg.RunRequest(
            run_key=f"late-edits-sweep:{cursor.passes}:{first}:{last}",
            tags={**range_tags(first, last), SWEEP_TAG: "1"},
        )
        for first, last in date_ranges(dates)
    ]
    return dg.SensorResult(run_requests=run_requests, cursor=cursor.dump())

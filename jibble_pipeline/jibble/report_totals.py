"""Jibble's own totals, to reconcile the pipeline's against: tracked time per member
(``TrackedTimeReport``) and hours logged as durations (``HourEntries``).

Either may be missing from a tenant's plan; the report is asked in the shape the tenant
takes (``tenant.REPORT_SHAPES``), on its own host (``time_attendance_url``).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from jibble_pipeline.jibble.errors import JibbleError, JibbleStatusError
from jibble_pipeline.jibble.odata import between_dates
from jibble_pipeline.jibble.paging import Collection
from jibble_pipeline.jibble.paths import HOUR_ENTRIES_PATH, TRACKED_TIME_REPORT_PATH
from jibble_pipeline.jibble.probing import negotiated
from jibble_pipeline.jibble.reports import (
    ReportUnavailable,
    duration_format,
    tracked_seconds_by_member,
)
from jibble_pipeline.jibble.tenant import (
    HOUR_ENTRIES,
    HOUR_ENTRY_FILTERS,
    REPORT_DURATIONS,
    REPORT_SHAPE,
    REPORT_SHAPES,
)

if TYPE_CHECKING:
    from jibble_pipeline.jibble.client import JibbleClient


def tracked_time_by_member(
    client: JibbleClient, first: date, last: date
) -> dict[str, float] | ReportUnavailable:
    """Jibble's own tracked seconds per person id for the work dates [first, last]
    (``TrackedTimeReport``, ``groupBy=Member``), or why this tenant cannot have them."""
    try:
        rows = negotiated(
            client.profile,
            REPORT_SHAPE,
            REPORT_SHAPES,
            lambda shape: _report(client, first, last, shape),
            "TrackedTimeReport",
        )
    except JibbleStatusError as error:
        if error.status == 402:
            return ReportUnavailable(
                "not available: the Jibble plan does not include TrackedTimeReport "
                f"(402 {error.code or 'payment required'})",
                402,
            )
        if error.status == 404:
            return ReportUnavailable(
                "not available: this Jibble tenant has no TrackedTimeReport (404 at "
                f"{client.time_attendance_url}; see JIBBLE_TIME_ATTENDANCE_URL)",
                404,
            )
        raise
    durations = duration_format(rows)
    if durations is not None:
        client.profile.learn(REPORT_DURATIONS, durations, "as the report writes them")
    try:
        return tracked_seconds_by_member(rows)
    except ValueError as error:
        raise JibbleError(f"GET {TRACKED_TIME_REPORT_PATH}: {error}") from None


def hour_entries(client: JibbleClient, first: date, last: date) -> list[dict[str, Any]] | None:
    """Hours logged as durations (``HourEntries``) of the work dates [first, last], or
    None when the tenant has none to give (404, 402)."""
    url = f"{client.time_tracking_url}{HOUR_ENTRIES_PATH}"

    def read(field: str) -> list[dict]:
        condition = between_dates(field, first, last) if field else ""
        query = {"$filter": condition} if condition else {}
        rows = client.read(Collection(url, HOUR_ENTRIES_PATH, query))
        if field:
            return rows
        return [row for row in rows if _work_date_in(row, first, last)]

    try:
        rows = negotiated(
            client.profile, HOUR_ENTRIES, HOUR_ENTRY_FILTERS, read, "HourEntries $filter"
        )
    except JibbleStatusError as error:
        if error.status in (402, 403, 404):
            return None
        raise
    return client.organisations.ours(HOUR_ENTRIES_PATH, rows)


def _report(client: JibbleClient, first: date, last: date, shape: str) -> list[dict]:
    query = {"from": first.isoformat(), "to": last.isoformat(), "groupBy": "Member"}
    url = f"{client.time_attendance_url}{TRACKED_TIME_REPORT_PATH}"
    if shape == "paged":
        return client.read(Collection(url, TRACKED_TIME_REPORT_PATH, query), attendance=True)
    name, _, value = shape.partition("=")
    body = client.get_json(url, {**query, name: value}, TRACKED_TIME_REPORT_PATH, attendance=True)
    rows = body.get("value")
    if not isinstance(rows, list):
        raise JibbleError(f"GET {TRACKED_TIME_REPORT_PATH}: the answer has no 'value' list")
    return rows


def _work_date_in(row: Any, first: date, last: date) -> bool:
    value = row.get("belongsToDate") or row.get("date") if isinstance(row, dict) else None
    try:
        return first <= date.fromisoformat(str(value)[:10]) <= last
    except ValueError:
        return False

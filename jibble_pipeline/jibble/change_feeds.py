"""Time entries that changed at Jibble since a moment: ``$filter`` on ``updatedAt``.

Not every tenant takes that filter. A 400 is told apart (once) by the simplest query on
``updatedAt``: refused, the filter is (learned, and these feeds answer None); accepted, the
sort order was refused and is learned like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from jibble_pipeline.jibble.errors import JibbleStatusError
from jibble_pipeline.jibble.odata import (
    after,
    all_of,
    any_of,
    at_or_after,
    before,
    between_dates,
    on_work_date,
    query_options,
)
from jibble_pipeline.jibble.paging import Collection
from jibble_pipeline.jibble.paths import TIME_ENTRIES_PATH
from jibble_pipeline.jibble.probing import negotiated
from jibble_pipeline.jibble.tenant import ENTRY_ORDER, ENTRY_ORDERS, UPDATED_AT_FILTER

if TYPE_CHECKING:
    from jibble_pipeline.jibble.client import JibbleClient


def changed_since(
    client: JibbleClient,
    since: datetime,
    until: datetime | None = None,
    work_dates: tuple[date, date] | None = None,
) -> list[dict[str, Any]] | None:
    """Entries created, edited or archived at or after ``since`` (``updatedAt``), of the
    work dates ``work_dates`` (first, last) when given; None when the tenant cannot
    filter on ``updatedAt``."""
    conditions = [at_or_after("updatedAt", since)]
    if until is not None:
        conditions.append(before("updatedAt", until))
    if work_dates is not None:
        conditions.append(between_dates("belongsToDate", *work_dates))
    return _changed_entries(client, all_of(*conditions))


def newer_than(
    client: JibbleClient, newest: Mapping[date, datetime | None]
) -> list[dict[str, Any]] | None:
    """Entries of each work date in ``newest`` whose ``updatedAt`` is after the date's
    instant (every entry of a date mapped to None), in one query: what changed at
    Jibble since the newest version held of each date. None when the tenant cannot
    filter on ``updatedAt``."""
    if not newest:
        return []
    clauses = [
        all_of(on_work_date(day), after("updatedAt", moment))
        if moment is not None
        else on_work_date(day)
        for day, moment in sorted(newest.items())
    ]
    return _changed_entries(client, any_of(*clauses))


def updated_at_filterable(client: JibbleClient) -> bool:
    """Whether the tenant takes a ``$filter`` on ``updatedAt`` (asked once if unknown)."""
    known = client.profile.get(UPDATED_AT_FILTER)
    if known is None:
        refused = _updated_at_refused(client)
        if not refused:
            client.profile.learn(UPDATED_AT_FILTER, "accepted", "accepted")
        return not refused
    return known != "refused"


def _changed_entries(client: JibbleClient, condition: str) -> list[dict[str, Any]] | None:
    """Entries matching an ``updatedAt`` condition, or None when the tenant refuses a
    filter on ``updatedAt`` (module docstring)."""
    profile = client.profile
    if profile.get(UPDATED_AT_FILTER) == "refused":
        return None

    def read(order: str) -> list[dict]:
        return client.read(_time_entries(client, query_options(condition, order)))

    known = profile.get(ENTRY_ORDER)
    try:
        rows = read(ENTRY_ORDERS[0] if known is None else known)
    except JibbleStatusError as error:
        if error.status != 400:
            raise
        if _updated_at_refused(client):
            return None
        rows = negotiated(profile, ENTRY_ORDER, ENTRY_ORDERS, read, "TimeEntries $orderby")
    else:
        if known is None:
            profile.learn(ENTRY_ORDER, ENTRY_ORDERS[0], "accepted")
    profile.learn(UPDATED_AT_FILTER, "accepted", "accepted")
    return client.organisations.ours(TIME_ENTRIES_PATH, rows)


def _updated_at_refused(client: JibbleClient) -> bool:
    """Asks the simplest ``updatedAt`` filter; a 400 is learned as the tenant's refusal."""
    query = {"$filter": at_or_after("updatedAt", datetime.now(UTC)), "$top": "1"}
    try:
        client.read(_time_entries(client, query), whole=False)
    except JibbleStatusError as probe:
        if probe.status != 400:
            raise
        client.profile.learn(UPDATED_AT_FILTER, "refused", f"400: {probe.detail}")
        return True
    return False


def _time_entries(client: JibbleClient, query: Mapping[str, str]) -> Collection:
    return Collection(f"{client.time_tracking_url}{TIME_ENTRIES_PATH}", TIME_ENTRIES_PATH, query)

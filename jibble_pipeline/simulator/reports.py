"""Jibble's own totals: ``GET /v1/TrackedTimeReport`` of the time-attendance host, computed from
the simulator's entries as they are now, by Jibble's reading of them.

Jibble's reading (kept apart from the pipeline's rules on purpose: the simulator stands alone):
the **Active** entries (status ``Active`` or none) of each person and work date
(``belongsToDate``), ordered by ``time`` then id; each ``In`` counts until the next entry of
that person and date, whatever its type. An ``In`` with a ``breakId`` starts a break, which
is not tracked time. An ``In`` with no later entry (still clocked in) counts nothing;
archived entries count nothing.

The answer is OData-like, in the shape real integrations read (one row per group, durations
as ISO 8601)::

    {"@odata.context": ".../$metadata#TrackedTimeReport",
     "value": [{"id": "<personId>", "subject": {"entityType": "Member", "id": "<personId>",
                "name": "Ada Lovelace", "isDeleted": false, "chipColor": null},
                "time": "PT38H12M5S", "trackedTime": "PT38H12M5S", "billableAmount": 0,
                "items": [...]}]}

- ``from`` and ``to`` (required) bound the work dates, both inclusive; the simulator reads
  their date part, so ``2025-02-03`` and ``2025-02-03T00:00:00.000Z`` are the same.
- ``groupBy``: ``Member`` (default; ``id`` is the person id), ``Date`` (``id`` like
  ``03 February 2025``) or ``Activity`` (``id`` the activity id, ``null`` for none);
  ``subGroupBy`` one of those or ``None`` fills each row's ``items`` the same way.
- ``time`` equals ``trackedTime`` here (breaks are not modelled in the report); members,
  dates and activities with no Active entry in the range are left out.
- Rows are ordered by ``id`` and paged like the collections (``$top``, ``$skip``,
  ``$count``, silently capped).
- Hours logged as durations (``HourEntries``, when the tenant has them) count as tracked time
  of their person, date and activity.

A tenant of the public callers' dialect (``Dialect.public_reports``) requires ``subGroupBy``,
refuses the paging options and answers rows ``{"id", "entityType", "trackedTime"}`` (with
``items`` when sub-grouped) whose durations are .NET TimeSpans (``1.02:03:04``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from jibble_pipeline.simulator.timeformat import instant_ms

REPORT_PATH = "/v1/TrackedTimeReport"
GROUPINGS = ("Member", "Date", "Activity")
# A tenant whose plan or set-up lacks the report: its status and error code.
UNAVAILABLE_ANSWERS = {
    "restricted": (402, "feature_restricted_subscription", "Your plan does not include reports"),
    "missing": (404, "NotFound", f"No resource at {REPORT_PATH}"),
}
REPORT_AVAILABILITY = ("available", *UNAVAILABLE_ANSWERS)

Tracked = tuple[str, date, str | None, int]  # person, work date, activity, seconds


class ReportError(ValueError):
    """A report query the server cannot answer (HTTP 400 with this message)."""


def tracked_time(entries: Iterable[Mapping[str, Any]]) -> list[Tracked]:
    """Seconds tracked per (person, work date, activity): each Active work ``In`` until the
    next Active entry of its person and date (rounded to the second per interval)."""
    days: dict[tuple[str, str], list[tuple[int, str, Mapping[str, Any]]]] = defaultdict(list)
    for entry in entries:
        if entry.get("status") not in (None, "Active"):
            continue
        person, day, moment = entry.get("personId"), entry.get("belongsToDate"), entry.get("time")
        if not (isinstance(person, str) and isinstance(day, str) and isinstance(moment, str)):
            continue  # malformed: Jibble's report cannot place it either
        days[(person, day)].append((instant_ms(moment), str(entry.get("id")), entry))
    totals: dict[tuple[str, date, str | None], int] = defaultdict(int)
    for (person, day), punches in days.items():
        punches.sort(key=lambda p: (p[0], p[1]))
        for (start, _, entry), (end, _, _) in zip(punches, punches[1:], strict=False):
            if entry.get("type") == "In" and not entry.get("breakId"):
                key = (person, date.fromisoformat(day), entry.get("activityId"))
                totals[key] += (end - start + 500) // 1000
        for _, _, entry in punches:  # a person-day with Active entries is listed, even at 0
            if entry.get("type") == "In" and not entry.get("breakId"):
                totals.setdefault((person, date.fromisoformat(day), entry.get("activityId")), 0)
    return [(p, d, a, s) for (p, d, a), s in totals.items()]


def logged_time(hour_entries: Iterable[Mapping[str, Any]]) -> list[Tracked]:
    """Seconds of the Active hour entries (hours logged as durations), as tracked time."""
    logged: list[Tracked] = []
    for entry in hour_entries:
        if entry.get("status") not in (None, "Active"):
            continue
        seconds = _iso_seconds(str(entry["duration"]))
        day = date.fromisoformat(entry["belongsToDate"])
        logged.append((entry["personId"], day, entry.get("activityId"), seconds))
    return logged


def report_rows(
    tracked: list[Tracked],
    group_by: str,
    sub_group_by: str | None,
    names: Mapping[str, Mapping[str, str]],
    *,
    public: bool = False,
) -> list[dict[str, Any]]:
    """The report's rows for ``groupBy``/``subGroupBy``; ``names``: {"Member": {id: name},
    "Activity": {id: name}}. ``public``: the public callers' row shape (module docstring)."""
    for grouping in (group_by, sub_group_by):
        if grouping is not None and grouping not in GROUPINGS:
            raise ReportError(f"groupBy must be one of {', '.join(GROUPINGS)}, got {grouping!r}")
    groups: dict[Any, list[Tracked]] = defaultdict(list)
    for tracked_row in tracked:
        groups[_key(tracked_row, group_by)].append(tracked_row)
    rows: list[dict[str, Any]] = []
    for key in sorted(groups, key=lambda k: (k is None, str(k) if k is not None else "")):
        members = groups[key]
        seconds = sum(m[3] for m in members)
        row = _public_row(group_by, key, seconds) if public else _row(group_by, key, seconds, names)
        if sub_group_by is not None:
            row["items"] = report_rows(members, sub_group_by, None, names, public=public)
        rows.append(row)
    return rows


def date_range(params: Mapping[str, str]) -> tuple[date, date]:
    """The work dates [from, to] of a query (their date part)."""
    try:
        first = date.fromisoformat(params["from"][:10])
        last = date.fromisoformat(params["to"][:10])
    except KeyError as missing:
        raise ReportError(f"{missing.args[0]} is required") from None
    except ValueError:
        raise ReportError("from and to must be dates or instants") from None
    if last < first:
        raise ReportError("to must not be before from")
    return first, last


def duration_text(seconds: int) -> str:
    """ISO 8601: ``PT38H12M5S``, ``PT45M``, ``PT0S``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    text += f"{secs}S" if secs or not text else ""
    return "PT" + text


def timespan_text(seconds: int) -> str:
    """.NET TimeSpan text: ``1.02:03:04`` (with days), ``38:12:05`` never, ``02:03:04``."""
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}." if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _iso_seconds(text: str) -> int:
    hours, _, rest = text.removeprefix("PT").partition("H")
    if not rest and not text.endswith("H"):
        hours, rest = "0", text.removeprefix("PT")
    minutes = rest.removesuffix("M") or "0"
    return int(hours or 0) * 3600 + int(minutes) * 60


def _public_row(grouping: str, key: Any, seconds: int) -> dict[str, Any]:
    row_id = key.strftime("%d %B %Y") if grouping == "Date" else key
    return {"id": row_id, "entityType": grouping, "trackedTime": timespan_text(seconds)}


def _key(row: Tracked, grouping: str) -> Any:
    person, day, activity, _ = row
    return {"Member": person, "Date": day, "Activity": activity}[grouping]


def _row(
    grouping: str, key: Any, seconds: int, names: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    if grouping == "Date":
        row_id: Any = key.strftime("%d %B %Y")
        name = row_id
    else:
        row_id = key
        name = names.get(grouping, {}).get(key, "No activity" if key is None else key)
    duration = duration_text(seconds)
    return {
        "id": row_id,
        "subject": {
            "entityType": grouping,
            "id": row_id,
            "name": name,
            "isDeleted": False,
            "chipColor": None,
        },
        "time": duration,
        "trackedTime": duration,
        "billableAmount": 0,
    }

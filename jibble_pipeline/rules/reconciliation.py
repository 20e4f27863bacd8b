"""Our weekly work hours against Jibble's own totals, agent by agent, with the causes we can
see (docs/rules.md, Reconciliation with Jibble's totals).

Pure frames in, frame out: the warehouse and Jibble are read elsewhere (the check
``hours_match_jibble``). Known causes of a difference, per agent-week:

- sessions with no end (open or incomplete): we count them zero, Jibble may count them;
- automatic clock-outs (``AutoOut``): Jibble ended the session at a time of its choosing;
- archived entries we hold: an archive Jibble made, or undid, changes what each side counts;
- late edits: entries changed at Jibble after our last fetch of their work date (an
  ``updatedAt`` newer than the newest we hold for that date), so our figure is stale;
- hours logged as durations (``HourEntries``): Jibble counts them, weekly hours leave them out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

import pandas as pd

from jibble_pipeline.rules.formatting import format_hours

KEY = ["week_start", "person_id"]
FACT_COLUMNS = ["work_seconds", "open_sessions", "auto_outs", "archived_entries"]
TABLE_COLUMNS = [
    "week_start", "agent", "group", "ours", "jibble", "difference", "difference_seconds", "causes",
]  # fmt: skip
NO_KNOWN_CAUSE = "no known cause"


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def hour_entry_weeks(logged: Iterable[tuple[str, date, float]]) -> pd.DataFrame:
    """Seconds logged as hour entries per agent-week, from (person, work date, seconds)."""
    rows = [(week_of(day), person, seconds) for person, day, seconds in logged]
    frame = pd.DataFrame(rows, columns=[*KEY, "hour_entry_seconds"])
    return frame.groupby(KEY, as_index=False)["hour_entry_seconds"].sum()


def late_edit_counts(
    changed: Iterable[Mapping[str, Any]], watermarks: Mapping[date, pd.Timestamp]
) -> pd.DataFrame:
    """Entries per agent-week changed at Jibble after our newest ``updatedAt`` of their work
    date (all of a date we hold nothing of), from Jibble's ``updatedAt``-filtered answer."""
    rows = []
    for entry in changed:
        person, day = entry.get("personId"), entry.get("belongsToDate")
        updated = entry.get("updatedAt")
        if not (isinstance(person, str) and isinstance(day, str)):
            continue
        try:
            work_date = date.fromisoformat(day)
            moment = pd.Timestamp(updated) if isinstance(updated, str) else None
        except ValueError:
            continue
        if moment is not None and moment.tzinfo is None:
            moment = moment.tz_localize("UTC")
        held = watermarks.get(work_date)
        if held is None or moment is None or moment > held:
            rows.append((week_of(work_date), person))
    frame = pd.DataFrame(rows, columns=KEY)
    return frame.groupby(KEY).size().rename("late_edits").reset_index()


def compare(
    ours: pd.DataFrame,
    jibble: pd.DataFrame,
    late_edits: pd.DataFrame,
    *,
    tolerance_seconds: float,
    agent_names: Mapping[str, str],
    agent_groups: Mapping[str, str],
    hour_entries: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every agent-week either side has: ``ours`` (``KEY``, ``group``, ``FACT_COLUMNS``),
    ``jibble`` (``KEY``, ``jibble_seconds``), ``late_edits`` (``KEY``, ``late_edits``),
    ``hour_entries`` (``KEY``, ``hour_entry_seconds``).

    Returns one row per agent-week with both figures, ``difference_seconds`` (Jibble's minus
    ours), ``differs`` (beyond the tolerance) and the ``causes`` seen, in ``TABLE_COLUMNS``
    plus the raw figures."""
    if hour_entries is None:
        hour_entries = pd.DataFrame(columns=[*KEY, "hour_entry_seconds"])
    merged = ours.merge(jibble, on=KEY, how="outer").merge(late_edits, on=KEY, how="left")
    merged = merged.merge(hour_entries, on=KEY, how="left")
    for column in [*FACT_COLUMNS, "jibble_seconds", "late_edits", "hour_entry_seconds"]:
        merged[column] = pd.to_numeric(merged[column]).fillna(0)
    merged["agent"] = merged["person_id"].map(lambda p: agent_names.get(p) or p)
    fallback = merged["person_id"].map(lambda p: agent_groups.get(p) or "(no group)")
    merged["group"] = merged["group"].where(merged["group"].notna(), fallback)
    merged["difference_seconds"] = (merged["jibble_seconds"] - merged["work_seconds"]).round()
    merged["differs"] = merged["difference_seconds"].abs() > tolerance_seconds
    merged["ours"] = merged["work_seconds"].map(format_hours)
    merged["jibble"] = merged["jibble_seconds"].map(format_hours)
    merged["difference"] = merged["difference_seconds"].map(_signed_hours)
    merged["causes"] = [_causes(row) for row in merged.to_dict(orient="records")]
    merged["difference_seconds"] = merged["difference_seconds"].astype("int64")
    ordered = merged.sort_values(["week_start", "agent"]).reset_index(drop=True)
    return ordered[[*TABLE_COLUMNS, "person_id", "work_seconds", "jibble_seconds", "differs"]]


def summary(compared: pd.DataFrame, tolerance_seconds: float) -> dict[str, Any]:
    """The figures the check reports, besides its table."""
    differing = compared[compared["differs"]]
    total = int(differing["difference_seconds"].abs().sum())
    return {
        "agents_compared": int(compared["person_id"].nunique()),
        "agents_differing": int(differing["person_id"].nunique()),
        "total_difference_seconds": total,
        "total_difference": format_hours(total),
        "tolerance_seconds": float(tolerance_seconds),
    }


def _signed_hours(seconds: float) -> str:
    return ("+" if seconds > 0 else "") + format_hours(seconds)


def _causes(row: Mapping[str, Any]) -> str:
    causes = []
    if row["open_sessions"]:
        causes.append(
            f"{_count(row['open_sessions'], 'session')} with no end (Jibble may count them, "
            "we count zero)"
        )
    if row["auto_outs"]:
        causes.append(f"{_count(row['auto_outs'], 'automatic clock-out')}")
    if row["archived_entries"]:
        causes.append(f"{_count(row['archived_entries'], 'archived entry', 'archived entries')}")
    if row["late_edits"]:
        causes.append(
            f"{_count(row['late_edits'], 'entry', 'entries')} changed at Jibble after our "
            "last fetch (late edits not fetched yet)"
        )
    if row["hour_entry_seconds"]:
        causes.append(
            f"{format_hours(row['hour_entry_seconds'])} logged as hour entries (HourEntries), "
            "which weekly hours leave out"
        )
    return "; ".join(causes) or NO_KNOWN_CAUSE


def _count(value: float, one: str, many: str | None = None) -> str:
    number = int(value)
    return f"{number} {one if number == 1 else (many or one + 's')}"

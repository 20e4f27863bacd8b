"""The daily operations alert as people read it: pure, no I/O.

One message per work date: a line per problem under its client group, in the agents' own
local time, as plain text (the email's text part and the webhook post) and HTML. What
concerns a client rather than an agent (behind its contract's pace, a week changed past the
correction cut-off) comes first, under "Clients".
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd

from jibble_pipeline.digest.content import utc_offset
from jibble_pipeline.warehouse.display_names import Names

LABELS = {
    "open": "Still clocked in (open)",
    "incomplete": "No clock-out (incomplete)",
    "auto_out": "Automatic clock-out",
    "orphan_out": "Clock-out with no clock-in",
    "quarantined": "Entry in quarantine",
    "no_tracking": "Tracked nothing on a working day",
    "pace_short": "Behind its contract's pace",
    "past_cutoff": "Week changed after the correction cut-off (not emailed)",
}
NO_GROUP = "No client group"
CLIENTS = "Clients"


@dataclass(frozen=True)
class Problem:
    kind: str
    who: str  # the agent, or the client
    what: str  # the rest of the line: activity, time, reason

    @property
    def line(self) -> str:
        return f"{LABELS[self.kind]}: {self.who}" + (f", {self.what}" if self.what else "")


@dataclass(frozen=True)
class GroupProblems:
    group: str
    problems: list[Problem]


@dataclass(frozen=True)
class DailyAlert:
    day: date
    groups: list[GroupProblems]

    @property
    def count(self) -> int:
        return sum(len(g.problems) for g in self.groups)

    @property
    def subject(self) -> str:
        found = f"{self.count} problem(s)" if self.count else "no problems"
        return f"Operations alert for {self.day:%a} {self.day.day} {self.day:%b %Y}: {found}"

    @property
    def text(self) -> str:
        lines = [self.subject, ""]
        if not self.groups:
            lines.append("Nothing to act on for this work date.")
        for group in self.groups:
            lines.append(f"{group.group} ({len(group.problems)})")
            lines += [f"  - {p.line}" for p in group.problems]
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    @property
    def html(self) -> str:
        parts = [f"<h2>{html.escape(self.subject)}</h2>"]
        if not self.groups:
            parts.append("<p>Nothing to act on for this work date.</p>")
        for group in self.groups:
            items = "".join(f"<li>{html.escape(p.line)}</li>" for p in group.problems)
            parts.append(f"<h3>{html.escape(group.group)} ({len(group.problems)})</h3>")
            parts.append(f"<ul>{items}</ul>")
        return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def per_group(self) -> list[dict[str, object]]:
        """Problems per group and kind, for the UI."""
        rows = []
        for group in self.groups:
            row: dict[str, object] = {"group": group.group, "problems": len(group.problems)}
            for kind in LABELS:
                row[kind] = sum(p.kind == kind for p in group.problems)
            rows.append(row)
        return rows


def _missing(value: object) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and value != value)


def _clock(moment: object, offset_minutes: object) -> str:
    """``Tue 7 Jan 09:00 (UTC+08:00)`` of a local wall time."""
    if _missing(moment):
        return ""
    local = pd.Timestamp(moment).to_pydatetime()
    offset = None if _missing(offset_minutes) else int(offset_minutes)  # type: ignore[call-overload]
    return f"{local:%a} {local.day} {local:%b} {local:%H:%M} ({utc_offset(offset)})"


def _what(row: dict, names: Names) -> str:
    kind = row["problem"]
    if kind in ("open", "incomplete", "auto_out"):
        activity = names.activity(row["activity_id"], row["kind"])
        at = _clock(row["local_time"], row["offset_minutes"])
        return f"{activity}, " + (
            f"clocked out by Jibble at {at}" if kind == "auto_out" else f"since {at}"
        )
    if kind == "orphan_out":
        return f"{int(row['entries'])} Out punch(es) with no open session (no hours)"
    if kind == "quarantined":
        return str(row["detail"])
    return ""


def build_alert(
    day: date, problems: pd.DataFrame, names: Names, of_clients: Sequence[Problem] = ()
) -> DailyAlert:
    """The alert of work date ``day`` from ``load_problems``' rows: groups by name (no
    group last), problems by kind then agent; ``of_clients`` first, under "Clients"."""
    by_group: dict[str, list[tuple[int, str, Problem]]] = {}
    for row in problems.to_dict(orient="records"):
        group_id = row["group_id"]
        group = NO_GROUP if _missing(group_id) else names.group(group_id)
        person = row["person_id"]
        agent = "(unknown agent)" if _missing(person) else names.agent(person)
        problem = Problem(row["problem"], agent, _what(row, names))
        by_group.setdefault(group, []).append((list(LABELS).index(problem.kind), agent, problem))
    ordered = sorted(by_group, key=lambda g: (g == NO_GROUP, g.lower()))
    groups = [
        GroupProblems(g, [p for *_, p in sorted(by_group[g], key=lambda t: t[:2])]) for g in ordered
    ]
    if of_clients:
        groups.insert(0, GroupProblems(CLIENTS, list(of_clients)))
    return DailyAlert(day, groups)

"""Display names of agents, client groups and activities, read from the warehouse's snapshots.

One lookup for everything people read: the digests, the report site, the exports, the alert
and the assets' UI tables. It lives with the warehouse, below both the assets and the digest
package, so each can import it without importing the other.

Two agents who share a name are told apart everywhere the same way (``agent_labels``): each is
shown with Jibble's person code, or else the local part of the email. The rule applies across
the organisation, not within one digest, so an agent reads the same in every digest, page,
export and alert.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # the digest package reads names without importing Dagster
    from jibble_pipeline.warehouse.resource import WarehouseResource

NO_ACTIVITY = "No activity"
BREAK = "Break"


@dataclass(frozen=True)
class Names:
    """Display names by id; an unknown id shows as itself."""

    agents: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)
    activities: Mapping[str, str] = field(default_factory=dict)

    def agent(self, person_id: str) -> str:
        return self.agents.get(person_id) or person_id

    def group(self, group_id: str | None) -> str:
        if group_id is None:
            return "(no group)"
        return self.groups.get(group_id) or group_id

    def activity(self, activity_id: str | None, kind: str = "work") -> str:
        if activity_id is None:
            return BREAK if kind == "break" else NO_ACTIVITY
        return self.activities.get(activity_id) or activity_id


def _text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value).strip() or None


def agent_labels(agents: Iterable[tuple[str, object, object, object]]) -> dict[str, str]:
    """Display labels by person id from ``(person_id, name, code, email)``: the name (the id
    when there is none), and where several agents share a name, each with a detail telling
    them apart: the person code, else the email's local part, else the id's start.

    >>> agent_labels([("p1", "John Malik", "AG012", None), ("p2", "John Malik", None,
    ...   "john.malik.2@agents.example"), ("p3", "Ana Cruz", "AG003", None)])
    {'p1': 'John Malik (AG012)', 'p2': 'John Malik (john.malik.2)', 'p3': 'Ana Cruz'}
    """
    rows = [
        (str(p), _text(name) or str(p), _text(code), _text(email))
        for p, name, code, email in agents
    ]
    counts = Counter(name.casefold() for _, name, _, _ in rows)
    shared = {name for name, count in counts.items() if count > 1}
    labels: dict[str, str] = {}
    for person_id, name, code, email in rows:
        if name.casefold() not in shared:
            labels[person_id] = name
            continue
        detail = code or (email.partition("@")[0] if email else None) or person_id[:8]
        labels[person_id] = f"{name} ({detail})"
    # Two details alike (the same local part at two domains): the id settles it.
    repeated = {label for label, count in Counter(labels.values()).items() if count > 1}
    for person_id, label in labels.items():
        if label in repeated:
            labels[person_id] = f"{label[:-1]}, {person_id[:8]})"
    return labels


def load_names(warehouse: WarehouseResource) -> Names:
    """The names of the ``agents``, ``client_groups`` and ``activities`` snapshots; a row
    without a name shows its id; agents who share a name are told apart (``agent_labels``)."""

    def lookup(table: str, key: str, name: str) -> dict[str, str]:
        frame = warehouse.read_table(table, columns=[key, name])
        return dict(zip(frame[key], frame[name].fillna(frame[key]), strict=True))

    people = warehouse.read_table("agents", columns=["person_id", "full_name", "code", "email"])
    return Names(
        agents=agent_labels(people.itertuples(index=False, name=None)),
        groups=lookup("client_groups", "group_id", "name"),
        activities=lookup("activities", "activity_id", "name"),
    )


def named(frame: pd.DataFrame, names: Names) -> pd.DataFrame:
    """``frame`` with readable ``agent``, ``group`` and ``activity`` columns added (for the
    UI's tables: a missing id reads ``(none)``)."""

    def label(ids: pd.Series, mapping: Mapping[str, str]) -> pd.Series:
        return ids.map(lambda i: "(none)" if i is None or pd.isna(i) else mapping.get(i, i))

    out = frame.copy()
    for column, key, mapping in (
        ("agent", "person_id", names.agents),
        ("group", "group_id", names.groups),
        ("activity", "activity_id", names.activities),
    ):
        if key in out.columns:
            out[column] = label(out[key], mapping)
    return out

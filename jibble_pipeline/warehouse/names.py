"""Display names of agents, client groups and activities, read from the warehouse's snapshots.

One lookup for everything people read: the digests, the report site and the assets' UI
tables. It lives with the warehouse, below both the assets and the digest package, so each
can import it without importing the other.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def load_names(warehouse: WarehouseResource) -> Names:
    """The names of the ``agents``, ``client_groups`` and ``activities`` snapshots; a row
    without a name shows its id."""

    def lookup(table: str, key: str, name: str) -> dict[str, str]:
        frame = warehouse.read_table(table, columns=[key, name])
        return dict(zip(frame[key], frame[name].fillna(frame[key]), strict=True))

    return Names(
        agents=lookup("agents", "person_id", "full_name"),
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

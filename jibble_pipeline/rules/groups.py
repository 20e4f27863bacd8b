"""Client group of each session, from the agent -> group history (docs/rules.md, Client groups)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from jibble_pipeline.rules.entries import text_series, text_values
from jibble_pipeline.schema import AGENT_GROUP_HISTORY

HISTORY_COLUMNS = AGENT_GROUP_HISTORY.column_names


def _instants(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.as_unit("ns")


def _normalised_history(history: pd.DataFrame) -> pd.DataFrame:
    if history.empty:
        history = pd.DataFrame(columns=HISTORY_COLUMNS)
    return pd.DataFrame(
        {
            "person_id": text_series(history["person_id"]),
            "group_id": text_series(history["group_id"]),
            "valid_from": _instants(history["valid_from"]).reset_index(drop=True),
            "valid_to": _instants(history["valid_to"]).reset_index(drop=True),
        },
        columns=HISTORY_COLUMNS,
    )


def assign_groups(sessions: pd.DataFrame, group_history: pd.DataFrame) -> pd.DataFrame:
    """``sessions`` with ``group_id`` = the agent's group at ``start_utc``.

    The history row that started last at or before the session start applies; a session
    before the agent's first observation gets the earliest known group, and an agent with
    no history at all gets None.
    """
    history = _normalised_history(group_history)
    history = history.dropna(subset=["person_id", "valid_from"])
    history = history.sort_values(["valid_from", "person_id"], kind="stable")
    probe = pd.DataFrame(
        {
            "person_id": text_series(sessions["person_id"]),
            "start": _instants(sessions["start_utc"]).reset_index(drop=True),
            "row": np.arange(len(sessions)),
        }
    ).sort_values("start", kind="stable")
    matched = pd.merge_asof(
        probe,
        history[["person_id", "group_id", "valid_from"]],
        left_on="start",
        right_on="valid_from",
        by="person_id",
        direction="backward",
    )
    earliest = history.drop_duplicates("person_id", keep="first").set_index("person_id")
    before_first = matched["person_id"].map(earliest["group_id"])
    groups = np.empty(len(sessions), dtype=object)
    groups[matched["row"].to_numpy()] = text_values(
        matched["group_id"].where(matched["valid_from"].notna(), before_first)
    )
    assigned = sessions.copy()
    assigned["group_id"] = pd.Series(groups, index=sessions.index, dtype=object)
    return assigned


def _same_group(left: pd.Series, right: pd.Series) -> pd.Series:
    return (left == right) | (left.isna() & right.isna())


def update_group_history(
    history: pd.DataFrame, agents: pd.DataFrame, observed_at: datetime
) -> pd.DataFrame:
    """The history after observing each agent's group at ``observed_at`` (slowly changing).

    An agent whose group changed gets its open row closed at ``observed_at`` and a new open
    row; an agent seen for the first time gets an open row from ``observed_at``; agents not
    in ``agents`` and agents whose group did not change keep their rows. Applying the same
    observation twice changes nothing.
    """
    observed = pd.Timestamp(observed_at).tz_convert("UTC").as_unit("ns")
    rows = _normalised_history(history)
    latest = pd.DataFrame(
        {
            "person_id": text_series(agents["person_id"]),
            "group_id": text_series(agents["group_id"]),
        }
    )
    latest = latest.dropna(subset=["person_id"]).drop_duplicates("person_id", keep="last")

    open_rows = rows[rows["valid_to"].isna()].sort_values("valid_from", kind="stable")
    open_rows = open_rows.drop_duplicates("person_id", keep="last")
    seen = latest.merge(
        open_rows[["person_id", "group_id", "valid_from"]].reset_index(names="row"),
        on="person_id",
        how="left",
        suffixes=("", "_open"),
    )
    has_open = seen["row"].notna()
    changed = has_open & ~_same_group(seen["group_id"], seen["group_id_open"])
    # A second observation at the same instant replaces the group instead of adding a row.
    replaced = changed & (seen["valid_from"] >= observed)
    closed = changed & ~replaced

    rows.loc[seen.loc[closed, "row"].astype(np.int64), "valid_to"] = observed
    replaced_rows = seen.loc[replaced, "row"].astype(np.int64)
    rows.loc[replaced_rows, "group_id"] = seen.loc[replaced, "group_id"].to_numpy()
    opened = seen.loc[closed | ~has_open, ["person_id", "group_id"]]
    new_rows = pd.DataFrame(
        {
            "person_id": text_series(opened["person_id"]),
            "group_id": text_series(opened["group_id"]),
            "valid_from": pd.Series([observed] * len(opened), dtype="datetime64[ns, UTC]"),
            "valid_to": pd.Series([pd.NaT] * len(opened), dtype="datetime64[ns, UTC]"),
        },
        columns=HISTORY_COLUMNS,
    )
    updated = pd.concat([rows, new_rows], ignore_index=True) if len(new_rows) else rows
    updated = updated.sort_values(["person_id", "valid_from"], kind="stable", ignore_index=True)
    return updated.astype({"person_id": object, "group_id": object})

"""Client group of a session and the agent -> group history (docs/rules.md, Client groups)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from jibble_pipeline.rules.groups import assign_groups, update_group_history
from jibble_pipeline.rules.sessions import derive_sessions
from jibble_pipeline_tests.reference_rules import (
    entries_frame,
    frame_records,
    instant,
    random_entries,
    reference_group,
    reference_sessions,
)

T0 = instant("2025-03-01T00:00:00Z")
T1 = instant("2025-03-10T12:00:00Z")
T2 = instant("2025-03-20T00:00:00Z")
HISTORY_COLUMNS = ["person_id", "group_id", "valid_from", "valid_to"]


def history(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    for column in ("valid_from", "valid_to"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.astype({"person_id": object, "group_id": object})


def agents(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["person_id", "group_id"]).astype(object)


MOVED = history([("p1", "g1", T0, T1), ("p1", "g2", T1, None), ("p3", None, T0, None)])


@pytest.mark.parametrize(
    ("person", "start", "group"),
    [
        ("p1", T0 - timedelta(days=30), "g1"),  # before the first observation: earliest group
        ("p1", T0, "g1"),
        ("p1", T1 - timedelta(seconds=1), "g1"),
        ("p1", T1, "g2"),  # valid_from is inclusive, valid_to exclusive
        ("p1", T2, "g2"),
        ("p2", T1, None),  # no history at all
        ("p3", T1, None),  # observed without a group
    ],
)
def test_group_valid_at_session_start(person, start, group):
    sessions = pd.DataFrame({"person_id": [person], "start_utc": [start], "group_id": [None]})
    assert assign_groups(sessions, MOVED)["group_id"].tolist() == [group]


def test_assign_keeps_order_index_and_columns_of_the_sessions():
    sessions = pd.DataFrame(
        {
            "session_id": ["s3", "s1", "s2"],
            "person_id": ["p1", "p2", "p1"],
            "group_id": [None, None, None],
            "start_utc": pd.to_datetime([T2, T1, T0 - timedelta(days=1)], utc=True),
        },
        index=[30, 10, 20],
    ).astype({"session_id": object, "person_id": object, "group_id": object})
    assigned = assign_groups(sessions, MOVED)
    assert list(assigned.index) == [30, 10, 20]
    assert list(assigned.columns) == list(sessions.columns)
    assert assigned["group_id"].tolist() == ["g2", None, "g1"]
    assert assigned["group_id"].dtype == object
    assert sessions["group_id"].isna().all()  # the input is left as it was


def test_assign_with_empty_history_or_sessions():
    sessions = pd.DataFrame({"person_id": ["p1"], "start_utc": pd.to_datetime([T1], utc=True)})
    assert assign_groups(sessions, history([]))["group_id"].tolist() == [None]
    empty = derive_sessions(entries_frame([]), now=T2).sessions
    assigned = assign_groups(empty, MOVED)
    assert assigned.empty and list(assigned.columns) == list(empty.columns)


def test_assign_matches_the_reference_on_random_sessions():
    frame = entries_frame(random_entries(11, 2000))
    moves = history(
        [
            ("person-0", "g1", instant("2025-03-08T00:00:00Z"), instant("2025-03-11T09:30:00Z")),
            ("person-0", "g2", instant("2025-03-11T09:30:00Z"), None),
            ("person-1", "g1", instant("2025-03-01T00:00:00Z"), None),
            ("person-2", "g3", instant("2025-03-12T00:00:00Z"), None),
        ]
    )
    assigned = assign_groups(derive_sessions(frame, now=T2).sessions, moves)
    reference, _, _ = reference_sessions(frame, T2, timedelta(hours=16))
    expected = {
        s["session_id"]: reference_group(frame_records(moves), s["person_id"], s["start_utc"])
        for s in reference
    }
    assert dict(zip(assigned["session_id"], assigned["group_id"], strict=True)) == expected


def test_new_agents_get_an_open_row():
    updated = update_group_history(history([]), agents([("p1", "g1"), ("p2", None)]), T0)
    assert frame_records(updated) == [
        {"person_id": "p1", "group_id": "g1", "valid_from": T0, "valid_to": None},
        {"person_id": "p2", "group_id": None, "valid_from": T0, "valid_to": None},
    ]
    assert list(updated.columns) == HISTORY_COLUMNS


def test_group_change_closes_the_open_row_and_opens_a_new_one():
    start = history([("p1", "g1", T0, None), ("p2", "g1", T0, None)])
    updated = update_group_history(start, agents([("p1", "g2"), ("p2", "g1")]), T1)
    assert frame_records(updated) == [
        {"person_id": "p1", "group_id": "g1", "valid_from": T0, "valid_to": T1},
        {"person_id": "p1", "group_id": "g2", "valid_from": T1, "valid_to": None},
        {"person_id": "p2", "group_id": "g1", "valid_from": T0, "valid_to": None},
    ]


@pytest.mark.parametrize(
    ("start", "observed"),
    [
        (history([("p1", "g1", T0, T1), ("p1", "g2", T1, None)]), agents([("p1", "g2")])),
        (history([("p1", None, T0, None)]), agents([("p1", None)])),
        (history([("p1", "g1", T0, None), ("p9", "g9", T0, None)]), agents([("p1", "g1")])),
    ],
    ids=["unchanged group", "still without group", "agent absent from the sync keeps its row"],
)
def test_unchanged_observation_leaves_history_as_it_was(start, observed):
    updated = update_group_history(start, observed, T2)
    assert frame_records(updated) == frame_records(start)


def test_update_is_idempotent():
    start = history([("p1", "g1", T0, None)])
    observed = agents([("p1", "g2"), ("p2", "g3")])
    once = update_group_history(start, observed, T1)
    assert frame_records(update_group_history(once, observed, T1)) == frame_records(once)
    assert frame_records(update_group_history(once, observed, T2)) == frame_records(once)


def test_change_back_and_forth_keeps_every_period():
    rows = history([])
    for at, group in [(T0, "g1"), (T1, "g2"), (T2, "g1")]:
        rows = update_group_history(rows, agents([("p1", group)]), at)
    assert [(r["group_id"], r["valid_from"], r["valid_to"]) for r in frame_records(rows)] == [
        ("g1", T0, T1),
        ("g2", T1, T2),
        ("g1", T2, None),
    ]
    sessions = pd.DataFrame(
        {"person_id": ["p1"] * 3, "start_utc": pd.to_datetime([T0, T1, T2], utc=True)}
    )
    assert assign_groups(sessions, rows)["group_id"].tolist() == ["g1", "g2", "g1"]


def test_second_observation_at_the_same_instant_replaces_the_group():
    once = update_group_history(history([]), agents([("p1", "g1")]), T1)
    twice = update_group_history(once, agents([("p1", "g2")]), T1)
    assert frame_records(twice) == [
        {"person_id": "p1", "group_id": "g2", "valid_from": T1, "valid_to": None}
    ]

"""The warehouse on a real Postgres: DDL, atomic partition replace, merge of raw entries."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from jibble_pipeline.jibble.frames import entries_frame, quarantine_frame
from jibble_pipeline.jibble.models import Rejected, TimeEntry, parse_payloads
from jibble_pipeline.schema import TABLES
from jibble_pipeline.warehouse.connection import redact, sqlalchemy_url
from jibble_pipeline.warehouse.date_window import DateWindow
from jibble_pipeline.warehouse.landing import (
    EntryBatch,
    RangeProgress,
    forget_landed,
    land_entries,
    landed_dates,
)
from jibble_pipeline.warehouse.store import Warehouse

WEEK = DateWindow(date(2025, 1, 6), date(2025, 1, 13))


def payload(entry_id: str, day: str, updated: str = "2025-01-06T10:00:00Z", **extra) -> dict:
    return {
        "id": entry_id, "personId": "p1", "type": "In", "time": f"{day}T08:00:00Z",
        "offset": "PT8H", "belongsToDate": day, "status": "Active", "updatedAt": updated,
        "someNewField": {"kept": True}, **extra,
    }  # fmt: skip


def raw_frame(payloads: list[dict], fetched_at: datetime) -> pd.DataFrame:
    entries, rejected = parse_payloads(TimeEntry, payloads)
    assert rejected == []
    return entries_frame(entries, fetched_at)


def rows(warehouse: Warehouse, name: str, order: str) -> list[tuple]:
    query = sql.SQL("SELECT * FROM {} ORDER BY {}").format(
        warehouse.identifier(name), sql.SQL(order)
    )
    with psycopg.connect(warehouse.url) as conn:
        return conn.execute(query).fetchall()


def session_frame(ids: list[str], day: date) -> pd.DataFrame:
    start = pd.Timestamp(f"{day}T08:00:00Z")
    return pd.DataFrame(
        {
            "session_id": ids, "person_id": "p1", "group_id": "g1", "activity_id": None,
            "belongs_to_date": day, "kind": "work", "start_utc": start,
            "end_utc": start + pd.Timedelta(hours=1), "duration_seconds": 3600,
            "status": "complete", "auto_out": False, "start_entry_id": ids,
            "end_entry_id": None, "offset_minutes": pd.array([480] * len(ids), dtype="Int64"),
            "start_local": start.tz_localize(None), "end_local": pd.NaT,
            "derived_at": pd.Timestamp("2025-01-20", tz=UTC),
        }
    )  # fmt: skip


@pytest.fixture
def warehouse(database_url, warehouse_schema) -> Warehouse:
    return Warehouse(database_url, warehouse_schema)


def test_tables_have_the_contract_columns_and_indexes(warehouse):
    warehouse.ensure_schema()
    Warehouse(warehouse.url, warehouse.schema).ensure_schema()  # idempotent
    with psycopg.connect(warehouse.url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s",
            (warehouse.schema,),
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s", (warehouse.schema,)
        ).fetchall()
    types = {(t, c): kind for t, c, kind in columns}
    assert types[("raw_time_entries", "raw_payload")] == "jsonb"
    assert types[("raw_time_entries", "time_utc")] == "timestamp with time zone"
    assert types[("raw_time_entries", "belongs_to_date")] == "date"
    assert types[("weekly_hours", "week_start")] == "date"
    assert ("weekly_hours_by_group", "group_id") in types
    for name, spec in TABLES.items():
        assert {c for t, c in types if t == name} == set(spec.columns)
    definitions = " ".join(d for (d,) in indexes)
    for index in ("(person_id, time_utc)", "(activity_id)", "(belongs_to_date)"):
        assert f"raw_time_entries USING btree {index}" in definitions


def test_a_partition_replace_is_atomic(warehouse):
    day = date(2025, 1, 7)
    warehouse.write("sessions", session_frame(["s1", "s2"], day), WEEK)
    before = rows(warehouse, "sessions", "session_id")

    broken = session_frame(["s3", "s4"], day)
    broken.loc[1, "person_id"] = None  # violates NOT NULL halfway through the COPY
    with pytest.raises(psycopg.errors.NotNullViolation):
        warehouse.write("sessions", broken, WEEK)
    assert rows(warehouse, "sessions", "session_id") == before

    warehouse.write("sessions", session_frame(["s5"], day), WEEK)
    assert [r[0] for r in rows(warehouse, "sessions", "session_id")] == ["s5"]


def test_a_replace_touches_only_its_window(warehouse):
    warehouse.write("sessions", session_frame(["a"], date(2025, 1, 7)), WEEK)
    next_week = DateWindow(date(2025, 1, 13), date(2025, 1, 20))
    warehouse.write("sessions", session_frame(["b"], date(2025, 1, 14)), next_week)
    warehouse.write("sessions", session_frame(["b2"], date(2025, 1, 15)), next_week)
    assert [r[0] for r in rows(warehouse, "sessions", "session_id")] == ["a", "b2"]
    read = warehouse.read("sessions", next_week)
    assert list(read["session_id"]) == ["b2"]
    assert isinstance(read["start_utc"].dtype, pd.DatetimeTZDtype)


def test_rows_outside_the_window_are_refused(warehouse):
    with pytest.raises(ValueError, match="outside the partitions"):
        warehouse.write("sessions", session_frame(["x"], date(2025, 2, 1)), WEEK)


def test_raw_entries_merge_newest_version_and_keep_what_disappears(warehouse):
    first_fetch = datetime(2025, 1, 10, tzinfo=UTC)
    original = [payload("e1", "2025-01-06"), payload("e2", "2025-01-07"),
                payload("e3", "2025-01-08")]  # fmt: skip
    summary = warehouse.write("raw_time_entries", raw_frame(original, first_fetch), WEEK)
    assert (summary.inserted, summary.updated) == (3, 0)

    second_fetch = datetime(2025, 1, 11, tzinfo=UTC)
    edited = payload("e2", "2025-01-07", updated="2025-01-09T00:00:00Z", note="fixed")
    stale = payload("e1", "2025-01-06", updated="2025-01-01T00:00:00Z", note="older")
    summary = warehouse.write("raw_time_entries", raw_frame([stale, edited], second_fetch), WEEK)
    assert (summary.updated, summary.unchanged, summary.marked_removed) == (1, 1, 1)

    stored = {r[0]: r for r in rows(warehouse, "raw_time_entries", "entry_id")}
    names = list(TABLES["raw_time_entries"].columns)
    at = {name: names.index(name) for name in names}
    assert stored["e1"][at["raw_payload"]] == original[0]  # an older version never wins
    assert stored["e1"][at["fetched_at"]] == first_fetch  # unchanged rows keep fetched_at
    assert stored["e2"][at["raw_payload"]] == json.loads(json.dumps(edited))
    assert stored["e2"][at["fetched_at"]] == second_fetch
    assert stored["e3"][at["removed_at"]] is not None  # gone at the source, kept here
    assert sorted(warehouse.read("raw_time_entries", WEEK)["entry_id"]) == ["e1", "e2"]

    # It comes back: no longer marked removed.
    warehouse.write("raw_time_entries", raw_frame(original, second_fetch), WEEK)
    stored = {r[0]: r for r in rows(warehouse, "raw_time_entries", "entry_id")}
    assert stored["e3"][at["removed_at"]] is None
    assert len(stored) == 3


def test_snapshots_are_upserted(warehouse):
    frame = pd.DataFrame(
        {"group_id": ["g1", "g2"], "name": ["Acme", "Brightside"], "code": [None, "BR"],
         "status": "Active", "raw_payload": ['{"id":"g1"}', '{"id":"g2"}'],
         "synced_at": pd.Timestamp("2025-01-01", tz=UTC)}
    )  # fmt: skip
    assert warehouse.write("client_groups", frame).inserted == 2
    renamed = frame.iloc[[0]].assign(name="Acme Dental")
    summary = warehouse.write("client_groups", renamed)
    assert (summary.inserted, summary.updated) == (0, 1)
    assert [r[1] for r in rows(warehouse, "client_groups", "group_id")] == [
        "Acme Dental",
        "Brightside",
    ]


def test_a_hostile_schema_name_is_only_ever_an_identifier(database_url):
    hostile = 'x"; DROP TABLE pg_class; --'
    warehouse = Warehouse(database_url, hostile)
    try:
        warehouse.write("sessions", session_frame(["s1"], date(2025, 1, 7)), WEEK)
        assert list(warehouse.read("sessions", WEEK)["session_id"]) == ["s1"]
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(hostile))
            )


def test_urls_are_redacted_and_given_the_psycopg2_driver():
    url = "postgresql://etl:s3cret-pw@db.example.com:5432/warehouse"
    assert redact(url) == "postgresql://etl:***@db.example.com:5432/warehouse"
    assert "s3cret" not in redact(url)
    assert sqlalchemy_url("postgres://u@h/d") == "postgresql+psycopg2://u@h/d"
    assert sqlalchemy_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg2://u@h/d"


def test_a_first_load_falls_back_to_merging_an_entry_moved_from_another_week(warehouse):
    fetched = datetime(2025, 1, 10, tzinfo=UTC)
    warehouse.write("raw_time_entries", raw_frame([payload("e1", "2025-01-10")], fetched), WEEK)
    next_week = DateWindow(date(2025, 1, 13), date(2025, 1, 20))
    moved = payload("e1", "2025-01-14", updated="2025-01-15T00:00:00Z")
    new = payload("e2", "2025-01-14")
    summary = warehouse.write("raw_time_entries", raw_frame([moved, new], fetched), next_week)
    assert (summary.inserted, summary.updated) == (1, 1)
    stored = rows(warehouse, "raw_time_entries", "entry_id")
    at = list(TABLES["raw_time_entries"].columns).index("belongs_to_date")
    assert [(r[0], r[at]) for r in stored] == [("e1", date(2025, 1, 14)), ("e2", date(2025, 1, 14))]


def batch(first: str, last: str, payloads: list[dict], fetched: datetime, rejects=()) -> EntryBatch:
    """Entries of the work dates first..last, and the quarantine rows of ``rejects``
    (payloads, reason "bad"), filed under ``first``."""
    window = DateWindow(date.fromisoformat(first), date.fromisoformat(last) + timedelta(days=1))
    rejected = [Rejected(p, "bad") for p in rejects]
    quarantine = quarantine_frame(rejected, [window.start] * len(rejected), "run-1", fetched)
    return EntryBatch(window, raw_frame(payloads, fetched), quarantine)


def test_an_entry_met_twice_in_one_stream_is_stored_once_newest_version(warehouse):
    """An entry edited to another work date while a range is read is met under both: the
    first copy went straight into the table, the later ones must merge into it, not fail."""
    fetched = datetime(2025, 1, 10, tzinfo=UTC)
    older = payload("e1", "2025-01-06", updated="2025-01-06T10:00:00Z")
    newer = payload("e1", "2025-01-08", updated="2025-01-07T10:00:00Z", note="edited")
    stale = payload("e1", "2025-01-10", updated="2025-01-05T10:00:00Z")  # never wins
    landed = land_entries(
        warehouse,
        [
            batch("2025-01-06", "2025-01-07", [older, payload("e2", "2025-01-07")], fetched),
            batch("2025-01-08", "2025-01-09", [newer, payload("e3", "2025-01-08")], fetched),
            batch("2025-01-10", "2025-01-12", [stale], fetched),
        ],
    )
    summary = landed.summary
    assert (summary.rows, summary.inserted, summary.updated, summary.unchanged) == (5, 3, 1, 1)
    stored = warehouse.read("raw_time_entries", WEEK).set_index("entry_id")
    assert sorted(stored.index) == ["e1", "e2", "e3"]
    assert stored.loc["e1", "note"] == "edited"
    assert stored.loc["e1", "belongs_to_date"] == date(2025, 1, 8)
    assert stored["removed_at"].isna().all()


def test_an_entry_moved_between_dates_of_one_chunk_is_not_taken_for_removed(warehouse):
    fetched = datetime(2025, 1, 10, tzinfo=UTC)
    land_entries(
        warehouse, [batch("2025-01-06", "2025-01-07", [payload("e1", "2025-01-07")], fetched)]
    )
    moved = payload("e1", "2025-01-06", updated="2025-01-08T10:00:00Z")
    land_entries(
        warehouse,
        [
            batch("2025-01-06", "2025-01-06", [moved], fetched),
            batch("2025-01-07", "2025-01-07", [], fetched),  # its old date, met after
        ],
    )
    stored = warehouse.read("raw_time_entries", WEEK).set_index("entry_id")
    assert list(stored.index) == ["e1"]
    assert stored.loc["e1", "belongs_to_date"] == date(2025, 1, 6)


def test_a_failed_chunk_keeps_nothing_of_it_and_closes_the_stream(warehouse):
    fetched = datetime(2025, 1, 10, tzinfo=UTC)
    closed = []

    def batches():
        try:
            yield batch("2025-01-06", "2025-01-06", [payload("e1", "2025-01-06")], fetched)
            raise ConnectionError("the API went away")
        finally:
            closed.append(True)

    with pytest.raises(ConnectionError):
        stream = batches()
        try:
            land_entries(warehouse, stream)
        finally:
            stream.close()
    assert closed == [True]
    assert warehouse.read("raw_time_entries", WEEK).empty  # e1 was rolled back


def test_one_quarantine_row_per_entry_wherever_it_was_fetched_and_gone_once_fixed(warehouse):
    fetched = datetime(2025, 1, 10, tzinfo=UTC)
    broken = {"id": "bad1", "belongsToDate": "someday", "type": "In"}
    nameless = {"type": "Lunch"}
    land_entries(warehouse, [batch("2025-01-07", "2025-01-07", [], fetched, [broken, nameless])])
    # Fetched again under another date (a range starting elsewhere): still one row each.
    land_entries(warehouse, [batch("2025-01-09", "2025-01-09", [], fetched, [broken, nameless])])
    quarantine = warehouse.read("quarantined_entries")
    assert sorted(quarantine["entry_id"].fillna("-")) == ["-", "bad1"]
    assert set(quarantine["partition_date"]) == {date(2025, 1, 9)}
    # Fixed at the source: met as a valid entry (under yet another date), the row goes.
    fixed = payload("bad1", "2025-01-08")
    land_entries(warehouse, [batch("2025-01-08", "2025-01-08", [fixed], fetched)])
    assert list(warehouse.read("quarantined_entries")["entry_id"].fillna("-")) == ["-"]


def test_landed_dates_are_recorded_with_their_chunk_and_forgotten_when_the_range_ends(warehouse):
    fetched = datetime(2025, 1, 10, tzinfo=UTC)
    progress = RangeProgress(date(2025, 1, 6), date(2025, 1, 12), "run-1", fetched)
    entries = [
        payload("e1", "2025-01-06"),
        payload("e2", "2025-01-06"),
        payload("e3", "2025-01-07"),
    ]
    landed = land_entries(
        warehouse, [batch("2025-01-06", "2025-01-08", entries, fetched, [{"id": "x"}])], progress
    )
    assert landed.counts.to_dict("list") == {
        "work_date": [date(2025, 1, 6), date(2025, 1, 7), date(2025, 1, 8)],
        "stored": [2, 1, 0],
        "removed": [0, 0, 0],
        "quarantined": [1, 0, 0],
    }
    recorded = landed_dates(warehouse, date(2025, 1, 6), date(2025, 1, 12), fetched)
    assert list(recorded["work_date"]) == [date(2025, 1, 6), date(2025, 1, 7), date(2025, 1, 8)]
    assert list(recorded["entries"]) == [2, 1, 0]
    assert list(recorded["quarantined"]) == [1, 0, 0]
    assert landed_dates(
        warehouse, date(2025, 1, 6), date(2025, 1, 13), fetched
    ).empty  # other range
    forget_landed(warehouse, date(2025, 1, 6), date(2025, 1, 12), older_than=fetched)
    assert landed_dates(warehouse, date(2025, 1, 6), date(2025, 1, 12), fetched).empty


def test_a_warehouse_of_an_older_version_gains_the_new_columns(warehouse):
    with psycopg.connect(warehouse.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(warehouse.schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (partition_date date NOT NULL, entry_id text,"
                " reason text NOT NULL, raw_payload jsonb, run_id text, quarantined_at timestamptz)"
            ).format(warehouse.identifier("quarantined_entries"))
        )
    warehouse.ensure_schema()
    assert "quarantine_key" in warehouse.read("quarantined_entries").columns

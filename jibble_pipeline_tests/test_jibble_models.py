"""Payload validation: what is accepted, what is rejected and why, what is kept."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from jibble_pipeline.jibble.frames import entries_frame
from jibble_pipeline.jibble.models import (
    Group,
    Person,
    TimeEntry,
    parse_offset_minutes,
    parse_payloads,
)

ENTRY = {
    "id": "e1",
    "personId": "p1",
    "type": "In",
    "time": "2025-01-06T01:02:03.000Z",
    "localTime": "2025-01-06T09:02:03",
    "offset": "PT8H",
    "belongsToDate": "2025-01-06",
    "activityId": None,
    "status": "Active",
    "createdAt": "2025-01-06T01:02:04.000Z",
    "updatedAt": "2025-01-06T01:02:04.000Z",
}


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("PT8H", 480), ("-PT5H", -300), ("PT5H30M", 330), ("PT0S", 0), ("-PT3H30M", -210),
     ("PT45M", 45), ("PT14H", 840)],
)  # fmt: skip
def test_offsets_parse_as_minutes_east_of_utc(text, minutes):
    assert parse_offset_minutes(text) == minutes


@pytest.mark.parametrize("text", ["P1D", "PT", "8H", "+08:00", "PT99H", ""])
def test_unreadable_offsets_are_refused(text):
    with pytest.raises(ValueError, match="offset"):
        parse_offset_minutes(text)


def test_an_entry_keeps_its_whole_payload_including_unknown_fields():
    payload = {**ENTRY, "geoFence": {"id": "g1"}, "someNewFlag": True}
    (entry,), rejected = parse_payloads(TimeEntry, [payload])
    assert rejected == []
    assert entry.raw == payload
    assert entry.time == datetime(2025, 1, 6, 1, 2, 3, tzinfo=UTC)
    assert entry.belongs_to_date == date(2025, 1, 6)
    assert entry.offset_minutes == 480


def test_instants_are_utc_whatever_zone_they_were_sent_in():
    payload = {**ENTRY, "time": "2025-01-06T09:02:03+08:00", "createdAt": "2025-01-06T01:02:04"}
    (entry,), _ = parse_payloads(TimeEntry, [payload])
    assert entry.time == datetime(2025, 1, 6, 1, 2, 3, tzinfo=UTC)
    assert entry.time.tzinfo is UTC and entry.created_at.tzinfo is UTC  # naive: read as UTC
    assert entry.created_at == datetime(2025, 1, 6, 1, 2, 4, tzinfo=UTC)


def test_a_stored_payload_is_exact_json_even_with_integers_beyond_64_bits():
    payload = {**ENTRY, "legacyId": 2**70, "note": "café ☕"}
    (entry,), _ = parse_payloads(TimeEntry, [payload])
    frame = entries_frame([entry], datetime(2025, 1, 7, tzinfo=UTC))
    assert json.loads(frame.loc[0, "raw_payload"]) == payload
    assert isinstance(frame["time_utc"].dtype, pd.DatetimeTZDtype)
    assert str(frame["time_utc"].dt.tz) == "UTC"
    assert frame.loc[0, "local_time"] == pd.Timestamp("2025-01-06T09:02:03")


def test_offset_falls_back_to_local_time():
    with_suffix = {**ENTRY, "offset": None, "localTime": "2025-01-05T20:02:03-05:00"}
    plain = {**ENTRY, "id": "e2", "offset": None, "localTime": "2025-01-06T06:32:03"}
    neither = {**ENTRY, "id": "e3", "offset": None, "localTime": None}
    entries, _ = parse_payloads(TimeEntry, [with_suffix, plain, neither])
    assert [e.offset_minutes for e in entries] == [-300, 330, None]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": "Lunch"}, "type"),
        ({"id": None}, "id"),
        ({"personId": ""}, "personId"),
        ({"time": "yesterday"}, "time"),
        ({"belongsToDate": "2025-13-01"}, "belongsToDate"),
        ({"offset": "eight hours"}, "offset"),
    ],
)
def test_invalid_entries_are_rejected_with_the_field_named(change, reason):
    payload = {**ENTRY, **change}
    entries, rejected = parse_payloads(TimeEntry, [payload, {**ENTRY, "id": "ok"}])
    assert [e.id for e in entries] == ["ok"]
    assert len(rejected) == 1
    assert rejected[0].payload == payload
    assert rejected[0].reason.startswith(reason)


def test_missing_fields_are_all_listed_and_non_objects_rejected():
    _, rejected = parse_payloads(TimeEntry, [{"personId": "p1"}, ["not", "an", "object"]])
    assert "id: Field required" in rejected[0].reason
    assert "time: Field required" in rejected[0].reason
    assert rejected[1].reason == "payload is not a JSON object"


def test_duplicate_ids_keep_the_newest_version():
    old = {**ENTRY, "note": "old", "updatedAt": "2025-01-06T01:00:00Z"}
    new = {**ENTRY, "note": "new", "updatedAt": "2025-01-07T01:00:00Z"}
    for order in ([old, new], [new, old]):
        (entry,), _ = parse_payloads(TimeEntry, order)
        assert entry.note == "new"


def test_workspace_payloads_tolerate_missing_optional_fields():
    (person,), _ = parse_payloads(Person, [{"id": "p1", "fullName": "Ana", "extra": 1}])
    assert person.time_zone is None and person.group_id is None
    (group,), _ = parse_payloads(Group, [{"id": "g1", "name": "Acme"}])
    assert group.code is None

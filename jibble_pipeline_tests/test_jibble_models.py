"""Payload validation: what is accepted, what is rejected and why, what is kept."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from jibble_pipeline.jibble.frames import entries_frame
from jibble_pipeline.jibble.models import (
    Activity,
    Group,
    Person,
    TimeEntry,
    parse_offset_minutes,
    parse_payloads,
)
from jibble_pipeline.jibble.time_zones import find_zone

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


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"time": 1736125323}, "time: expected an ISO 8601 instant as text, got a number"),
        ({"time": 1736125323.5}, "time: expected an ISO 8601 instant as text, got a number"),
        ({"time": True}, "time: expected an ISO 8601 instant as text, got a boolean"),
        ({"time": "1736125323"}, 'time: expected an ISO 8601 instant as text, got "1736125323"'),
        ({"time": "2025-01-06"}, 'time: expected an ISO 8601 instant as text, got "2025-01-06"'),
        ({"time": None}, "time: expected an ISO 8601 instant as text, got null"),
        ({"personId": {"id": "p1"}}, "personId: expected non-empty text, got an object"),
        ({"personId": 7}, "personId: expected non-empty text, got a number"),
        ({"id": ["e1"]}, "id: expected non-empty text, got a list"),
        ({"belongsToDate": 20250106},
         "belongsToDate: expected a YYYY-MM-DD date as text, got a number"),
        ({"belongsToDate": 1736121600},  # midnight: lax pydantic read it as 2025-01-06
         "belongsToDate: expected a YYYY-MM-DD date as text, got a number"),
        ({"belongsToDate": "2025-01-06T00:00:00"},
         'belongsToDate: expected a YYYY-MM-DD date as text, got "2025-01-06T00:00:00"'),
        ({"updatedAt": 1736125323},
         "updatedAt: expected an ISO 8601 instant as text or null, got a number"),
        ({"createdAt": 1736125323000},
         "createdAt: expected an ISO 8601 instant as text or null, got a number"),
        ({"updatedAt": False},
         "updatedAt: expected an ISO 8601 instant as text or null, got a boolean"),
        ({"type": 1}, 'type: expected "In" or "Out", got a number'),
        ({"type": True}, 'type: expected "In" or "Out", got a boolean'),
        ({"type": "Lunch"}, 'type: expected "In" or "Out", got "Lunch"'),
        ({"activityId": 42}, "activityId: expected text or null, got a number"),
        ({"projectId": {"id": "x"}}, "projectId: expected text or null, got an object"),
        ({"breakId": ["b1"]}, "breakId: expected text or null, got a list"),
        ({"status": True}, "status: expected text or null, got a boolean"),
        ({"status": 0}, "status: expected text or null, got a number"),
        ({"note": False}, "note: expected text or null, got a boolean"),
        ({"offset": 480}, "offset: expected text or null, got a number"),
        ({"localTime": 1736150523}, "localTime: expected text or null, got a number"),
        ({"clientType": 1}, "clientType: expected text or null, got a number"),
    ],
)  # fmt: skip
def test_wrong_json_types_are_rejected_not_coerced(change, reason):
    payload = {**ENTRY, **change}
    entries, rejected = parse_payloads(TimeEntry, [payload, {**ENTRY, "id": "ok"}])
    assert [e.id for e in entries] == ["ok"]
    assert [(r.payload, r.reason) for r in rejected] == [(payload, reason)]


def test_every_wrong_field_is_named_in_the_reason():
    payload = {**ENTRY, "time": 1736125323, "status": True, "note": {"text": "x"}}
    _, (rejected,) = parse_payloads(TimeEntry, [payload])
    assert rejected.reason.split("; ") == [
        "status: expected text or null, got a boolean",
        "time: expected an ISO 8601 instant as text, got a number",
        "note: expected text or null, got an object",
    ]


def test_value_errors_keep_pydantic_s_explanation():
    payload = {**ENTRY, "belongsToDate": "2025-13-01"}
    _, (rejected,) = parse_payloads(TimeEntry, [payload])
    assert rejected.reason.startswith("belongsToDate: Input should be a valid date")
    assert "month value is outside expected range" in rejected.reason


@pytest.mark.parametrize(
    "time",
    ["2025-01-06T01:02:03Z", "2025-01-06T01:02:03.000Z", "2025-01-06T01:02:03",
     "2025-01-06 01:02:03Z", "2025-01-06T09:02:03+08:00", "2025-01-05T20:02:03-05:00",
     "2025-01-06T01:02:03.000000Z"],
)  # fmt: skip
def test_instants_in_the_usual_iso_shapes_are_accepted(time):
    (entry,), rejected = parse_payloads(TimeEntry, [{**ENTRY, "time": time}])
    assert rejected == []
    assert entry.time == datetime(2025, 1, 6, 1, 2, 3, tzinfo=UTC)
    assert entry.time.tzinfo is UTC


def test_optional_fields_still_take_null():
    nulls = dict.fromkeys(
        ["offset", "localTime", "activityId", "projectId", "breakId", "clientType", "status",
         "note", "createdAt", "updatedAt"]
    )  # fmt: skip
    (entry,), rejected = parse_payloads(TimeEntry, [{**ENTRY, **nulls}])
    assert rejected == []
    assert entry.created_at is None and entry.updated_at is None and entry.offset_minutes is None


@pytest.mark.parametrize(
    ("model", "payload", "reason"),
    [
        (Person, {"id": "p1", "groupId": 12}, "groupId: expected text or null, got a number"),
        (Person, {"id": "p1", "fullName": ["Ana"]}, "fullName: expected text or null, got a list"),
        (Person, {"id": "p1", "removedAt": 1736125323},
         "removedAt: expected an ISO 8601 instant as text or null, got a number"),
        (Person, {"id": 1}, "id: expected non-empty text, got a number"),
        (Group, {"id": "g1", "name": True}, "name: expected text or null, got a boolean"),
        (Group, {"id": "g1", "updatedAt": 1736125323},
         "updatedAt: expected an ISO 8601 instant as text or null, got a number"),
        (Activity, {"id": "a1", "color": 16711680}, "color: expected text or null, got a number"),
        (Activity, {"id": "a1", "createdAt": {"at": 1}},
         "createdAt: expected an ISO 8601 instant as text or null, got an object"),
    ],
)  # fmt: skip
def test_workspace_payloads_of_wrong_json_types_are_rejected(model, payload, reason):
    items, rejected = parse_payloads(model, [payload, {"id": "ok"}])
    assert [i.id for i in items] == ["ok"]
    assert [(r.payload, r.reason) for r in rejected] == [(payload, reason)]


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
    assert find_zone(person.raw).zone is None and person.group_id is None
    assert person.raw == {"id": "p1", "fullName": "Ana", "extra": 1}
    (group,), _ = parse_payloads(Group, [{"id": "g1", "name": "Acme"}])
    assert group.code is None

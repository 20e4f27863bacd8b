"""The API's entities and their fields: the type of every field a query may filter, sort or
select on."""

from __future__ import annotations

from enum import Enum


class FieldType(Enum):
    STRING = "string"
    NUMBER = "number"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    OBJECT = "object"


STR, DAY, INSTANT, BOOL, NUM, OBJ = (
    FieldType.STRING,
    FieldType.DATE,
    FieldType.DATETIME,
    FieldType.BOOL,
    FieldType.NUMBER,
    FieldType.OBJECT,
)
TIME_ENTRY_FIELDS: dict[str, FieldType] = {
    "id": STR,
    "personId": STR,
    "organizationId": STR,
    "type": STR,
    "time": INSTANT,
    "localTime": STR,
    "offset": STR,
    "belongsToDate": DAY,
    "activityId": STR,
    "projectId": STR,
    "breakId": STR,
    "clientType": STR,
    "status": STR,
    "note": STR,
    "createdAt": INSTANT,
    "updatedAt": INSTANT,
    "isOffline": BOOL,
    "isManual": BOOL,
    "isAutomatic": BOOL,
    "platform": OBJ,
    "coordinates": OBJ,
}
PERSON_FIELDS: dict[str, FieldType] = {
    "id": STR,
    "organizationId": STR,
    "fullName": STR,
    "preferredName": STR,
    "email": STR,
    "phoneNumber": STR,
    "groupId": STR,
    "status": STR,
    "code": STR,
    "role": STR,
    "timeZone": STR,
    "weeklyHoursTarget": NUM,
    "createdAt": INSTANT,
    "updatedAt": INSTANT,
    "removedAt": INSTANT,
}
GROUP_FIELDS: dict[str, FieldType] = {
    "id": STR,
    "organizationId": STR,
    "name": STR,
    "code": STR,
    "status": STR,
    "createdAt": INSTANT,
    "updatedAt": INSTANT,
}
ACTIVITY_FIELDS: dict[str, FieldType] = {
    "id": STR,
    "organizationId": STR,
    "name": STR,
    "code": STR,
    "color": STR,
    "status": STR,
    "createdAt": INSTANT,
    "updatedAt": INSTANT,
}
ORGANIZATION_FIELDS: dict[str, FieldType] = {
    "id": STR,
    "name": STR,
    "timeZone": STR,
    "country": STR,
    "status": STR,
    "createdAt": INSTANT,
    "updatedAt": INSTANT,
}
# Hours logged as durations (timesheet-mode tenants): served only when a dialect has them.
HOUR_ENTRY_FIELDS: dict[str, FieldType] = {
    "id": STR,
    "personId": STR,
    "organizationId": STR,
    "belongsToDate": DAY,
    "duration": STR,
    "activityId": STR,
    "projectId": STR,
    "note": STR,
    "status": STR,
    "createdAt": INSTANT,
    "updatedAt": INSTANT,
}
ENTITY_FIELDS: dict[str, dict[str, FieldType]] = {
    "People": PERSON_FIELDS,
    "Groups": GROUP_FIELDS,
    "Activities": ACTIVITY_FIELDS,
    "Organizations": ORGANIZATION_FIELDS,
    "TimeEntries": TIME_ENTRY_FIELDS,
}

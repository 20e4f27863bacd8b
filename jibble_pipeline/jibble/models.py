"""Pydantic models of the Jibble payloads the pipeline reads.

Each model validates the fields the pipeline relies on and keeps the whole payload as it
came (``raw``), unknown fields included, so the warehouse can store it for audits and
replays. A payload that fails validation becomes a ``Rejected`` with a readable reason
instead of failing the whole batch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Literal, Self, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    ValidationError,
    field_validator,
    model_validator,
)

_OFFSET = re.compile(
    r"^(?P<sign>-)?PT(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?$"
)


@functools.lru_cache(maxsize=1024)  # a few distinct offsets, millions of entries
def parse_offset_minutes(text: str) -> int:
    """Minutes east of UTC from an ISO 8601 duration (``PT8H``, ``-PT5H``, ``PT5H30M``, ``PT0S``).

    >>> parse_offset_minutes("PT5H30M"), parse_offset_minutes("-PT5H"), parse_offset_minutes("PT0S")
    (330, -300, 0)
    """
    match = _OFFSET.match(text.strip())
    if match is None or text.strip() in ("PT", "-PT"):
        raise ValueError(f"offset {text!r} is not an ISO 8601 duration like PT8H or -PT5H30M")
    minutes = int(match["hours"] or 0) * 60 + int(match["minutes"] or 0)
    minutes += int(match["seconds"] or 0) // 60
    if minutes > 18 * 60:
        raise ValueError(f"offset {text!r} is beyond the ±18 hours a UTC offset can be")
    return -minutes if match["sign"] else minutes


class JibblePayload(BaseModel):
    """Base: unknown fields are accepted and kept only in ``raw`` (Jibble adds fields over
    time; holding them twice would double the memory of a large fetch)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # The payload as received: kept as it is, not validated (nor copied) field by field.
    raw: SkipValidation[dict[str, Any]] = Field(default_factory=dict, exclude=True)
    _instant_fields: ClassVar[tuple[str, ...]] = ()  # the datetime fields, set per class
    id: str = Field(min_length=1)
    status: str | None = None
    created_at: datetime | None = Field(None, alias="createdAt")
    updated_at: datetime | None = Field(None, alias="updatedAt")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._instant_fields = tuple(
            name
            for name, field in cls.model_fields.items()
            if field.annotation in (datetime, datetime | None)
        )

    @model_validator(mode="after")
    def _instants_are_utc(self) -> Self:
        """Jibble's instants are UTC: one sent without a zone is read as UTC, one with an
        offset is converted. Done once per payload, not by a validator per field (this runs
        for millions of entries), and with the standard library's UTC, which pandas turns
        into timestamps several times faster than pydantic's own zone objects."""
        fields = self.__dict__  # the model is frozen; its fields are set here, once
        for name in self._instant_fields:
            value = fields[name]
            if value is not None:
                fields[name] = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return self


class Person(JibblePayload):
    full_name: str | None = Field(None, alias="fullName")
    preferred_name: str | None = Field(None, alias="preferredName")
    email: str | None = None
    group_id: str | None = Field(None, alias="groupId")
    code: str | None = None
    role: str | None = None
    time_zone: str | None = Field(None, alias="timeZone")
    removed_at: datetime | None = Field(None, alias="removedAt")


class Group(JibblePayload):
    name: str | None = None
    code: str | None = None


class Activity(JibblePayload):
    name: str | None = None
    code: str | None = None
    color: str | None = None


class TimeEntry(JibblePayload):
    """A punch. ``offset_minutes`` comes from ``offset`` or, when that is missing, from the
    offset suffix of ``localTime`` or the difference between ``localTime`` and ``time``."""

    person_id: str = Field(min_length=1, alias="personId")
    type: Literal["In", "Out"]
    time: datetime
    belongs_to_date: date = Field(alias="belongsToDate")
    offset: str | None = None
    local_time: str | None = Field(None, alias="localTime")
    activity_id: str | None = Field(None, alias="activityId")
    project_id: str | None = Field(None, alias="projectId")
    break_id: str | None = Field(None, validation_alias=AliasChoices("breakId", "break_id"))
    client_type: str | None = Field(None, alias="clientType")
    note: str | None = None

    @field_validator("offset")
    @classmethod
    def _offset_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_offset_minutes(value)
        return value

    @property
    def offset_minutes(self) -> int | None:
        if self.offset is not None:
            return parse_offset_minutes(self.offset)
        if not self.local_time:
            return None
        try:
            local = datetime.fromisoformat(self.local_time)
        except ValueError:
            return None
        if local.utcoffset() is not None:
            return int(local.utcoffset().total_seconds() // 60)
        difference = local - self.time.astimezone(UTC).replace(tzinfo=None)
        return round(difference.total_seconds() / 60)


@dataclass(frozen=True)
class Rejected:
    """A payload that failed validation, with why (shown to operators, kept in quarantine)."""

    payload: dict[str, Any]
    reason: str


Model = TypeVar("Model", bound=JibblePayload)


def _reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in item["loc"]) or "payload"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_payloads(
    model: type[Model], payloads: Iterable[Any]
) -> tuple[list[Model], list[Rejected]]:
    """Valid payloads as ``model`` instances (duplicates by id: the newest ``updatedAt``
    wins) and the rest as ``Rejected``, in input order."""
    parsed: dict[str, Model] = {}
    rejected: list[Rejected] = []
    for payload in payloads:
        if not isinstance(payload, dict):
            rejected.append(Rejected({"value": payload}, "payload is not a JSON object"))
            continue
        try:
            item = model.model_validate({**payload, "raw": payload})
        except ValidationError as error:
            rejected.append(Rejected(payload, _reason(error)))
            continue
        seen = parsed.get(item.id)
        if seen is None or _newer_or_same(item, seen):
            parsed[item.id] = item
    return list(parsed.values()), rejected


def _newer_or_same(item: JibblePayload, seen: JibblePayload) -> bool:
    if item.updated_at is None or seen.updated_at is None:
        return seen.updated_at is None
    return item.updated_at >= seen.updated_at

"""Pydantic models of the Jibble payloads the pipeline reads.

Each model validates the fields the pipeline relies on and keeps the whole payload as it
came (``raw``), unknown fields included, so the warehouse can store it for audits and
replays. A payload that fails validation becomes a ``Rejected`` with a readable reason
instead of failing the whole batch.
"""

from __future__ import annotations

import functools
import json
import re
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar, Union, get_args, get_origin

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    SkipValidation,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import CoreSchema, core_schema

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


class _TextThen:
    """Annotation of a ``datetime`` or ``date`` field whose JSON value must be a string
    matching ``pattern`` (strict ``str``: never a number, bool, object or list), then parsed
    from that text by pydantic's own lax parser. Lax mode alone reads a number, or a string of
    digits, as a Unix timestamp; strict mode refuses every string in a Python dict (it takes
    text only from JSON). Both steps run in pydantic-core, no Python call per value."""

    __slots__ = ("pattern",)

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        schemas: dict[type, Callable[..., CoreSchema]] = {
            datetime: core_schema.datetime_schema,
            date: core_schema.date_schema,
        }
        parse = schemas[source]
        text = core_schema.str_schema(strict=True, pattern=self.pattern)
        return core_schema.chain_schema([text, parse(strict=False)])


# A date and a time, the rest as pydantic parses it (``Z``, an offset or none, fractions).
Instant = Annotated[datetime, _TextThen(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")]
Day = Annotated[date, _TextThen(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]

# The errors of a value of the wrong JSON type or shape, told as "expected ..., got ...".
_TYPE_ERRORS = frozenset(
    {"string_type", "string_too_short", "string_pattern_mismatch", "literal_error"}
)


def _value_type(field: FieldInfo) -> tuple[Any, bool]:
    """A field's type without ``None`` or annotations (``Instant | None``: ``datetime``),
    and whether it takes null."""
    annotation, nullable = field.annotation, False
    if get_origin(annotation) in (Union, types.UnionType):
        nullable = type(None) in get_args(annotation)
        (annotation,) = (arg for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation, nullable


def _expectation(field: FieldInfo) -> str:
    """What a field's JSON value must be, in words, for the reasons of rejections."""
    annotation, nullable = _value_type(field)
    if annotation is datetime:
        expected = "an ISO 8601 instant as text"
    elif annotation is date:
        expected = "a YYYY-MM-DD date as text"
    elif get_origin(annotation) is Literal:
        expected = " or ".join(json.dumps(choice) for choice in get_args(annotation))
    elif any(getattr(constraint, "min_length", 0) for constraint in field.metadata):
        expected = "non-empty text"
    else:
        expected = "text"
    return f"{expected} or null" if nullable else expected


class JibblePayload(BaseModel):
    """Base: unknown fields are accepted and kept only in ``raw`` (Jibble adds fields over
    time; holding them twice would double the memory of a large fetch).

    Strict: nothing is coerced. Text fields take a JSON string (or null where optional),
    never a number, bool, object or list; instants and dates take a string of their shape,
    parsed from it (``Instant``, ``Day``); ``type`` takes "In" or "Out"."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, strict=True)

    # The payload as received: kept as it is, not validated (nor copied) field by field.
    raw: SkipValidation[dict[str, Any]] = Field(default_factory=dict, exclude=True)
    _instant_fields: ClassVar[tuple[str, ...]] = ()  # the datetime fields, set per class
    # What each field's JSON value must be, by JSON name and field name, for reasons.
    _expected: ClassVar[dict[str, str]] = {}
    id: str = Field(min_length=1)
    status: str | None = None
    created_at: Instant | None = Field(None, alias="createdAt")
    updated_at: Instant | None = Field(None, alias="updatedAt")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = {name: f for name, f in cls.model_fields.items() if name != "raw"}
        cls._instant_fields = tuple(
            name for name, field in fields.items() if _value_type(field)[0] is datetime
        )
        cls._expected = {}
        for name, field in fields.items():
            alias = field.validation_alias or field.alias
            names = alias.choices if isinstance(alias, AliasChoices) else [alias]
            expected = _expectation(field)
            cls._expected |= {key: expected for key in [name, *names] if isinstance(key, str)}

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
    # The time zone may be anywhere in the payload (jibble.time_zones), not only `timeZone`.
    removed_at: Instant | None = Field(None, alias="removedAt")


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
    time: Instant
    belongs_to_date: Day = Field(alias="belongsToDate")
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
        local_offset = local.utcoffset()
        if local_offset is not None:
            return int(local_offset.total_seconds() // 60)
        difference = local - self.time.astimezone(UTC).replace(tzinfo=None)
        return round(difference.total_seconds() / 60)


@dataclass(frozen=True)
class Rejected:
    """A payload that failed validation, with why (shown to operators, kept in quarantine)."""

    payload: dict[str, Any]
    reason: str


Model = TypeVar("Model", bound=JibblePayload)


def _reason(model: type[JibblePayload], error: ValidationError) -> str:
    """Why a payload was rejected: each error as ``field: message``; a value of the wrong
    JSON type or shape as ``field: expected <what the field takes>, got <what came>``."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "payload"
        expected = model._expected.get(where) if item["type"] in _TYPE_ERRORS else None
        if expected is not None:
            parts.append(f"{where}: expected {expected}, got {_described(item['input'])}")
        else:
            parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _described(value: Any) -> str:
    """A JSON value in a reason: its type, or the text itself (shortened).

    >>> [_described(v) for v in (1736125323, True, None, {}, [], "", "yesterday")]
    ['a number', 'a boolean', 'null', 'an object', 'a list', 'empty text', '"yesterday"']
    """
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:40] + "…"
        return json.dumps(text, ensure_ascii=False) if text else "empty text"
    if isinstance(value, bool):  # before numbers: a bool is an int in Python
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


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
            rejected.append(Rejected(payload, _reason(model, error)))
            continue
        seen = parsed.get(item.id)
        if seen is None or _newer_or_same(item, seen):
            parsed[item.id] = item
    return list(parsed.values()), rejected


def _newer_or_same(item: JibblePayload, seen: JibblePayload) -> bool:
    if item.updated_at is None or seen.updated_at is None:
        return seen.updated_at is None
    return item.updated_at >= seen.updated_at

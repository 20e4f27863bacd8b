"""What a setting is, and the kinds of value settings take.

A ``Setting`` is the one definition of an environment variable: its name, the kind of value
it takes, its default, what it means, whether it is secret and the group the reference lists
it under. An unset or empty variable takes the default. A value a kind cannot read stops
with a ``ConfigurationError`` of one line that names the variable and says what it takes;
a secret's value is never part of the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, time
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


class Group(StrEnum):
    """The reference's sections, in the order it lists them."""

    JIBBLE_API = "Jibble API"
    WAREHOUSE = "Warehouse"
    PARTITIONS = "Partitions, late edits and checks"
    DIRECTORY = "Client directory"
    CONTRACTS = "Contracts"
    EMAIL = "Email"
    DIGESTS = "Digests and the report site"
    CORRECTIONS = "Corrections"
    ALERTS = "Daily operations alert"
    DEPLOYMENT = "Deployment"


class Kind:
    """A kind of value: ``parse`` turns a variable's text into it, or raises a one-line
    ``ConfigurationError``; ``takes`` says what it looks like, for the reference."""

    takes = "text"

    def parse(self, name: str, text: str) -> Any:
        return text


class Text(Kind):
    def __init__(self, takes: str = "text", *, strip: bool = False) -> None:
        self.takes = takes
        self.strip = strip

    def parse(self, name: str, text: str) -> str | None:
        return (text.strip() or None) if self.strip else text


class Url(Kind):
    """A base URL, kept without its trailing slash."""

    takes = "URL"

    def parse(self, name: str, text: str) -> str:
        return text.rstrip("/")


class Folder(Kind):
    takes = "path"

    def parse(self, name: str, text: str) -> Path:
        return Path(text).expanduser()


class Number(Kind):
    """An ``int`` (whole) or ``float`` of at least ``minimum``."""

    def __init__(self, minimum: int, *, whole: bool = False) -> None:
        self.minimum = minimum
        self.whole = whole
        self.takes = f"{'whole number' if whole else 'number'} ≥ {minimum}"

    def parse(self, name: str, text: str) -> int | float:
        try:
            value: int | float | None = int(text) if self.whole else float(text)
        except ValueError:
            value = None
        if value is None or value < self.minimum:
            what = "a whole number" if self.whole else "a number"
            raise ConfigurationError(
                f"{name} must be {what} of at least {self.minimum}, got {text!r}."
            )
        return value


class Port(Kind):
    takes = "port number"

    def parse(self, name: str, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, got {text!r}.") from None


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Flag(Kind):
    """True or false; None when only blanks are given (as if unset)."""

    takes = "`true` or `false`"

    def parse(self, name: str, text: str) -> bool | None:
        value = text.strip().lower()
        if not value:
            return None
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ConfigurationError(f"{name} must be true or false, got {value!r}.")


class Choice(Kind):
    """One of ``allowed``, case-insensitive."""

    def __init__(self, *allowed: str) -> None:
        self.allowed = allowed
        quoted = [f"`{a}`" for a in allowed]
        self.takes = f"{', '.join(quoted[:-1])} or {quoted[-1]}"

    def parse(self, name: str, text: str) -> str:
        value = text.strip().lower()
        if value not in self.allowed:
            raise ConfigurationError(
                f"{name} must be one of {', '.join(self.allowed)}, got {value!r}."
            )
        return value


class Zone(Kind):
    takes = "IANA time zone"

    def parse(self, name: str, text: str) -> str:
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(
                f"{name} must be an IANA time zone like Asia/Manila, got {text!r}."
            ) from exc
        return text


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


class Clock(Kind):
    takes = "`HH:MM`"

    def parse(self, name: str, text: str) -> time:
        text = text.strip()
        match = _CLOCK.match(text)
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise ConfigurationError(f"{name} must be a time like 07:00, got {text!r}.")
        return time(int(match[1]), int(match[2]))


class Day(Kind):
    takes = "`YYYY-MM-DD`"

    def parse(self, name: str, text: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise ConfigurationError(
                f"{name} must be a date like 2025-01-01, got {text!r}."
            ) from exc


class Setting(BaseModel):
    """One environment variable, defined once."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    env: str
    group: Group
    kind: Kind
    description: str
    # The text an unset or empty variable stands for; None: unset has no value of its own.
    default: str | None = None
    # The default in words, when it is not a plain value (computed, or "unset: ...").
    default_doc: str | None = None
    secret: bool = False
    # The value deploy/.env.example shows (default: ``default``).
    example: str | None = None
    # Offered in deploy/.env.example; False: fixed by the image or the compose file, or
    # for development only.
    deployed: bool = True
    # Must be set (deploy/.env.example then gives it uncommented).
    required: bool = False

    def read(self, env: Mapping[str, str], default: str | None = None) -> Any:
        """The value in ``env``, else of ``default``, else of the setting's own default;
        None when there is none."""
        text = env.get(self.env) or default or self.default
        return None if text is None else self.kind.parse(self.env, text)

    def is_set(self, env: Mapping[str, str]) -> bool:
        """Whether a value is given: all a secret's reader needs to know."""
        return bool(env.get(self.env))


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Emails(Kind):
    takes = "addresses, comma-separated"

    def parse(self, name: str, text: str) -> tuple[str, ...]:
        emails = tuple(e.strip().lower() for e in text.replace(";", ",").split(",") if e.strip())
        bad = [e for e in emails if e.count("@") != 1 or " " in e]
        if bad:
            raise ConfigurationError(
                f"{name} must be email addresses separated by commas, got {bad[0]!r}."
            )
        return emails


class WeekDays(Kind):
    """ISO weekday numbers (Monday = 1) of day names."""

    takes = "day names, comma-separated"

    def parse(self, name: str, text: str) -> tuple[int, ...]:
        days = [d.strip().lower()[:3] for d in text.split(",") if d.strip()]
        if not days or any(d not in DAY_NAMES for d in days):
            raise ConfigurationError(
                f"{name} must be day names separated by commas like mon,tue,wed,thu,fri, "
                f"got {text!r}."
            )
        return tuple(sorted({DAY_NAMES.index(d) + 1 for d in days}))


class WeekDayOrNone(Kind):
    """An ISO weekday number of a day name; ``none`` (or ``off``): None."""

    takes = "a day name, or `none`"

    def parse(self, name: str, text: str) -> int | None:
        day = text.strip().lower()[:3]
        if day in ("non", "off"):
            return None
        if day not in DAY_NAMES:
            raise ConfigurationError(f"{name} must be a day name like wed (or none), got {text!r}.")
        return DAY_NAMES.index(day) + 1


class Dates(Kind):
    takes = "dates, comma-separated"

    def parse(self, name: str, text: str) -> tuple[date, ...]:
        try:
            days = {date.fromisoformat(d.strip()) for d in text.split(",") if d.strip()}
        except ValueError:
            raise ConfigurationError(
                f"{name} must be dates like 2025-12-25 separated by commas, got {text!r}."
            ) from None
        return tuple(sorted(days))


class WebhookUrl(Kind):
    takes = "`https://...` URL"

    def parse(self, name: str, text: str) -> str:
        if urlsplit(text).scheme not in ("https", "http"):
            raise ConfigurationError(
                f"{name} must be the https://... URL of a Slack or Teams incoming webhook "
                "(the value is not shown)."
            )
        return text

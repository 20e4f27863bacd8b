"""A person's IANA time zone, wherever the tenant's payload keeps it.

Jibble's payloads are OData open types: a person's zone may be a top-level ``timeZone``, a
flat key such as ``ICultureSettings/TimeZone`` (as Airbyte's schema of the API shows), a
nested settings object (``{"cultureSettings": {"timeZone": ...}}``), or only on the
organisation. The zone itself may be a name or an object holding one. Only zones this
machine's zone database knows are kept; the rest are reported, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Keys that hold a zone, in the order they are trusted (a timesheet's zone is the last resort).
ZONE_KEYS = (
    "timeZone",
    "timezone",
    "TimeZone",
    "timeZoneId",
    "ICultureSettings/TimeZone",
    "ICalculationSettings/TimeSheetTimeZone",
)
_NAME_KEYS = ("id", "ianaId", "iana", "name", "timeZone", "value")


@dataclass(frozen=True)
class ZoneFound:
    """``zone``: an IANA name, or None. ``source``: where it was found (``timeZone``,
    ``cultureSettings.timeZone``, ``organisation: ICultureSettings/TimeZone``), or None.
    ``unrecognised``: a value that was there but names no zone known here."""

    zone: str | None
    source: str | None
    unrecognised: str | None = None


@lru_cache(maxsize=1024)
def known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _zone_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, Mapping):
        for key in _NAME_KEYS:
            if isinstance(value.get(key), str) and value[key].strip():
                return value[key].strip()
    return None


def _candidates(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, name) of every zone a payload holds: its own keys first, then one level down
    in nested settings objects."""
    found = [(key, name) for key in ZONE_KEYS if (name := _zone_name(payload.get(key)))]
    for outer, value in payload.items():
        if isinstance(value, Mapping) and outer not in ZONE_KEYS:
            found += [
                (f"{outer}.{key}", name)
                for key in ZONE_KEYS
                if (name := _zone_name(value.get(key)))
            ]
    return found


def find_zone(
    person: Mapping[str, Any], organisation: Mapping[str, Any] | None = None
) -> ZoneFound:
    """The person's zone, else the organisation's (module docstring)."""
    unrecognised = None
    for owner, payload in (("", person), ("organisation: ", organisation or {})):
        for where, name in _candidates(payload):
            if known_zone(name):
                return ZoneFound(name, owner + where, unrecognised)
            unrecognised = unrecognised or name
    return ZoneFound(None, None, unrecognised)

"""Payloads a user can share: what their tenant sends, without their people's data.

Every value under a key that holds a name, an email, a note, a phone number, an address, a
picture or coordinates is replaced by a placeholder (the same value always by the same one);
every id (a key ``id``/``...Id``/``...Ids``, and any GUID or email inside any text) is
replaced by a digest, salted per sample, so references between payloads still match. What
the pipeline needs to see stays: field names, shapes, types, statuses, times and durations.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Parts of a key (its last segment, lower case) whose values are personal.
_PERSONAL = {
    "name": "name",
    "email": "email",
    "note": "note",
    "description": "note",
    "comment": "note",
    "phone": "phone",
    "mobile": "phone",
    "address": "address",
    "picture": "picture",
    "avatar": "picture",
    "photo": "picture",
    "pincode": "pin",
    "coordinate": "coordinates",
    "latitude": "coordinates",
    "longitude": "coordinates",
    "location": "coordinates",
    "geo": "coordinates",
}


class Redactor:
    """Redacts payloads consistently: one instance per sample."""

    def __init__(self, salt: str | None = None):
        self._salt = salt or secrets.token_hex(16)
        self._placeholders: dict[tuple[str, str], str] = {}

    def redact(self, value: Any, key: str = "") -> Any:
        kind = _personal_kind(key)
        if kind is not None and value is not None:
            return self._personal(kind, value)
        if isinstance(value, dict):
            return {k: self.redact(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(item, key) for item in value]
        if isinstance(value, str):
            if _is_id_key(key):
                return self._id(value)
            text = _GUID.sub(lambda m: self._id(m.group(0)), value)
            return _EMAIL.sub(lambda m: self._placeholder("email", m.group(0)), text)
        return value

    def _personal(self, kind: str, value: Any) -> Any:
        if kind == "coordinates" or isinstance(value, dict | list):
            return None
        return self._placeholder(kind, str(value))

    def _placeholder(self, kind: str, original: str) -> str:
        key = (kind, original)
        if key not in self._placeholders:
            number = sum(1 for k in self._placeholders if k[0] == kind) + 1
            self._placeholders[key] = (
                f"{kind}-{number}@example.invalid" if kind == "email" else f"<{kind} {number}>"
            )
        return self._placeholders[key]

    def _id(self, original: str) -> str:
        """A GUID-shaped digest of an id: the same id always gives the same one."""
        digest = hashlib.sha256(f"{self._salt}:{original.lower()}".encode()).hexdigest()
        return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _last_segment(key: str) -> str:
    return key.rsplit("/", 1)[-1].lower()


def _personal_kind(key: str) -> str | None:
    segment = _last_segment(key)
    if segment in ("id", "timezone", "entitytype") or segment.endswith(("id", "ids")):
        return None
    for part, kind in _PERSONAL.items():
        if part in segment:
            return kind
    return None


def _is_id_key(key: str) -> bool:
    segment = _last_segment(key)
    return segment == "id" or (segment.endswith(("id", "ids")) and segment != "paid")

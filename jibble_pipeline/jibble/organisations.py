"""The rows of the organisation a client reads, when its credentials see several."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from jibble_pipeline.jibble.errors import JibbleError
from jibble_pipeline.jibble.paths import PEOPLE_PATH


class OrganisationFilter:
    """Leaves out the rows of other organisations than ``organization_id()`` and counts
    them by path (``foreign``). ``configured``: the organisation the settings name;
    ``everyone``: the people of every organisation the credentials see."""

    def __init__(
        self,
        organization_id: Callable[[], str | None],
        configured: str | None,
        everyone: Callable[[], list[dict[str, Any]]],
    ):
        self._organization_id = organization_id
        self._configured = configured
        self._everyone = everyone
        self._foreign_people: set[str] | None = None
        self._lock = threading.Lock()
        self.foreign: dict[str, int] = {}  # rows of another organisation left out, by path

    def ours(self, path: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows of the organisation read: a row of another one (its ``organizationId``,
        or for an entry without one, its person's) is left out and counted."""
        ours = self._organization_id()
        seen = {row.get("organizationId") for row in rows if isinstance(row, dict)} - {None}
        if ours is None:
            if len(seen) > 1:
                raise JibbleError(
                    f"GET {path}: these credentials see {len(seen)} organisations "
                    f"({', '.join(sorted(map(str, seen)))}) and Jibble's token names none: "
                    "set JIBBLE_ORGANIZATION_ID to the one to read."
                )
            return rows
        if not seen - {ours} and not any(
            isinstance(row, dict) and row.get("organizationId") is None for row in rows
        ):
            return rows
        if path == PEOPLE_PATH and rows and ours not in seen and self._configured:
            raise JibbleError(
                f"JIBBLE_ORGANIZATION_ID is {ours}, which these credentials do not see "
                f"(their people belong to {', '.join(sorted(map(str, seen)))})."
            )
        foreign_people = self._people_elsewhere() if path != PEOPLE_PATH else set()
        kept = [row for row in rows if not _elsewhere(row, ours, foreign_people)]
        if len(kept) < len(rows):
            with self._lock:
                self.foreign[path] = self.foreign.get(path, 0) + len(rows) - len(kept)
        return kept

    def _people_elsewhere(self) -> set[str]:
        """Ids of the people of other organisations (read once, when an entry lacks its
        organisation)."""
        if self._foreign_people is None:
            ours = self._organization_id()
            self._foreign_people = {
                str(p.get("id"))
                for p in self._everyone()
                if isinstance(p, dict) and p.get("organizationId") not in (None, ours)
            }
        return self._foreign_people


def _elsewhere(row: Any, ours: str, foreign_people: set[str]) -> bool:
    if not isinstance(row, dict):
        return False  # quarantined where it is validated
    organization = row.get("organizationId")
    if organization is not None:
        return organization != ours
    return str(row.get("personId")) in foreign_people

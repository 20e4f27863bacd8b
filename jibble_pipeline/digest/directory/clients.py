"""Clients and their contracts, and the reading rules every source of the directory follows
(``directory/sources.py`` reads them):

- emails are compared case-insensitively (stored lower-cased); rows of the same email merge;
- a group cell may hold one id, a list of ids, or a comma-separated string (or any mix);
- a row with no usable email or no group id is skipped and reported, never dropped silently;
- a client may carry the hours it buys each week (``Contract``): contracted hours, or seats ×
  hours per seat. A contract that cannot be read is left out and reported; the client stays.

The directory is a snapshot: whatever the source no longer lists is gone from the next one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from jibble_pipeline.rules.formatting import format_hours

DIRECTORY_COLUMNS = [
    "email", "group_id", "client_name", "contracted_hours", "seats", "hours_per_seat", "source",
    "synced_at",
]  # fmt: skip
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_SEPARATORS = re.compile(r"[,;\n]")


class DirectoryError(RuntimeError):
    """The directory could not be read; the message says why (never with a secret)."""


class Contract(BaseModel):
    """The hours a client buys each week: ``hours``, given as such or as ``seats`` ×
    ``hours_per_seat``."""

    model_config = ConfigDict(frozen=True)

    hours: float
    seats: int | None = None
    hours_per_seat: float | None = None

    @property
    def seconds(self) -> int:
        return round(self.hours * 3600)

    @property
    def label(self) -> str:
        """``3 seats × 40:00`` or ``120:00 a week``."""
        if self.seats is not None and self.hours_per_seat is not None:
            per_seat = format_hours(self.hours_per_seat * 3600)
            return f"{self.seats} seat{'' if self.seats == 1 else 's'} × {per_seat}"
        return f"{format_hours(self.seconds)} a week"


class Client(BaseModel):
    """One digest recipient, the Jibble groups whose hours it receives and its contract."""

    model_config = ConfigDict(frozen=True)

    email: str
    name: str | None = None
    group_ids: tuple[str, ...]
    contract: Contract | None = None


class SkippedRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    row: str  # where it came from: an Airtable record id, a file line
    reason: str


@dataclass(frozen=True)
class DirectoryLoad:
    clients: list[Client]
    skipped: list[SkippedRow] = field(default_factory=list)


def normalise_email(value: Any) -> str | None:
    """A trimmed, lower-cased address, or None when ``value`` is not one address."""
    if isinstance(value, list) and len(value) == 1:  # an Airtable lookup of one email
        value = value[0]
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text if _EMAIL.match(text) else None


def parse_group_ids(value: Any) -> list[str]:
    """Group ids from one id, a list of ids, a comma-separated string, or a mix of those.

    >>> parse_group_ids(" g1, g2,,g1 "), parse_group_ids(["g1", "g2, g3"]), parse_group_ids(None)
    (['g1', 'g2'], ['g1', 'g2', 'g3'], [])
    """
    found: list[str] = []

    def add(item: Any) -> None:
        if item is None or isinstance(item, bool):
            return
        if isinstance(item, list | tuple):
            for inner in item:
                add(inner)
            return
        if isinstance(item, int | float):
            item = str(int(item)) if float(item).is_integer() else str(item)
        if not isinstance(item, str):
            raise ValueError(f"a group id must be text, got {type(item).__name__}")
        for part in _SEPARATORS.split(item):
            part = part.strip()
            if part and part not in found:
                found.append(part)

    add(value)
    return found


def _amount(value: Any, what: str, whole: bool = False) -> float | None:
    """A positive number from a cell (a number, or text like ``37.5``); None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()) or value == []:
        return None
    if isinstance(value, list) and len(value) == 1:  # an Airtable lookup of one value
        value = value[0]
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not number > 0 or number == float("inf"):
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    if whole and not number.is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return number


def parse_contract(hours: Any, seats: Any, hours_per_seat: Any) -> Contract | None:
    """The contract of a row: contracted hours a week, or seats × hours per seat; None when
    the row gives none.

    >>> parse_contract("120", None, None).label, parse_contract(None, 3, 40).hours
    ('120:00 a week', 120.0)
    >>> parse_contract(None, None, None) is None
    True
    """
    total = _amount(hours, "contracted hours")
    count = _amount(seats, "seats", whole=True)
    each = _amount(hours_per_seat, "hours per seat")
    if total is not None and (count is not None or each is not None):
        raise ValueError("give contracted hours or seats × hours per seat, not both")
    if (count is None) != (each is None):
        raise ValueError("seats need hours per seat, and hours per seat need seats")
    if count is not None and each is not None:
        return Contract(hours=count * each, seats=int(count), hours_per_seat=each)
    return None if total is None else Contract(hours=total)


def merge_rows(rows: Iterable[tuple[str, Any, Any, Any, tuple[Any, Any, Any]]]) -> DirectoryLoad:
    """``(row reference, email, groups, name, (contracted hours, seats, hours per seat))``
    rows as clients, one per email. A contract is the first one an email's rows give."""
    merged: dict[str, tuple[str | None, list[str], Contract | None]] = {}
    skipped: list[SkippedRow] = []
    for ref, email_value, groups_value, name_value, contract_values in rows:
        email = normalise_email(email_value)
        if email is None:
            reason = "no email" if email_value in (None, "", []) else "not one email address"
            skipped.append(SkippedRow(row=ref, reason=reason))
            continue
        try:
            groups = parse_group_ids(groups_value)
        except ValueError as exc:
            skipped.append(SkippedRow(row=ref, reason=str(exc)))
            continue
        if not groups:
            skipped.append(SkippedRow(row=ref, reason=f"no Jibble group id for {email}"))
            continue
        try:
            contract = parse_contract(*contract_values)
        except ValueError as exc:
            skipped.append(SkippedRow(row=ref, reason=f"contract left out for {email}: {exc}"))
            contract = None
        # One line: a name from Airtable may carry line breaks (mail headers must not).
        name = " ".join(name_value.split()) if isinstance(name_value, str) else None
        known_name, known_groups, known_contract = merged.get(email, (None, [], None))
        if known_contract and contract and contract != known_contract:
            reason = f"contract left out for {email}: an earlier row gives {known_contract.label}"
            skipped.append(SkippedRow(row=ref, reason=reason))
        merged[email] = (
            known_name or name or None,
            known_groups + [g for g in groups if g not in known_groups],
            known_contract or contract,
        )
    clients = [
        Client(email=email, name=name, group_ids=tuple(groups), contract=contract)
        for email, (name, groups, contract) in sorted(merged.items())
    ]
    return DirectoryLoad(clients=clients, skipped=skipped)


def directory_frame(load: DirectoryLoad, source: str, synced_at: datetime) -> pd.DataFrame:
    """One row per (client email, group id): the ``client_directory`` table."""
    rows = [
        {
            "email": client.email,
            "group_id": group_id,
            "client_name": client.name,
            "contracted_hours": client.contract.hours if client.contract else None,
            "seats": client.contract.seats if client.contract else None,
            "hours_per_seat": client.contract.hours_per_seat if client.contract else None,
            "source": source,
            "synced_at": synced_at,
        }
        for client in load.clients
        for group_id in client.group_ids
    ]
    frame = pd.DataFrame(rows, columns=DIRECTORY_COLUMNS)
    frame["synced_at"] = pd.to_datetime(frame["synced_at"], utc=True)
    numbers = {"contracted_hours": "float64", "seats": "Int64", "hours_per_seat": "float64"}
    text = {c: object for c in DIRECTORY_COLUMNS if c not in numbers and c != "synced_at"}
    return frame.astype({**text, **numbers})


def clients_from_frame(frame: pd.DataFrame) -> list[Client]:
    """The ``client_directory`` table back as clients (emails sorted, groups in table order)."""
    clients = []
    for email, rows in frame.groupby("email", sort=True):
        names = [n for n in rows["client_name"] if isinstance(n, str) and n]
        first = rows.iloc[0]
        contract = None
        if pd.notna(first.get("contracted_hours")):
            seats, each = first.get("seats"), first.get("hours_per_seat")
            contract = Contract(
                hours=float(first["contracted_hours"]),
                seats=None if pd.isna(seats) else int(seats),
                hours_per_seat=None if pd.isna(each) else float(each),
            )
        clients.append(
            Client(
                email=str(email),
                name=names[0] if names else None,
                group_ids=tuple(dict.fromkeys(str(g) for g in rows["group_id"])),
                contract=contract,
            )
        )
    return clients

"""The client directory: which client (an email address) receives the digest of which Jibble
groups, read from Airtable or from a YAML/CSV file.

Both sources go through the same reading rules:

- emails are compared case-insensitively (stored lower-cased); rows of the same email merge;
- a group cell may hold one id, a list of ids, or a comma-separated string (or any mix);
- a row with no usable email or no group id is skipped and reported, never dropped silently;
- a client may carry the hours it buys each week (``Contract``): contracted hours, or seats ×
  hours per seat. A contract that cannot be read is left out and reported; the client stays.

The directory is a snapshot: whatever the source no longer lists is gone from the next one.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pandas as pd
from pydantic import BaseModel, ConfigDict

from jibble_pipeline.rules.formatting import format_hours
from jibble_pipeline.transport import (
    ApiSession,
    Pacing,
    RetryPolicy,
    ServiceUnavailable,
    open_session,
)

AIRTABLE_EMAIL_FIELD = "Email"
AIRTABLE_GROUP_FIELD = "Jibble Group ID"
AIRTABLE_PAGE_SIZE = 100  # Airtable's maximum
DIRECTORY_COLUMNS = [
    "email", "group_id", "client_name", "contracted_hours", "seats", "hours_per_seat", "source",
    "synced_at",
]  # fmt: skip
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_SEPARATORS = re.compile(r"[,;\n]")
# Keys accepted in a clients file (case-insensitive), besides the Airtable field names.
_FILE_EMAIL_KEYS = ("email", AIRTABLE_EMAIL_FIELD.lower())
_FILE_GROUP_KEYS = ("groups", "group_ids", "group_id", AIRTABLE_GROUP_FIELD.lower())
_FILE_NAME_KEYS = ("name", "client", "client_name")
_FILE_HOURS_KEYS = ("contracted_hours", "contract_hours", "hours_per_week")
_FILE_SEATS_KEYS = ("seats",)
_FILE_SEAT_HOURS_KEYS = ("hours_per_seat", "seat_hours")


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


# ----------------------------------------------------------------------------- files


def _pick(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for key in keys:
        if key in lowered:
            return lowered[key]
    return None


def load_clients_file(path: Path) -> DirectoryLoad:
    """A YAML file (a list of clients, or ``clients:`` holding one) or a CSV file with a
    header row. Keys: ``email``; ``groups`` (or ``group_ids``, ``group_id``,
    ``Jibble Group ID``); optional ``name``; optional contract: ``contracted_hours`` (a
    week's), or ``seats`` and ``hours_per_seat``."""
    if not path.is_file():
        raise DirectoryError(f"The clients file {path} does not exist (JIBBLE_CLIENTS_FILE).")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            records = list(csv.DictReader(handle))
        refs = [f"{path.name} line {n + 2}" for n in range(len(records))]
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise DirectoryError(f"The clients file {path} is not valid YAML: {exc}") from None
        if isinstance(data, dict):
            data = data.get("clients")
        if data is None:
            data = []
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DirectoryError(
                f"The clients file {path} must hold a list of clients (email, groups, name)."
            )
        records = data
        refs = [f"{path.name} client {n + 1}" for n in range(len(records))]
    else:
        raise DirectoryError(f"The clients file {path} must end in .yaml, .yml or .csv.")
    return merge_rows(
        (
            ref,
            _pick(record, _FILE_EMAIL_KEYS),
            _pick(record, _FILE_GROUP_KEYS),
            _pick(record, _FILE_NAME_KEYS),
            (
                _pick(record, _FILE_HOURS_KEYS),
                _pick(record, _FILE_SEATS_KEYS),
                _pick(record, _FILE_SEAT_HOURS_KEYS),
            ),
        )
        for ref, record in zip(refs, records, strict=True)
    )


# -------------------------------------------------------------------------- Airtable


@dataclass(frozen=True)
class ContractFields:
    """The Airtable fields of a client's contract, each optional: contracted hours a week, or
    seats and hours per seat. Only the fields named here are asked for."""

    hours: str | None = None
    seats: str | None = None
    hours_per_seat: str | None = None

    @property
    def names(self) -> list[str]:
        return [f for f in (self.hours, self.seats, self.hours_per_seat) if f]


class AirtableSource:
    """Reads the ``Clients`` table of an Airtable base through its REST API, page by page.

    Airtable answers at most 100 records a page plus an ``offset`` token while more remain;
    the listing is complete only once a page comes back without one. Requests go through the
    project's one HTTP layer: paced to Airtable's documented 5 requests a second per base,
    429s waited out (30 s when Airtable does not say), faults retried. Anything else fails
    with a message that names the base and table, never the API key."""

    PACING = Pacing(max_requests_per_second=5, concurrency=1, default_retry_after_seconds=30)

    def __init__(
        self,
        api_key: str,
        base_id: str,
        table: str = "Clients",
        *,
        api_url: str = "https://api.airtable.com",
        name_field: str | None = None,
        contract_fields: ContractFields | None = None,
        timeout_seconds: float = 30.0,
        retry: RetryPolicy | None = None,
        pacing: Pacing | None = None,
    ):
        if not api_key or not base_id:
            raise DirectoryError("Airtable needs AIRTABLE_API_KEY and AIRTABLE_BASE_ID.")
        self._api_key = api_key
        self.base_id = base_id
        self.table = table
        self.api_url = api_url.rstrip("/")
        self.name_field = name_field
        self.contract_fields = contract_fields or ContractFields()
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy(max_attempts=5, initial_wait_seconds=1.0)
        self.pacing = pacing or self.PACING
        self.pages = 0
        self.retries = 0

    @property
    def description(self) -> str:
        return f"airtable:{self.base_id}/{self.table}"

    @property
    def fields(self) -> list[str]:
        names = [AIRTABLE_EMAIL_FIELD, AIRTABLE_GROUP_FIELD]
        if self.name_field:
            names.append(self.name_field)
        return names + self.contract_fields.names

    def records(self) -> Iterator[dict[str, Any]]:
        url = f"{self.api_url}/v0/{quote(self.base_id, safe='')}/{quote(self.table, safe='')}"
        seen_offsets: set[str] = set()
        offset: str | None = None
        session = open_session(
            f"airtable:{self.base_id}",
            pacing=self.pacing,
            retry=self.retry,
            timeout_seconds=self.timeout_seconds,
            headers={"Authorization": f"Bearer {self._api_key}"},
        )
        try:
            while True:
                params: list[tuple[str, str]] = [("pageSize", str(AIRTABLE_PAGE_SIZE))]
                params += [("fields[]", name) for name in self.fields]
                if offset:
                    params.append(("offset", offset))
                page = self._get(session, url, params)
                self.pages += 1
                records = page.get("records")
                if not isinstance(records, list):
                    raise DirectoryError(f"{self.description}: a page without 'records'.")
                yield from records
                offset = page.get("offset")
                if not offset:
                    return
                if offset in seen_offsets:
                    raise DirectoryError(f"{self.description}: Airtable repeated a page offset.")
                seen_offsets.add(offset)
        finally:
            self.retries = session.stats.retries
            session.close()

    def _get(self, session: ApiSession, url: str, params: list[tuple[str, str]]) -> dict:
        try:
            response = session.http.get(url, params=tuple(params))
        except ServiceUnavailable as error:
            raise DirectoryError(f"{self.description}: {error}; try again later.") from None
        if response.status_code != 200:
            raise DirectoryError(
                f"{self.description}: Airtable answered {response.status_code} "
                f"{_airtable_error(response)}. "
                + {
                    401: "Check AIRTABLE_API_KEY.",
                    403: "The token lacks data.records:read on this base.",
                    404: "Check AIRTABLE_BASE_ID and the table name.",
                    422: f"The table needs the fields {', '.join(self.fields)}.",
                }.get(response.status_code, "")
            )
        try:
            return response.json()
        except ValueError:
            raise DirectoryError(f"{self.description}: Airtable sent invalid JSON.") from None

    def load(self) -> DirectoryLoad:
        def field(record: dict[str, Any], name: str | None) -> Any:
            return (record.get("fields") or {}).get(name) if name else None

        contract = self.contract_fields
        return merge_rows(
            (
                str(record.get("id", "?")),
                field(record, AIRTABLE_EMAIL_FIELD),
                field(record, AIRTABLE_GROUP_FIELD),
                field(record, self.name_field),
                (
                    field(record, contract.hours),
                    field(record, contract.seats),
                    field(record, contract.hours_per_seat),
                ),
            )
            for record in self.records()
        )


def _airtable_error(response: httpx.Response) -> str:
    """The error ``type`` Airtable sends (e.g. NOT_FOUND), which carries no secret."""
    try:
        error = response.json().get("error")
    except ValueError:
        return ""
    if isinstance(error, dict):
        return f"({error.get('type', 'error')})"
    return f"({error})" if isinstance(error, str) else ""

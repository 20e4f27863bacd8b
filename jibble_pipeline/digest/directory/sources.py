"""Where the client directory comes from: a YAML or CSV clients file, or an Airtable table,
each read into a ``DirectoryLoad`` by the rules of ``directory/clients.py``."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from jibble_pipeline.digest.directory.clients import DirectoryError, DirectoryLoad, merge_rows
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
# Keys accepted in a clients file (case-insensitive), besides the Airtable field names.
_FILE_EMAIL_KEYS = ("email", AIRTABLE_EMAIL_FIELD.lower())
_FILE_GROUP_KEYS = ("groups", "group_ids", "group_id", AIRTABLE_GROUP_FIELD.lower())
_FILE_NAME_KEYS = ("name", "client", "client_name")
_FILE_HOURS_KEYS = ("contracted_hours", "contract_hours", "hours_per_week")
_FILE_SEATS_KEYS = ("seats",)
_FILE_SEAT_HOURS_KEYS = ("hours_per_seat", "seat_hours")


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

"""Dagster resources of the digests: the client directory, the email sender
(``delivery/resources.py``), the report folder and the corrections' policy, configured from
the environment by ``build_digest_resources``.

Secrets (``AIRTABLE_API_KEY``, ``SMTP_PASSWORD``, ``RESEND_API_KEY``) arrive as ``dg.EnvVar``
so the UI and run configuration show the variable's name, never its value; errors and logs
are scrubbed of them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

import dagster as dg

from jibble_pipeline.delivery.resources import EmailResource
from jibble_pipeline.digest.corrections import Policy
from jibble_pipeline.digest.directory.clients import DirectoryLoad
from jibble_pipeline.digest.directory.sources import (
    AirtableSource,
    ContractFields,
    load_clients_file,
)
from jibble_pipeline.settings.catalog import DEFAULT_AIRTABLE_URL
from jibble_pipeline.settings.digests import DigestSettings
from jibble_pipeline.transport import RetryPolicy


def _env_or_none(name: str, is_set: bool) -> dg.EnvVar | None:
    return dg.EnvVar(name) if is_set else None


class ClientDirectoryResource(dg.ConfigurableResource):
    """Clients (emails) and their Jibble groups, from Airtable or a YAML/CSV file.
    ``clients_file`` None with the file source: an empty directory (no digests)."""

    source: Literal["airtable", "file"] = "file"
    clients_file: str | None = None
    airtable_api_key: str | None = None
    airtable_base_id: str | None = None
    airtable_table: str = "Clients"
    airtable_url: str = DEFAULT_AIRTABLE_URL
    airtable_name_field: str | None = None
    # Optional fields of a client's contract: hours a week, or seats and hours per seat.
    airtable_contract_hours_field: str | None = None
    airtable_seats_field: str | None = None
    airtable_hours_per_seat_field: str | None = None
    timeout_seconds: float = 30.0
    max_attempts: int = 5

    @property
    def description(self) -> str:
        if self.source == "airtable":
            return f"airtable:{self.airtable_base_id}/{self.airtable_table}"
        return f"file:{self.clients_file}" if self.clients_file else "none"

    def load(self) -> DirectoryLoad:
        if self.source == "airtable":
            return AirtableSource(
                self.airtable_api_key or "",
                self.airtable_base_id or "",
                self.airtable_table,
                api_url=self.airtable_url,
                name_field=self.airtable_name_field,
                contract_fields=ContractFields(
                    hours=self.airtable_contract_hours_field,
                    seats=self.airtable_seats_field,
                    hours_per_seat=self.airtable_hours_per_seat_field,
                ),
                timeout_seconds=self.timeout_seconds,
                retry=RetryPolicy(max_attempts=self.max_attempts, initial_wait_seconds=1.0),
            ).load()
        if not self.clients_file:
            return DirectoryLoad(clients=[])
        return load_clients_file(Path(self.clients_file))


class CorrectionsResource(dg.ConfigurableResource):
    """When a reported week counts as changed, and when its correction goes
    (``digest/corrections.py``, ``Policy``)."""

    tolerance_seconds: float = 60.0
    quiet_hours: float = 2.0
    cutoff_weeks: int = 8

    @property
    def policy(self) -> Policy:
        return Policy(self.tolerance_seconds, timedelta(hours=self.quiet_hours), self.cutoff_weeks)


class ReportsResource(dg.ConfigurableResource):
    """The folder of the static report site and the digest files."""

    folder: str

    @property
    def path(self) -> Path:
        return Path(self.folder).expanduser()


def build_digest_resources(settings: DigestSettings) -> dict[str, object]:
    return {
        "clients": ClientDirectoryResource(
            source=settings.source,
            clients_file=str(settings.clients_file) if settings.clients_file else None,
            airtable_api_key=_env_or_none("AIRTABLE_API_KEY", settings.airtable_api_key_set),
            airtable_base_id=settings.airtable_base_id,
            airtable_table=settings.airtable_table,
            airtable_url=settings.airtable_url,
            airtable_name_field=settings.airtable_name_field,
            airtable_contract_hours_field=settings.airtable_contract_fields.hours,
            airtable_seats_field=settings.airtable_contract_fields.seats,
            airtable_hours_per_seat_field=settings.airtable_contract_fields.hours_per_seat,
        ),
        "email": EmailResource(
            backend=settings.email_backend,
            dry_run=settings.dry_run,
            attachments=settings.attachments,
            from_address=settings.from_address,
            reply_to=settings.reply_to,
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port,
            smtp_security=settings.smtp_security,
            smtp_username=settings.smtp_username,
            smtp_password=_env_or_none("SMTP_PASSWORD", settings.smtp_password_set),
            resend_api_key=_env_or_none("RESEND_API_KEY", settings.resend_api_key_set),
            resend_api_url=settings.resend_url,
        ),
        "reports": ReportsResource(folder=str(settings.reports_dir)),
        "corrections": CorrectionsResource(
            tolerance_seconds=settings.correction_tolerance_seconds,
            quiet_hours=settings.correction_quiet_hours,
            cutoff_weeks=settings.correction_cutoff_weeks,
        ),
    }

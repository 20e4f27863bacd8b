"""Dagster resources of the digests: the client directory, the email sender and the report
folder, configured from the environment by ``build_digest_resources``.

Secrets (``AIRTABLE_API_KEY``, ``SMTP_PASSWORD``, ``RESEND_API_KEY``) arrive as ``dg.EnvVar``
so the UI and run configuration show the variable's name, never its value; errors and logs
are scrubbed of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Literal

import dagster as dg

from jibble_pipeline.digest.corrections import Policy
from jibble_pipeline.digest.directory import (
    AirtableSource,
    ContractFields,
    DirectoryLoad,
    load_clients_file,
)
from jibble_pipeline.digest.email import EmailSender, ResendSender, SendError, SmtpSender
from jibble_pipeline.settings.digests import (
    DEFAULT_AIRTABLE_URL,
    DEFAULT_FROM,
    DEFAULT_RESEND_URL,
    DigestSettings,
)
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


class EmailResource(dg.ConfigurableResource):
    """Sends digests through SMTP or Resend; ``backend="none"`` or ``dry_run`` sends nothing.
    ``attachments``: attach the week's exports (workbook and CSVs) to each digest."""

    backend: Literal["none", "smtp", "resend"] = "none"
    dry_run: bool = True
    attachments: bool = True
    from_address: str = DEFAULT_FROM
    reply_to: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    resend_api_key: str | None = None
    resend_api_url: str = DEFAULT_RESEND_URL
    timeout_seconds: float = 30.0
    max_attempts: int = 3
    retry_delay_seconds: float = 2.0

    @property
    def dry_run_reason(self) -> str | None:
        """Why nothing is sent (no backend, or ``JIBBLE_DIGEST_DRY_RUN``); None: digests go."""
        if self.backend == "none":
            return "no email backend is configured (JIBBLE_EMAIL_BACKEND)"
        if self.dry_run:
            return "JIBBLE_DIGEST_DRY_RUN"
        return None

    @property
    def secrets(self) -> list[str | None]:
        return [self.smtp_password, self.resend_api_key]

    @contextmanager
    def open_sender(self) -> Iterator[EmailSender]:
        if self.backend == "smtp":
            if not self.smtp_host:
                raise SendError("the SMTP backend needs SMTP_HOST", retryable=False)
            sender: EmailSender = SmtpSender(
                self.smtp_host,
                self.smtp_port,
                from_address=self.from_address,
                security=self.smtp_security,
                username=self.smtp_username,
                password=self.smtp_password,
                reply_to=self.reply_to,
                timeout_seconds=self.timeout_seconds,
            )
        elif self.backend == "resend":
            sender = ResendSender(
                self.resend_api_key or "",
                from_address=self.from_address,
                api_url=self.resend_api_url,
                reply_to=self.reply_to,
                timeout_seconds=self.timeout_seconds,
                retry=RetryPolicy(
                    max_attempts=self.max_attempts,
                    initial_wait_seconds=self.retry_delay_seconds,
                    max_wait_seconds=max(self.retry_delay_seconds * 8, 0.001),
                ),
            )
        else:
            raise SendError(
                "no email backend is configured (JIBBLE_EMAIL_BACKEND)", retryable=False
            )
        try:
            yield sender
        finally:
            sender.close()


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

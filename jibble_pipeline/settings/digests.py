"""Settings of the client directory, contracts, email, the digests and their corrections.

With nothing set the demo keeps working: the client directory is the packaged sample file
(the demo organisation's groups, ``.example`` addresses that cannot receive mail), no email
backend is configured, so sending is a dry run, and the report site goes to
``$JIBBLE_HOME/reports``. Secrets (``AIRTABLE_API_KEY``, ``SMTP_PASSWORD``,
``RESEND_API_KEY``) are only checked for presence here; their values reach Dagster through
``dg.EnvVar`` and are never printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from jibble_pipeline.digest.directory.sources import ContractFields
from jibble_pipeline.settings.catalog import (
    AIRTABLE_API_KEY,
    AIRTABLE_API_URL,
    AIRTABLE_BASE_ID,
    AIRTABLE_NAME_FIELD,
    AIRTABLE_TABLE,
    CLIENTS_FILE,
    CONTRACT_HOURS_FIELD,
    CORRECTION_CUTOFF_WEEKS,
    CORRECTION_QUIET_HOURS,
    CORRECTION_TOLERANCE,
    DEFAULT_FROM,
    DIGEST_ATTACHMENTS,
    DIGEST_DRY_RUN,
    DIGEST_FROM,
    DIGEST_REPLY_TO,
    DIGEST_SEND_AT,
    DIGEST_SOURCE,
    DIGEST_TIMEZONE,
    EMAIL_BACKEND,
    HOURS_PER_SEAT_FIELD,
    REPORTS_DIR,
    RESEND_API_KEY,
    RESEND_API_URL,
    SAMPLE_CLIENTS_FILE,
    SEATS_FIELD,
    SMTP_HOST,
    SMTP_PASSWORD,
    SMTP_PORT,
    SMTP_SECURITY,
    SMTP_USERNAME,
)
from jibble_pipeline.settings.fields import (
    ConfigurationError,
)
from jibble_pipeline.settings.pipeline import load_settings

DirectorySource = Literal["airtable", "file"]
EmailBackend = Literal["none", "smtp", "resend"]
SmtpSecurity = Literal["starttls", "ssl", "none"]


class DigestSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: DirectorySource
    airtable_api_key_set: bool
    airtable_base_id: str | None
    airtable_table: str
    airtable_url: str
    airtable_name_field: str | None
    airtable_contract_fields: ContractFields
    clients_file: Path | None
    email_backend: EmailBackend
    smtp_host: str | None
    smtp_port: int
    smtp_security: SmtpSecurity
    smtp_username: str | None
    smtp_password_set: bool
    resend_api_key_set: bool
    resend_url: str
    from_address: str
    reply_to: str | None
    timezone: str
    send_at: time
    dry_run: bool
    reports_dir: Path
    attachments: bool  # the week's exports (workbook, CSVs) attached to each digest
    correction_tolerance_seconds: float  # an agent-activity moving by more is a change
    correction_quiet_hours: float  # how long a changed week must stay as it is
    correction_cutoff_weeks: int  # weeks ended longer ago are not corrected by email


def load_digest_settings(environ: Mapping[str, str] | None = None) -> DigestSettings:
    env = os.environ if environ is None else environ
    base = load_settings(env)
    api_key_set = AIRTABLE_API_KEY.is_set(env)
    base_id = AIRTABLE_BASE_ID.read(env)
    default_source = "airtable" if api_key_set and base_id else "file"
    source = DIGEST_SOURCE.read(env, default_source)
    if source == "airtable" and not (api_key_set and base_id):
        raise ConfigurationError(
            "JIBBLE_DIGEST_SOURCE=airtable needs AIRTABLE_API_KEY and AIRTABLE_BASE_ID."
        )
    # The sample maps the demo organisation's groups: only meaningful in demo mode.
    clients_file = CLIENTS_FILE.read(env) or (SAMPLE_CLIENTS_FILE if base.demo_mode else None)

    backend = EMAIL_BACKEND.read(env)
    smtp_host = SMTP_HOST.read(env)
    if backend == "smtp" and not smtp_host:
        raise ConfigurationError("JIBBLE_EMAIL_BACKEND=smtp needs SMTP_HOST.")
    resend_key_set = RESEND_API_KEY.is_set(env)
    if backend == "resend" and not resend_key_set:
        raise ConfigurationError("JIBBLE_EMAIL_BACKEND=resend needs RESEND_API_KEY.")
    from_address = DIGEST_FROM.read(env)
    if backend != "none" and not from_address:
        raise ConfigurationError(
            "Set JIBBLE_DIGEST_FROM (e.g. 'Hours <hours@yourcompany.com>') to send digests."
        )
    smtp_port = SMTP_PORT.read(env)
    dry_run = DIGEST_DRY_RUN.read(env)
    return DigestSettings(
        source=source,
        airtable_api_key_set=api_key_set,
        airtable_base_id=base_id,
        airtable_table=AIRTABLE_TABLE.read(env),
        airtable_url=AIRTABLE_API_URL.read(env),
        airtable_name_field=AIRTABLE_NAME_FIELD.read(env),
        airtable_contract_fields=ContractFields(
            hours=CONTRACT_HOURS_FIELD.read(env),
            seats=SEATS_FIELD.read(env),
            hours_per_seat=HOURS_PER_SEAT_FIELD.read(env),
        ),
        clients_file=clients_file,
        email_backend=backend,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_security=SMTP_SECURITY.read(env),
        smtp_username=SMTP_USERNAME.read(env),
        smtp_password_set=SMTP_PASSWORD.is_set(env),
        resend_api_key_set=resend_key_set,
        resend_url=RESEND_API_URL.read(env),
        from_address=from_address or DEFAULT_FROM,
        reply_to=DIGEST_REPLY_TO.read(env),
        timezone=DIGEST_TIMEZONE.read(env),
        send_at=DIGEST_SEND_AT.read(env),
        dry_run=backend == "none" or bool(dry_run),
        reports_dir=REPORTS_DIR.read(env) or base.home / "reports",
        attachments=DIGEST_ATTACHMENTS.read(env) is not False,
        correction_tolerance_seconds=CORRECTION_TOLERANCE.read(env),
        correction_quiet_hours=CORRECTION_QUIET_HOURS.read(env),
        correction_cutoff_weeks=CORRECTION_CUTOFF_WEEKS.read(env),
    )

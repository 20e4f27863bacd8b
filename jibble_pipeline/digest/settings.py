"""Digest, email and report-site configuration from the environment, read in one place.

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
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Literal

from jibble_pipeline.digest.directory.sources import ContractFields
from jibble_pipeline.settings import (
    ConfigurationError,
    choice_setting,
    clock_setting,
    flag_setting,
    load_settings,
    number_setting,
    zone_setting,
)

SAMPLE_CLIENTS_FILE = Path(__file__).with_name("sample_clients.yaml")
DEFAULT_FROM = "Jibble weekly hours <digests@localhost>"
DEFAULT_AIRTABLE_URL = "https://api.airtable.com"
DEFAULT_RESEND_URL = "https://api.resend.com"
DEFAULT_SEND_AT = time(7, 0)

DirectorySource = Literal["airtable", "file"]
EmailBackend = Literal["none", "smtp", "resend"]
SmtpSecurity = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class DigestSettings:
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
    api_key_set = bool(env.get("AIRTABLE_API_KEY"))
    base_id = env.get("AIRTABLE_BASE_ID") or None
    default_source = "airtable" if api_key_set and base_id else "file"
    source = choice_setting(env, "JIBBLE_DIGEST_SOURCE", ("airtable", "file"), default_source)
    if source == "airtable" and not (api_key_set and base_id):
        raise ConfigurationError(
            "JIBBLE_DIGEST_SOURCE=airtable needs AIRTABLE_API_KEY and AIRTABLE_BASE_ID."
        )
    clients_file = env.get("JIBBLE_CLIENTS_FILE") or None
    if clients_file:
        clients_path: Path | None = Path(clients_file).expanduser()
    else:
        # The sample maps the demo organisation's groups: only meaningful in demo mode.
        clients_path = SAMPLE_CLIENTS_FILE if base.demo_mode else None

    backend = choice_setting(env, "JIBBLE_EMAIL_BACKEND", ("none", "smtp", "resend"), "none")
    smtp_host = env.get("SMTP_HOST") or None
    if backend == "smtp" and not smtp_host:
        raise ConfigurationError("JIBBLE_EMAIL_BACKEND=smtp needs SMTP_HOST.")
    resend_key_set = bool(env.get("RESEND_API_KEY"))
    if backend == "resend" and not resend_key_set:
        raise ConfigurationError("JIBBLE_EMAIL_BACKEND=resend needs RESEND_API_KEY.")
    from_address = env.get("JIBBLE_DIGEST_FROM") or None
    if backend != "none" and not from_address:
        raise ConfigurationError(
            "Set JIBBLE_DIGEST_FROM (e.g. 'Hours <hours@yourcompany.com>') to send digests."
        )
    port_text = env.get("SMTP_PORT") or "587"
    try:
        smtp_port = int(port_text)
    except ValueError as exc:
        raise ConfigurationError(f"SMTP_PORT must be a number, got {port_text!r}.") from exc

    dry_run = flag_setting(env, "JIBBLE_DIGEST_DRY_RUN")
    reports_dir = env.get("JIBBLE_REPORTS_DIR")
    return DigestSettings(
        source=source,  # type: ignore[arg-type]
        airtable_api_key_set=api_key_set,
        airtable_base_id=base_id,
        airtable_table=env.get("AIRTABLE_TABLE") or "Clients",
        airtable_url=(env.get("AIRTABLE_API_URL") or DEFAULT_AIRTABLE_URL).rstrip("/"),
        airtable_name_field=env.get("AIRTABLE_NAME_FIELD") or None,
        airtable_contract_fields=ContractFields(
            hours=env.get("AIRTABLE_CONTRACT_HOURS_FIELD") or None,
            seats=env.get("AIRTABLE_SEATS_FIELD") or None,
            hours_per_seat=env.get("AIRTABLE_HOURS_PER_SEAT_FIELD") or None,
        ),
        clients_file=clients_path,
        email_backend=backend,  # type: ignore[arg-type]
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_security=choice_setting(env, "SMTP_SECURITY", ("starttls", "ssl", "none"), "starttls"),  # type: ignore[arg-type]
        smtp_username=env.get("SMTP_USERNAME") or None,
        smtp_password_set=bool(env.get("SMTP_PASSWORD")),
        resend_api_key_set=resend_key_set,
        resend_url=(env.get("RESEND_API_URL") or DEFAULT_RESEND_URL).rstrip("/"),
        from_address=from_address or DEFAULT_FROM,
        reply_to=env.get("JIBBLE_DIGEST_REPLY_TO") or None,
        timezone=zone_setting(env, "JIBBLE_DIGEST_TIMEZONE", "UTC"),
        send_at=clock_setting(env, "JIBBLE_DIGEST_SEND_AT", DEFAULT_SEND_AT),
        dry_run=backend == "none" or bool(dry_run),
        reports_dir=Path(reports_dir).expanduser() if reports_dir else base.home / "reports",
        attachments=flag_setting(env, "JIBBLE_DIGEST_ATTACHMENTS") is not False,
        correction_tolerance_seconds=number_setting(
            env, "JIBBLE_CORRECTION_TOLERANCE_SECONDS", 60.0, float, minimum=0
        ),
        correction_quiet_hours=number_setting(
            env, "JIBBLE_CORRECTION_QUIET_HOURS", 2.0, float, minimum=0
        ),
        correction_cutoff_weeks=number_setting(
            env, "JIBBLE_CORRECTION_CUTOFF_WEEKS", 8, int, minimum=0
        ),
    )

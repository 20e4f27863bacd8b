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
from jibble_pipeline.settings.fields import (
    Choice,
    Clock,
    ConfigurationError,
    Flag,
    Folder,
    Group,
    Number,
    Port,
    Setting,
    Text,
    Url,
    Zone,
)
from jibble_pipeline.settings.pipeline import load_settings

SAMPLE_CLIENTS_FILE = Path(__file__).parents[1] / "digest" / "sample_clients.yaml"
DEFAULT_FROM = "Jibble weekly hours <digests@localhost>"
DEFAULT_AIRTABLE_URL = "https://api.airtable.com"
DEFAULT_RESEND_URL = "https://api.resend.com"

DirectorySource = Literal["airtable", "file"]
EmailBackend = Literal["none", "smtp", "resend"]
SmtpSecurity = Literal["starttls", "ssl", "none"]

_DIRECTORY = Group.DIRECTORY
DIGEST_SOURCE = Setting(
    env="JIBBLE_DIGEST_SOURCE", group=_DIRECTORY, kind=Choice("airtable", "file"),
    description="where the client directory comes from",
    default_doc="`airtable` when `AIRTABLE_API_KEY` and `AIRTABLE_BASE_ID` are set, else `file`",
)  # fmt: skip
CLIENTS_FILE = Setting(
    env="JIBBLE_CLIENTS_FILE", group=_DIRECTORY, kind=Folder(),
    description="YAML or CSV clients file (source `file`)",
    default_doc="demo mode: the packaged sample; otherwise none (no digests)",
)  # fmt: skip
AIRTABLE_API_KEY = Setting(
    env="AIRTABLE_API_KEY", group=_DIRECTORY, kind=Text("token"), secret=True,
    description="Airtable personal access token (scope `data.records:read` on the base)",
)  # fmt: skip
AIRTABLE_BASE_ID = Setting(
    env="AIRTABLE_BASE_ID", group=_DIRECTORY, kind=Text("`app…`"),
    description="the Airtable base",
)  # fmt: skip
AIRTABLE_TABLE = Setting(
    env="AIRTABLE_TABLE", group=_DIRECTORY, kind=Text("table name"), default="Clients",
    description="the Airtable table",
)  # fmt: skip
AIRTABLE_NAME_FIELD = Setting(
    env="AIRTABLE_NAME_FIELD", group=_DIRECTORY, kind=Text("field name"),
    description="optional field holding the client's display name",
    default_doc="unset: the group names",
)  # fmt: skip
AIRTABLE_API_URL = Setting(
    env="AIRTABLE_API_URL", group=_DIRECTORY, kind=Url(), default=DEFAULT_AIRTABLE_URL,
    description="Airtable's API host", deployed=False,
)  # fmt: skip

_CONTRACTS = Group.CONTRACTS
CONTRACT_HOURS_FIELD = Setting(
    env="AIRTABLE_CONTRACT_HOURS_FIELD", group=_CONTRACTS, kind=Text("field name"),
    description="optional Airtable field holding a client's contracted hours a week",
    default_doc="unset: no contract",
)  # fmt: skip
SEATS_FIELD = Setting(
    env="AIRTABLE_SEATS_FIELD", group=_CONTRACTS, kind=Text("field name"),
    description="optional Airtable field holding a contract's seats",
)  # fmt: skip
HOURS_PER_SEAT_FIELD = Setting(
    env="AIRTABLE_HOURS_PER_SEAT_FIELD", group=_CONTRACTS, kind=Text("field name"),
    description="optional Airtable field holding a contract's hours per seat",
)  # fmt: skip

_EMAIL = Group.EMAIL
EMAIL_BACKEND = Setting(
    env="JIBBLE_EMAIL_BACKEND", group=_EMAIL, kind=Choice("none", "smtp", "resend"),
    default="none", description="how digests and alerts are emailed (`none`: a dry run)",
)  # fmt: skip
DIGEST_FROM = Setting(
    env="JIBBLE_DIGEST_FROM", group=_EMAIL, kind=Text("address"),
    description="sender, e.g. `Weekly hours <hours@yourcompany.com>`",
    default_doc="required with a backend",
)  # fmt: skip
DIGEST_REPLY_TO = Setting(
    env="JIBBLE_DIGEST_REPLY_TO", group=_EMAIL, kind=Text("address"),
    description="optional Reply-To",
)  # fmt: skip
SMTP_HOST = Setting(
    env="SMTP_HOST", group=_EMAIL, kind=Text("host name"),
    description="SMTP server (backend `smtp`)",
)  # fmt: skip
SMTP_PORT = Setting(
    env="SMTP_PORT", group=_EMAIL, kind=Port(), default="587", description="SMTP port",
)  # fmt: skip
SMTP_SECURITY = Setting(
    env="SMTP_SECURITY", group=_EMAIL, kind=Choice("starttls", "ssl", "none"),
    default="starttls",
    description="how the SMTP connection is encrypted (`ssl`: implicit TLS, usually port 465)",
)  # fmt: skip
SMTP_USERNAME = Setting(
    env="SMTP_USERNAME", group=_EMAIL, kind=Text("user name"),
    description="SMTP login", default_doc="unset: no login",
)  # fmt: skip
SMTP_PASSWORD = Setting(
    env="SMTP_PASSWORD", group=_EMAIL, kind=Text("password"), secret=True,
    description="SMTP password",
)  # fmt: skip
RESEND_API_KEY = Setting(
    env="RESEND_API_KEY", group=_EMAIL, kind=Text("API key"), secret=True,
    description="Resend API key (backend `resend`)",
)  # fmt: skip
RESEND_API_URL = Setting(
    env="RESEND_API_URL", group=_EMAIL, kind=Url(), default=DEFAULT_RESEND_URL,
    description="Resend's API host", deployed=False,
)  # fmt: skip

_DIGESTS = Group.DIGESTS
DIGEST_TIMEZONE = Setting(
    env="JIBBLE_DIGEST_TIMEZONE", group=_DIGESTS, kind=Zone(), default="UTC",
    description="time zone of the Monday schedule",
)  # fmt: skip
DIGEST_SEND_AT = Setting(
    env="JIBBLE_DIGEST_SEND_AT", group=_DIGESTS, kind=Clock(), default="07:00",
    description="time of the first Monday tick",
)  # fmt: skip
DIGEST_DRY_RUN = Setting(
    env="JIBBLE_DIGEST_DRY_RUN", group=_DIGESTS, kind=Flag(),
    description="`true`: render and report, send nothing",
    default_doc="`false` (`true` without an email backend)",
)  # fmt: skip
DIGEST_ATTACHMENTS = Setting(
    env="JIBBLE_DIGEST_ATTACHMENTS", group=_DIGESTS, kind=Flag(), default="true",
    description="`true`: attach the week's exports (workbook and CSVs) to each digest "
    "email; `false`: the email alone",
)  # fmt: skip
REPORTS_DIR = Setting(
    env="JIBBLE_REPORTS_DIR", group=_DIGESTS, kind=Folder(), deployed=False,
    description="folder of the report site and digest files (the compose file sets it)",
    default_doc="`$JIBBLE_HOME/reports`",
)  # fmt: skip

_CORRECTIONS = Group.CORRECTIONS
CORRECTION_TOLERANCE = Setting(
    env="JIBBLE_CORRECTION_TOLERANCE_SECONDS", group=_CORRECTIONS, kind=Number(0),
    default="60", description="a reported week has changed when an agent's hours on an "
    "activity moved by more (seconds)",
)  # fmt: skip
CORRECTION_QUIET_HOURS = Setting(
    env="JIBBLE_CORRECTION_QUIET_HOURS", group=_CORRECTIONS, kind=Number(0), default="2",
    description="how long a changed week's entries must stay as they are before its "
    "correction goes (hours)",
)  # fmt: skip
CORRECTION_CUTOFF_WEEKS = Setting(
    env="JIBBLE_CORRECTION_CUTOFF_WEEKS", group=_CORRECTIONS, kind=Number(0, whole=True),
    default="8", description="weeks that ended longer ago are not corrected by email "
    "(the operations alert and the site say it instead)",
)  # fmt: skip

DIGEST_SETTINGS = (
    DIGEST_SOURCE, CLIENTS_FILE, AIRTABLE_API_KEY, AIRTABLE_BASE_ID, AIRTABLE_TABLE,
    AIRTABLE_NAME_FIELD, AIRTABLE_API_URL, CONTRACT_HOURS_FIELD, SEATS_FIELD,
    HOURS_PER_SEAT_FIELD, EMAIL_BACKEND, DIGEST_FROM, DIGEST_REPLY_TO, SMTP_HOST, SMTP_PORT,
    SMTP_SECURITY, SMTP_USERNAME, SMTP_PASSWORD, RESEND_API_KEY, RESEND_API_URL,
    DIGEST_TIMEZONE, DIGEST_SEND_AT, DIGEST_DRY_RUN, DIGEST_ATTACHMENTS, REPORTS_DIR,
    CORRECTION_TOLERANCE, CORRECTION_QUIET_HOURS, CORRECTION_CUTOFF_WEEKS,
)  # fmt: skip


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

"""Every setting of the project, defined once: its variable, group, kind of value, default,
meaning and whether it is secret. The loaders (``pipeline``, ``digests``, ``alerts``) read
them into typed settings; ``reference`` writes docs/settings.md and deploy/.env.example from
them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from jibble_pipeline.settings.fields import (
    Choice,
    Clock,
    Dates,
    Day,
    Emails,
    Flag,
    Folder,
    Group,
    Number,
    Port,
    Setting,
    Text,
    Url,
    WebhookUrl,
    WeekDayOrNone,
    WeekDays,
    Zone,
)

PRODUCTION_IDENTITY_URL = "https://identity.prod.jibble.io"
PRODUCTION_WORKSPACE_URL = "https://workspace.prod.jibble.io"
PRODUCTION_TIME_TRACKING_URL = "https://time-tracking.prod.jibble.io"
PRODUCTION_TIME_ATTENDANCE_URL = "https://time-attendance.prod.jibble.io"  # Jibble's own totals

# First daily partition unless JIBBLE_PARTITIONS_START says otherwise.
DEFAULT_PARTITIONS_START = date(2025, 1, 1)

SAMPLE_CLIENTS_FILE = Path(__file__).parents[1] / "digest" / "sample_clients.yaml"
DEFAULT_FROM = "Jibble weekly hours <digests@localhost>"
DEFAULT_AIRTABLE_URL = "https://api.airtable.com"
DEFAULT_RESEND_URL = "https://api.resend.com"


_API = Group.JIBBLE_API
CLIENT_ID = Setting(
    env="JIBBLE_CLIENT_ID", group=_API, kind=Text(), secret=True,
    description="API client id; set both it and `JIBBLE_CLIENT_SECRET`, or neither",
    default_doc="neither: demo mode against the local simulator",
)  # fmt: skip
CLIENT_SECRET = Setting(
    env="JIBBLE_CLIENT_SECRET", group=_API, kind=Text(), secret=True,
    description="API client secret", default_doc="neither: demo mode",
)  # fmt: skip
IDENTITY_URL = Setting(
    env="JIBBLE_IDENTITY_URL", group=_API, kind=Url(), default=PRODUCTION_IDENTITY_URL,
    description="Jibble's identity (token) host", deployed=False,
)  # fmt: skip
WORKSPACE_URL = Setting(
    env="JIBBLE_WORKSPACE_URL", group=_API, kind=Url(), default=PRODUCTION_WORKSPACE_URL,
    description="Jibble's workspace host (people, groups, activities)", deployed=False,
)  # fmt: skip
TIME_TRACKING_URL = Setting(
    env="JIBBLE_TIME_TRACKING_URL", group=_API, kind=Url(),
    default=PRODUCTION_TIME_TRACKING_URL,
    description="Jibble's time-tracking host (time entries)", deployed=False,
)  # fmt: skip
TIME_ATTENDANCE_URL = Setting(
    env="JIBBLE_TIME_ATTENDANCE_URL", group=_API, kind=Url(),
    default=PRODUCTION_TIME_ATTENDANCE_URL,
    description="Jibble's reports host (its own totals, for the check `hours_match_jibble`), "
    "if your tenant's is not the production one",
)  # fmt: skip
ORGANIZATION_ID = Setting(
    env="JIBBLE_ORGANIZATION_ID", group=_API, kind=Text("organisation id", strip=True),
    description="the organisation to read when the credentials see several "
    "(`jibble-pipeline doctor` lists those visible)",
    default_doc="the one the token names",
)  # fmt: skip
CONCURRENCY = Setting(
    env="JIBBLE_CONCURRENCY", group=_API, kind=Number(1, whole=True), default="8",
    description="Jibble requests in flight at once, per run",
)  # fmt: skip
MAX_REQUESTS_PER_SECOND = Setting(
    env="JIBBLE_MAX_REQUESTS_PER_SECOND", group=_API, kind=Number(0),
    description="a ceiling on requests per second, when you know your tenant's limit",
    default_doc="none: the client adapts to Jibble's 429s",
)  # fmt: skip
MAX_WAIT_SECONDS = Setting(
    env="JIBBLE_MAX_WAIT_SECONDS", group=_API, kind=Number(1), default="900",
    description="the longest one request may take to get through rate limits and retries "
    "before the run gives up",
)  # fmt: skip
API_RUNS = Setting(
    env="JIBBLE_API_RUNS", group=_API, kind=Number(1, whole=True), default="2",
    description="steps that may call Jibble at once, across all runs, processes and machines",
    default_doc="`2` (a backfill and the 10-minute tick)",
)  # fmt: skip

_WAREHOUSE = Group.WAREHOUSE
DATABASE_URL = Setting(
    env="JIBBLE_DATABASE_URL", group=_WAREHOUSE, kind=Text("`postgresql://...` URL"),
    secret=True, description="the warehouse, and Dagster's storage on one machine "
    "(`postgresql://user:pass@host/db`)",
    default_doc="an embedded PostgreSQL under `JIBBLE_HOME`",
    example="postgresql://user:password@db.example.supabase.co:5432/postgres?sslmode=require",
)  # fmt: skip
EMBEDDED_POSTGRES = Setting(
    env="JIBBLE_EMBEDDED_POSTGRES", group=_WAREHOUSE, kind=Choice("allowed", "never"),
    default="allowed", deployed=False,
    description="`never`: `JIBBLE_DATABASE_URL` is required (the image sets it)",
)  # fmt: skip
DB_SCHEMA = Setting(
    env="JIBBLE_DB_SCHEMA", group=_WAREHOUSE, kind=Text("schema name"), default="jibble",
    description="the warehouse's schema",
)  # fmt: skip
HOME = Setting(
    env="JIBBLE_HOME", group=_WAREHOUSE, kind=Folder(),
    default="~/.local/share/jibble-pipeline", deployed=False,
    description="folder of the embedded PostgreSQL's data (`pgdata/`) and, by default, "
    "of the reports",
)  # fmt: skip

_PARTITIONS = Group.PARTITIONS
PARTITIONS_START = Setting(
    env="JIBBLE_PARTITIONS_START", group=_PARTITIONS, kind=Day(),
    default=DEFAULT_PARTITIONS_START.isoformat(),
    description="first daily partition; not in the future",
)  # fmt: skip
SWEEP_REQUESTS = Setting(
    env="JIBBLE_SWEEP_REQUESTS_PER_MINUTE", group=_PARTITIONS, kind=Number(1, whole=True),
    default="60", description="requests a minute the late-edits sweep may spend, for a "
    "tenant that cannot filter on `updatedAt` (`doctor` says whether yours can)",
)  # fmt: skip
RECONCILE_TOLERANCE = Setting(
    env="JIBBLE_RECONCILE_TOLERANCE_SECONDS", group=_PARTITIONS, kind=Number(0),
    default="60", description="seconds an agent-week may differ from Jibble's "
    "TrackedTimeReport before the check `hours_match_jibble` fails",
)  # fmt: skip

PIPELINE_SETTINGS = (
    CLIENT_ID, CLIENT_SECRET, IDENTITY_URL, WORKSPACE_URL, TIME_TRACKING_URL,
    TIME_ATTENDANCE_URL, ORGANIZATION_ID, CONCURRENCY, MAX_REQUESTS_PER_SECOND,
    MAX_WAIT_SECONDS, API_RUNS, DATABASE_URL, EMBEDDED_POSTGRES, DB_SCHEMA, HOME,
    PARTITIONS_START, SWEEP_REQUESTS, RECONCILE_TOLERANCE,
)  # fmt: skip


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


_ALERTS = Group.ALERTS
ALERT_EMAILS = Setting(
    env="JIBBLE_ALERT_EMAILS", group=_ALERTS, kind=Emails(),
    description="operations addresses", default_doc="demo mode: a demo address; else no email",
)  # fmt: skip
ALERT_WEBHOOK_URL = Setting(
    env="JIBBLE_ALERT_WEBHOOK_URL", group=_ALERTS, kind=WebhookUrl(), secret=True,
    description="a Slack or Teams incoming webhook URL", default_doc="unset: no post",
)  # fmt: skip
ALERT_WEBHOOK_FORMAT = Setting(
    env="JIBBLE_ALERT_WEBHOOK_FORMAT", group=_ALERTS, kind=Choice("slack", "teams"),
    description="`slack` (`{\"text\": ...}`) or `teams` (an Adaptive Card)",
    default_doc="`teams` for `*.webhook.office.com`, `*.logic.azure.com` and Power Platform "
    "hosts, else `slack`",
)  # fmt: skip
ALERT_TIMEZONE = Setting(
    env="JIBBLE_ALERT_TIMEZONE", group=_ALERTS, kind=Zone(), default="UTC",
    description="the schedule's time zone, whose \"yesterday\" is reported",
    default_doc="`JIBBLE_DIGEST_TIMEZONE`, else `UTC`",
)  # fmt: skip
ALERT_SEND_AT = Setting(
    env="JIBBLE_ALERT_SEND_AT", group=_ALERTS, kind=Clock(), default="08:00",
    description="time of the first daily tick",
)  # fmt: skip
ALERT_WORKING_DAYS = Setting(
    env="JIBBLE_ALERT_WORKING_DAYS", group=_ALERTS, kind=WeekDays(),
    default="mon,tue,wed,thu,fri",
    description="days on which an agent who tracked nothing is listed",
)  # fmt: skip
ALERT_HOLIDAYS = Setting(
    env="JIBBLE_ALERT_HOLIDAYS", group=_ALERTS, kind=Dates(), default_doc="none",
    description="dates on which nobody is listed for tracking nothing, e.g. "
    "`2025-12-25,2026-01-01`",
)  # fmt: skip
ALERT_SEND_EMPTY = Setting(
    env="JIBBLE_ALERT_SEND_EMPTY", group=_ALERTS, kind=Flag(), default="false",
    description="`true`: send \"no problems\" on a quiet day",
)  # fmt: skip
ALERT_DRY_RUN = Setting(
    env="JIBBLE_ALERT_DRY_RUN", group=_ALERTS, kind=Flag(),
    description="`true`: build and report the alert, send nothing",
    default_doc="`true` in demo mode, else `false`",
)  # fmt: skip
ALERT_PACE_DAY = Setting(
    env="JIBBLE_ALERT_PACE_DAY", group=_ALERTS, kind=WeekDayOrNone(), default="wed",
    description="the day whose alert (Monday to yesterday) names clients behind their "
    "contract's pace; `none`: never",
)  # fmt: skip
ALERT_PACE_MARGIN = Setting(
    env="JIBBLE_ALERT_PACE_MARGIN", group=_ALERTS, kind=Number(0), default="10",
    description="percent of the contract a week's projected hours may fall short before "
    "the client is named",
)  # fmt: skip

ALERT_SETTINGS = (
    ALERT_EMAILS, ALERT_WEBHOOK_URL, ALERT_WEBHOOK_FORMAT, ALERT_TIMEZONE, ALERT_SEND_AT,
    ALERT_WORKING_DAYS, ALERT_HOLIDAYS, ALERT_SEND_EMPTY, ALERT_DRY_RUN, ALERT_PACE_DAY,
    ALERT_PACE_MARGIN,
)  # fmt: skip


_DEPLOYMENT = Group.DEPLOYMENT
DAGSTER_HOME = Setting(
    env="DAGSTER_HOME", group=_DEPLOYMENT, kind=Folder(), deployed=False,
    description="Dagster instance: the folder of its dagster.yaml (run, event and schedule "
    "storage in the warehouse's Postgres); the image sets it",
    default_doc="the project folder",
)  # fmt: skip
POSTGRES_PASSWORD = Setting(
    env="POSTGRES_PASSWORD", group=_DEPLOYMENT, kind=Text("password"), secret=True,
    required=True, example="change-me",
    description="password of the compose file's own PostgreSQL (remove that service to use "
    "a managed one instead)",
)  # fmt: skip
DAGSTER_POSTGRES_URL = Setting(
    env="DAGSTER_POSTGRES_URL", group=_DEPLOYMENT, kind=Text("`postgresql+psycopg2://...` URL"),
    secret=True, description="Dagster's storage: with a managed Postgres, the database of "
    "`JIBBLE_DATABASE_URL` with the psycopg2 driver",
    default_doc="the compose file's PostgreSQL",
    example="postgresql+psycopg2://user:password@db.example.supabase.co:5432/postgres"
    "?sslmode=require",
)  # fmt: skip
UI_PORT = Setting(
    env="JIBBLE_UI_PORT", group=_DEPLOYMENT, kind=Number(1, whole=True), default="3000",
    description="the UI's port on the host",
)  # fmt: skip
IMAGE = Setting(
    env="JIBBLE_IMAGE", group=_DEPLOYMENT, kind=Text("image name"),
    default="jibble-pipeline:latest", description="the project's image",
)  # fmt: skip

DEPLOYMENT_SETTINGS = (DAGSTER_HOME, POSTGRES_PASSWORD, DAGSTER_POSTGRES_URL, UI_PORT, IMAGE)

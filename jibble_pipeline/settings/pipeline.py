"""The pipeline's settings: the Jibble API, the warehouse, partitions and late edits.

Without Jibble credentials the project runs in demo mode against its own local
simulator; without ``JIBBLE_DATABASE_URL`` it uses an embedded Postgres kept under
``JIBBLE_HOME``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from jibble_pipeline.settings.fields import (
    Choice,
    ConfigurationError,
    Day,
    Folder,
    Group,
    Number,
    Setting,
    Text,
    Url,
)

PRODUCTION_IDENTITY_URL = "https://identity.prod.jibble.io"
PRODUCTION_WORKSPACE_URL = "https://workspace.prod.jibble.io"
PRODUCTION_TIME_TRACKING_URL = "https://time-tracking.prod.jibble.io"
PRODUCTION_TIME_ATTENDANCE_URL = "https://time-attendance.prod.jibble.io"  # Jibble's own totals

# First daily partition unless JIBBLE_PARTITIONS_START says otherwise.
DEFAULT_PARTITIONS_START = date(2025, 1, 1)

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


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    client_id: str | None = Field(repr=False)
    client_secret: str | None = Field(repr=False)
    identity_url: str
    workspace_url: str
    time_tracking_url: str
    database_url: str | None = Field(repr=False)  # may hold a password
    db_schema: str
    partitions_start: date
    home: Path
    concurrency: int = 8
    max_requests_per_second: float | None = None
    max_wait_seconds: float = 900.0
    api_runs: int = 2
    time_attendance_url: str = PRODUCTION_TIME_ATTENDANCE_URL
    reconcile_tolerance_seconds: float = 60.0
    organization_id: str | None = None
    sweep_requests: int = 60

    @property
    def demo_mode(self) -> bool:
        """True when no credentials are set: the local simulator stands in for Jibble."""
        return not (self.client_id and self.client_secret)

    @property
    def embedded_database(self) -> bool:
        return not self.database_url

    @property
    def embedded_data_dir(self) -> Path:
        return self.home / "pgdata"


def latest_work_date() -> date:
    """The last work date that can have entries now: tomorrow in UTC (east of UTC)."""
    return datetime.now(UTC).date() + timedelta(days=1)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    client_id = CLIENT_ID.read(env)
    client_secret = CLIENT_SECRET.read(env)
    if bool(client_id) != bool(client_secret):
        raise ConfigurationError(
            "Set both JIBBLE_CLIENT_ID and JIBBLE_CLIENT_SECRET (or neither, for demo mode)."
        )
    partitions_start = PARTITIONS_START.read(env)
    concurrency = CONCURRENCY.read(env)
    rate = MAX_REQUESTS_PER_SECOND.read(env)
    max_wait = MAX_WAIT_SECONDS.read(env)
    api_runs = API_RUNS.read(env)
    tolerance = RECONCILE_TOLERANCE.read(env)
    sweep_requests = SWEEP_REQUESTS.read(env)
    if partitions_start > latest_work_date():
        raise ConfigurationError(
            f"JIBBLE_PARTITIONS_START is {partitions_start}, in the future: the first work "
            "date must be today or earlier."
        )
    embedded = EMBEDDED_POSTGRES.read(env)
    database_url = DATABASE_URL.read(env)
    if not database_url and embedded == "never":
        raise ConfigurationError(
            "JIBBLE_DATABASE_URL is not set, and this deployment never starts an embedded "
            "PostgreSQL (JIBBLE_EMBEDDED_POSTGRES=never): set it to the warehouse's "
            "postgresql://... URL."
        )
    if database_url and not database_url.startswith(("postgresql://", "postgres://")):
        raise ConfigurationError(
            "JIBBLE_DATABASE_URL must start with postgresql:// (the value is not shown)."
        )
    return Settings(
        client_id=client_id,
        client_secret=client_secret,
        identity_url=IDENTITY_URL.read(env),
        workspace_url=WORKSPACE_URL.read(env),
        time_tracking_url=TIME_TRACKING_URL.read(env),
        time_attendance_url=TIME_ATTENDANCE_URL.read(env),
        database_url=database_url,
        db_schema=DB_SCHEMA.read(env),
        partitions_start=partitions_start,
        home=HOME.read(env),
        concurrency=concurrency,
        max_requests_per_second=rate or None,
        max_wait_seconds=max_wait,
        api_runs=api_runs,
        reconcile_tolerance_seconds=tolerance,
        organization_id=ORGANIZATION_ID.read(env),
        sweep_requests=sweep_requests,
    )

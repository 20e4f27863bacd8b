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

from jibble_pipeline.settings.catalog import (
    API_RUNS,
    CLIENT_ID,
    CLIENT_SECRET,
    CONCURRENCY,
    DATABASE_URL,
    DB_SCHEMA,
    EMBEDDED_POSTGRES,
    HOME,
    IDENTITY_URL,
    MAX_REQUESTS_PER_SECOND,
    MAX_WAIT_SECONDS,
    ORGANIZATION_ID,
    PARTITIONS_START,
    PRODUCTION_TIME_ATTENDANCE_URL,
    RECONCILE_TOLERANCE,
    SWEEP_REQUESTS,
    TIME_ATTENDANCE_URL,
    TIME_TRACKING_URL,
    WORKSPACE_URL,
)
from jibble_pipeline.settings.fields import (
    ConfigurationError,
)


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

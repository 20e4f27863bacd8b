"""Configuration from the environment (docs/rules.md, Configuration), read in one place.

Without Jibble credentials the project runs in demo mode against its own local
simulator; without ``JIBBLE_DATABASE_URL`` it uses an embedded Postgres kept under
``JIBBLE_HOME``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PRODUCTION_IDENTITY_URL = "https://identity.prod.jibble.io"
PRODUCTION_WORKSPACE_URL = "https://workspace.prod.jibble.io"
PRODUCTION_TIME_TRACKING_URL = "https://time-tracking.prod.jibble.io"
PRODUCTION_TIME_ATTENDANCE_URL = "https://time-attendance.prod.jibble.io"  # Jibble's own totals

# First daily partition unless JIBBLE_PARTITIONS_START says otherwise.
DEFAULT_PARTITIONS_START = date(2025, 1, 1)
DEFAULT_HOME = Path.home() / ".local" / "share" / "jibble-pipeline"


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    client_id: str | None
    client_secret: str | None
    identity_url: str
    workspace_url: str
    time_tracking_url: str
    database_url: str | None
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
    client_id = env.get("JIBBLE_CLIENT_ID") or None
    client_secret = env.get("JIBBLE_CLIENT_SECRET") or None
    if bool(client_id) != bool(client_secret):
        raise ConfigurationError(
            "Set both JIBBLE_CLIENT_ID and JIBBLE_CLIENT_SECRET (or neither, for demo mode)."
        )
    start_text = env.get("JIBBLE_PARTITIONS_START") or DEFAULT_PARTITIONS_START.isoformat()
    try:
        partitions_start = date.fromisoformat(start_text)
    except ValueError as exc:
        raise ConfigurationError(
            f"JIBBLE_PARTITIONS_START must be a date like 2025-01-01, got {start_text!r}."
        ) from exc
    concurrency = _number(env, "JIBBLE_CONCURRENCY", 8, int, minimum=1)
    rate = _number(env, "JIBBLE_MAX_REQUESTS_PER_SECOND", 0.0, float, minimum=0)
    max_wait = _number(env, "JIBBLE_MAX_WAIT_SECONDS", 900.0, float, minimum=1)
    api_runs = _number(env, "JIBBLE_API_RUNS", 2, int, minimum=1)
    tolerance = _number(env, "JIBBLE_RECONCILE_TOLERANCE_SECONDS", 60.0, float, minimum=0)
    sweep_requests = _number(env, "JIBBLE_SWEEP_REQUESTS_PER_MINUTE", 60, int, minimum=1)
    if partitions_start > latest_work_date():
        raise ConfigurationError(
            f"JIBBLE_PARTITIONS_START is {partitions_start}, in the future: the first work "
            "date must be today or earlier."
        )
    embedded = (env.get("JIBBLE_EMBEDDED_POSTGRES") or "allowed").lower()
    if embedded not in ("allowed", "never"):
        raise ConfigurationError(
            f"JIBBLE_EMBEDDED_POSTGRES must be allowed or never, got {embedded!r}."
        )
    database_url = env.get("JIBBLE_DATABASE_URL") or None
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
        identity_url=(env.get("JIBBLE_IDENTITY_URL") or PRODUCTION_IDENTITY_URL).rstrip("/"),
        workspace_url=(env.get("JIBBLE_WORKSPACE_URL") or PRODUCTION_WORKSPACE_URL).rstrip("/"),
        time_tracking_url=(
            env.get("JIBBLE_TIME_TRACKING_URL") or PRODUCTION_TIME_TRACKING_URL
        ).rstrip("/"),
        time_attendance_url=(
            env.get("JIBBLE_TIME_ATTENDANCE_URL") or PRODUCTION_TIME_ATTENDANCE_URL
        ).rstrip("/"),
        database_url=database_url,
        db_schema=env.get("JIBBLE_DB_SCHEMA") or "jibble",
        partitions_start=partitions_start,
        home=Path(env.get("JIBBLE_HOME") or DEFAULT_HOME).expanduser(),
        concurrency=concurrency,
        max_requests_per_second=rate or None,
        max_wait_seconds=max_wait,
        api_runs=api_runs,
        reconcile_tolerance_seconds=tolerance,
        organization_id=(env.get("JIBBLE_ORGANIZATION_ID") or "").strip() or None,
        sweep_requests=sweep_requests,
    )


def _number(env: Mapping[str, str], name: str, default, kind, *, minimum):
    """A numeric setting, or a one-line error that names it and says what it takes."""
    text = env.get(name)
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        what = "a whole number" if kind is int else "a number"
        raise ConfigurationError(f"{name} must be {what} of at least {minimum}, got {text!r}.")
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


def flag_setting(env: Mapping[str, str], name: str) -> bool | None:
    """A true/false setting; None when unset."""
    text = (env.get(name) or "").strip().lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {text!r}.")


def choice_setting(
    env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str
) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in allowed:
        raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}, got {value!r}.")
    return value


def zone_setting(env: Mapping[str, str], name: str, default: str) -> str:
    """An IANA time zone name."""
    zone = env.get(name) or default
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"{name} must be an IANA time zone like Asia/Manila, got {zone!r}."
        ) from exc
    return zone


def clock_setting(env: Mapping[str, str], name: str, default: time) -> time:
    """A time of day like ``07:00``."""
    text = (env.get(name) or default.strftime("%H:%M")).strip()
    match = _CLOCK.match(text)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ConfigurationError(f"{name} must be a time like 07:00, got {text!r}.")
    return time(int(match[1]), int(match[2]))


def number_setting(env: Mapping[str, str], name: str, default, kind, *, minimum):
    """A numeric setting of ``kind`` (``int`` or ``float``) of at least ``minimum``, or a
    one-line error naming it."""
    return _number(env, name, default, kind, minimum=minimum)

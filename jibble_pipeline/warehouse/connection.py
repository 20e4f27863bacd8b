"""Where the warehouse is, and connections to it that always speak UTC.

``JIBBLE_DATABASE_URL`` names an external Postgres; without it the project starts its own
embedded server. Connection URLs can hold a password: only ``redact`` ever prints one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jibble_pipeline.settings.fields import ConfigurationError
from jibble_pipeline.settings.pipeline import Settings, load_settings

_DRIVER = re.compile(r"^postgres(?:ql)?(?:\+\w+)?://")


def resolve_database_url(settings: Settings | None = None) -> str:
    """The warehouse URL: ``JIBBLE_DATABASE_URL``, or the embedded server (started if needed)."""
    settings = settings or load_settings()
    return warehouse_url(settings.database_url, str(settings.embedded_data_dir))


def warehouse_url(database_url: str | None, embedded_data_dir: str | None) -> str:
    """``database_url`` for libpq, or the URL of the embedded server in ``embedded_data_dir``
    (started if needed)."""
    if database_url:
        return libpq_url(database_url)
    if not embedded_data_dir:
        raise ConfigurationError("No warehouse: give a database URL or an embedded data folder.")
    from jibble_pipeline.warehouse.embedded import ensure_embedded_postgres

    return ensure_embedded_postgres(Path(embedded_data_dir))


def libpq_url(url: str) -> str:
    """``postgresql://...`` whatever driver suffix or ``postgres://`` spelling it came with."""
    if not _DRIVER.match(url):
        raise ConfigurationError("The database URL must start with postgresql://")
    return _DRIVER.sub("postgresql://", url, count=1)


def sqlalchemy_url(url: str) -> str:
    """The URL for Dagster's own storage, which needs psycopg2 named explicitly (a bare
    ``postgresql://`` makes SQLAlchemy 2.1 pick psycopg 3, which Dagster's event log breaks on)."""
    return _DRIVER.sub("postgresql+psycopg2://", libpq_url(url), count=1)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, fit for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def scrub_password(text: str, url: str) -> str:
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


def check_reachable(url: str, timeout_seconds: int = 10) -> None:
    """Connects once and hangs up; a ``ConnectionError`` in one line (which database, what
    went wrong, never the password) when it cannot."""
    connect(url, connect_timeout=timeout_seconds).close()


def connect(url: str, **options: Any) -> psycopg.Connection:
    """A psycopg connection whose session time zone is UTC (instants never take the server's
    zone). Connection failures name the redacted URL, never the password."""
    params: dict[str, Any] = conninfo_to_dict(libpq_url(url))
    params["options"] = " ".join(filter(None, [params.get("options"), "-c TimeZone=UTC"]))
    try:
        return psycopg.connect(make_conninfo(**params), **options)
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split()).removeprefix("connection failed: ").rstrip(".")
        reason = scrub_password(reason or type(exc).__name__, url)
        raise ConnectionError(
            f"Cannot connect to the warehouse at {redact(url)}: {reason}. "
            "Check JIBBLE_DATABASE_URL (or unset it to use the embedded PostgreSQL)."
        ) from None

"""Dagster's instance storage in the warehouse's Postgres (``dagster.yaml`` names it).

The URL is resolved at load time like the warehouse's own: ``JIBBLE_DATABASE_URL``, or the
embedded server, started if needed. SQLAlchemy is told to use psycopg2 explicitly.
"""

from __future__ import annotations

from typing import Any

from dagster_postgres import DagsterPostgresStorage

from jibble_pipeline.settings.fields import ConfigurationError
from jibble_pipeline.warehouse.connection import (
    check_reachable,
    resolve_database_url,
    sqlalchemy_url,
)


class JibbleDagsterStorage(DagsterPostgresStorage):
    """Checks the database once before Dagster's own storage retries it for many seconds
    and many lines: a wrong ``JIBBLE_DATABASE_URL`` ends the process with one line."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> JibbleDagsterStorage:
        """``inst_data``: Dagster's record of this class in ``dagster.yaml``, handed back."""
        try:
            url = resolve_database_url()
            check_reachable(url)
        except (ConfigurationError, ConnectionError) as error:
            raise SystemExit(f"Dagster's storage: {error}") from None
        return cls(postgres_url=sqlalchemy_url(url), inst_data=inst_data)

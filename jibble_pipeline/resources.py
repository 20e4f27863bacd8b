"""The pipeline's resources from plain values: one place that wires the Jibble API, the
IO manager and the warehouse, for the definitions, the tests and the benchmarks."""

from __future__ import annotations

from typing import Any, Protocol

import dagster as dg

from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.settings.pipeline import Settings
from jibble_pipeline.simulator.demo import DemoJibbleResource
from jibble_pipeline.warehouse.io_manager import PostgresIOManager
from jibble_pipeline.warehouse.resource import WarehouseResource


class JibbleServer(Protocol):
    """A running Jibble-compatible server (the simulator, in a thread or a process)."""

    client_id: str
    client_secret: str
    url: str


def env_or_none(name: str, value: str | None) -> dg.EnvVar | None:
    """Secrets go through EnvVar so their values never reach the UI or run config."""
    return dg.EnvVar(name) if value else None


def jibble_resource(settings: Settings, *, secrets_from_env: bool = True) -> JibbleResource:
    """The live Jibble API with credentials, the demo's simulator without.
    ``secrets_from_env``: credentials as ``EnvVar`` (for Dagster), else as values (for a
    client used outside Dagster, such as ``doctor``)."""
    limits: dict[str, Any] = {
        "concurrency": settings.concurrency,
        "max_requests_per_second": settings.max_requests_per_second,
        "max_wait_seconds": settings.max_wait_seconds,
        "api_runs": settings.api_runs,
        "reconcile_tolerance_seconds": settings.reconcile_tolerance_seconds,
        "organization_id": settings.organization_id,
        "sweep_requests": settings.sweep_requests,
    }
    if settings.demo_mode:
        return DemoJibbleResource(first_date=settings.partitions_start.isoformat(), **limits)
    client_id: Any = settings.client_id
    client_secret: Any = settings.client_secret
    if secrets_from_env:
        client_id = env_or_none("JIBBLE_CLIENT_ID", settings.client_id)
        client_secret = env_or_none("JIBBLE_CLIENT_SECRET", settings.client_secret)
    return JibbleResource(
        client_id=client_id,
        client_secret=client_secret,
        identity_url=settings.identity_url,
        workspace_url=settings.workspace_url,
        time_tracking_url=settings.time_tracking_url,
        time_attendance_url=settings.time_attendance_url,
        **limits,
    )


def pipeline_resources(
    jibble: JibbleResource,
    database_url: str | dg.EnvVar | None,
    schema: str,
    embedded_data_dir: str | None = None,
) -> dict[str, Any]:
    """``database_url`` None: the embedded server in ``embedded_data_dir``."""
    warehouse: dict[str, Any] = {
        "database_url": database_url,
        "schema_name": schema,
        "embedded_data_dir": embedded_data_dir,
    }
    return {
        "jibble": jibble,
        "io_manager": PostgresIOManager(**warehouse),
        "warehouse": WarehouseResource(**warehouse),
    }


def server_jibble(server: JibbleServer, **options: Any) -> JibbleResource:
    """The Jibble resource reading ``server`` (every API host at its URL)."""
    return JibbleResource(
        client_id=server.client_id,
        client_secret=server.client_secret,
        identity_url=server.url,
        workspace_url=server.url,
        time_tracking_url=server.url,
        time_attendance_url=server.url,
        **options,
    )

"""The pipeline's resources from plain values: one place that wires the Jibble API, the
IO manager and the warehouse, for the definitions, the tests and the benchmarks."""

from __future__ import annotations

from typing import Any, Protocol

import dagster as dg

from jibble_pipeline.jibble.resource import JibbleResource
from jibble_pipeline.warehouse.io_manager import PostgresIOManager
from jibble_pipeline.warehouse.resource import WarehouseResource


class JibbleServer(Protocol):
    """A running Jibble-compatible server (the simulator, in a thread or a process)."""

    client_id: str
    client_secret: str
    url: str


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

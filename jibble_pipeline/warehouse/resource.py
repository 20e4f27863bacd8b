"""The warehouse as a Dagster resource, for assets, checks and sensors that query it."""

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pandas as pd
from psycopg import sql

from jibble_pipeline.warehouse.api_slots import api_slot
from jibble_pipeline.warehouse.io_manager import open_warehouse
from jibble_pipeline.warehouse.store import Query, Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """SQL access to the warehouse schema (``database_url`` None: the embedded server)."""

    database_url: str | None = None
    schema_name: str = "jibble"
    embedded_data_dir: str | None = None  # the embedded server's, when database_url is None

    def open(self) -> Warehouse:
        return open_warehouse(self.database_url, self.schema_name, self.embedded_data_dir)

    def table(self, name: str) -> sql.Identifier:
        """A table or view of the schema, quoted for ``psycopg.sql`` composition."""
        return sql.Identifier(self.schema_name, name)

    def query_frame(self, query: Query, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        return self.open().query_frame(query, params)

    def read_table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        return self.open().read(name, columns=columns)

    @contextmanager
    def api_slot(self, api: str, limit: int, wait_seconds: float) -> Iterator[Callable[[], int]]:
        """One of the ``limit`` slots of an outside API, shared by every run (``api_slots``)."""
        with api_slot(self.open().url, api, limit, wait_seconds) as held:
            yield held

"""The Postgres IO manager: every asset's DataFrame lands in its warehouse table.

A partitioned asset's output replaces (or, for raw entries, merges into) exactly the rows
of the run's partition window, in one transaction; an input reads back only the partitions
the downstream asset asked for. (Raw entries are landed in chunks by their own asset, which
then reports a ``MaterializeResult``: the IO manager only reads them.)
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import dagster as dg
import pandas as pd
import psycopg

from jibble_pipeline.schema import table
from jibble_pipeline.warehouse import versions
from jibble_pipeline.warehouse.connection import warehouse_url
from jibble_pipeline.warehouse.date_window import DateWindow
from jibble_pipeline.warehouse.store import Warehouse


def open_warehouse(
    database_url: str | None, schema_name: str, embedded_data_dir: str | None = None
) -> Warehouse:
    """The warehouse of ``database_url``, or, when it is None, of the embedded server whose
    data folder is ``embedded_data_dir`` (started if needed)."""
    return Warehouse(warehouse_url(database_url, embedded_data_dir), schema_name)


def _window(context: dg.InputContext | dg.OutputContext) -> DateWindow | None:
    if not context.has_asset_partitions:
        return None
    window = context.asset_partitions_time_window
    end = window.end.date()
    if window.end.time() != window.end.min.time():
        end += timedelta(days=1)  # a window ending mid-day still covers that date
    return DateWindow(window.start.date(), end)


class PostgresIOManager(dg.ConfigurableIOManager):
    """Stores each asset in the warehouse table of the same name (schema ``schema_name``)."""

    database_url: str | None = None
    schema_name: str = "jibble"
    embedded_data_dir: str | None = None  # the embedded server's, when database_url is None

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        name = context.asset_key.path[-1]
        spec = table(name)
        window = _window(context) if spec.partition_column else None
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{name}: the Postgres IO manager stores DataFrames, got {type(obj)}")
        warehouse = open_warehouse(self.database_url, self.schema_name, self.embedded_data_dir)
        also = _versions_writer(context, warehouse.schema, name, obj) if window else None
        summary = warehouse.write(name, obj, window, also)
        metadata: dict[str, Any] = {"table": f"{self.schema_name}.{name}"}
        if not context.has_asset_partitions or len(context.asset_partition_keys) == 1:
            # A write over several partitions is the run's: each partition's own counts
            # come from its asset, never the run's total on every one of them.
            metadata.update(summary.metadata())
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        name = cast(dg.OutputContext, context.upstream_output).asset_key.path[-1]  # assets' inputs
        spec = table(name)
        window = _window(context) if spec.partition_column else None
        warehouse = open_warehouse(self.database_url, self.schema_name, self.embedded_data_dir)
        if window is None:
            return warehouse.read(name)
        read = versions.read_versions(warehouse, name, window)  # before the rows: see versions
        frame = warehouse.read(name, window)
        frame.attrs[versions.READ_VERSIONS] = {name: read}
        return frame


def _versions_writer(
    context: dg.OutputContext, schema: str, name: str, frame: pd.DataFrame
) -> Callable[[psycopg.Cursor], None]:
    """What a partitioned write commits with its rows: the new version of each partition it
    wrote and, when the frame says what it was derived from, those inputs' versions."""
    partitions = cast(dg.TimeWindowPartitionsDefinition, context.asset_partitions_def)
    windows = {}
    for key in context.asset_partition_keys:
        span = partitions.time_window_for_partition_key(key)
        windows[span.start.date()] = DateWindow(span.start.date(), span.end.date())
    derived_from = frame.attrs.get(versions.READ_VERSIONS)

    def write(cursor: psycopg.Cursor) -> None:
        versions.bump(cursor, schema, name, windows)
        if derived_from is not None:
            versions.record(cursor, schema, name, windows, derived_from)

    return write

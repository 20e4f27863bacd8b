"""Asset outputs described by their warehouse table (``jibble_pipeline.schema``): the UI's
column schema comes from the same definition as the DDL and the frames."""

import dagster as dg

from jibble_pipeline.schema import table


def column_schema(name: str) -> dict[str, dg.TableSchema]:
    """The ``dagster/column_schema`` metadata of the warehouse table ``name``."""
    spec = table(name)
    columns = [
        dg.TableColumn(
            column,
            kind,
            constraints=dg.TableColumnConstraints(
                nullable="NOT NULL" not in definition, unique=spec.primary_key == (column,)
            ),
        )
        for (column, definition), kind in zip(spec.columns.items(), spec.column_types, strict=True)
    ]
    return {"dagster/column_schema": dg.TableSchema(columns=columns)}


def table_out(name: str, description: str, kinds: set[str]) -> dg.AssetOut:
    """An output of a multi-asset stored in the table ``name``; optional, so the multi-asset
    can be subset (each writes all its tables whichever were selected)."""
    return dg.AssetOut(
        is_required=False, description=description, kinds=kinds, metadata=column_schema(name)
    )

"""Metadata values people read in the Dagster UI: tables, counts and small charts."""

from collections.abc import Sequence
from typing import Any

import dagster as dg
import pandas as pd

from jibble_pipeline.jibble.models import Rejected
from jibble_pipeline.rules.formatting import format_hours

MAX_TABLE_ROWS = 200
BAR_WIDTH = 30


def _cell(value: object) -> str | int | float | bool | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def table_metadata(frame: pd.DataFrame, max_rows: int = MAX_TABLE_ROWS) -> dg.TableMetadataValue:
    """A DataFrame as a UI table (first ``max_rows`` rows)."""
    shown = frame.head(max_rows)
    records = [
        dg.TableRecord({str(k): _cell(v) for k, v in row.items()})
        for row in shown.to_dict(orient="records")
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(str(c), "string") for c in shown.columns])
    return dg.MetadataValue.table(records=records, schema=schema)


def selected_names(context: dg.AssetExecutionContext) -> set[str]:
    """The assets of a multi-asset step that this run materialises."""
    return {key.to_user_string() for key in context.selected_asset_keys}


def rows_by(frame: pd.DataFrame, column: str) -> dict[object, pd.DataFrame]:
    """The rows of ``frame`` for each value of ``column`` (a partition's key), split once."""
    return {key: rows for key, rows in frame.groupby(column, sort=False)}


def hours_bar_chart(seconds_by_label: pd.Series, title: str) -> dg.MarkdownMetadataValue:
    """A text bar chart (one bar per label, length proportional to hours), as markdown."""
    lines = [f"**{title}**", "", "```"]
    peak = float(seconds_by_label.max()) if len(seconds_by_label) else 0.0
    width = max((len(str(label)) for label in seconds_by_label.index), default=0)
    for label, seconds in seconds_by_label.items():
        bar = "█" * (round(BAR_WIDTH * float(seconds) / peak) if peak > 0 else 0)
        lines.append(f"{str(label):<{width}}  {format_hours(seconds):>7}  {bar}")
    lines.append("```")
    return dg.MetadataValue.md("\n".join(lines))


def rejected_metadata(rejected: Sequence[Rejected]) -> dict[str, Any]:
    """Counts and reasons of payloads that failed validation (never dropped silently)."""
    if not rejected:
        return {"rejected": 0}
    reasons = pd.Series([r.reason for r in rejected]).value_counts().rename_axis("reason")
    return {
        "rejected": len(rejected),
        "rejected_reasons": table_metadata(reasons.rename("count").reset_index()),
    }


def hours_table(frame: pd.DataFrame, key_columns: list[str]) -> dg.TableMetadataValue:
    """Work and break seconds summed by ``key_columns``, shown as h:mm."""
    totals = (
        frame.groupby(key_columns, dropna=False)[["work_seconds", "break_seconds"]]
        .sum()
        .sort_values("work_seconds", ascending=False)
        .reset_index()
    )
    totals["work"] = totals["work_seconds"].map(format_hours)
    totals["break"] = totals["break_seconds"].map(format_hours)
    return table_metadata(totals[[*key_columns, "work", "break"]])

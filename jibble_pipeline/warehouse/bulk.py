"""Bulk writes: DataFrames into Postgres with COPY, never a statement per row."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from psycopg.types.json import set_json_dumps


def python_values(column: pd.Series) -> np.ndarray:
    """A column as an object array of plain Python values, None for every missing value.

    psycopg adapts Python objects, not numpy scalars, ``NaT`` or ``pd.NA``."""
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column):
        values = np.array(column.dt.to_pydatetime(), dtype=object)
        values[column.isna().to_numpy()] = None
        return values
    if pd.api.types.is_bool_dtype(column) and not isinstance(column.dtype, pd.BooleanDtype):
        return np.asarray(column.to_numpy(dtype=bool).tolist(), dtype=object)
    if pd.api.types.is_numeric_dtype(column) or isinstance(column.dtype, pd.BooleanDtype):
        values = np.empty(len(column), dtype=object)
        values[:] = column.astype(object).to_numpy().tolist()
        values[column.isna().to_numpy()] = None
        return values
    values = column.to_numpy(dtype=object, copy=True)
    values[pd.isna(values)] = None
    return values


def frame_rows(frame: pd.DataFrame, columns: Sequence[str]) -> Iterator[tuple]:
    """The rows of ``frame`` restricted to ``columns``, as tuples of Python values."""
    arrays = [python_values(frame[name]) for name in columns]
    return zip(*arrays, strict=True)


def copy_frame(
    cursor: psycopg.Cursor,
    target: sql.Composable,
    frame: pd.DataFrame,
    columns: Sequence[str],
    types: Sequence[str],
) -> int:
    """Binary COPY of ``frame[columns]`` into ``target``, whose columns have the Postgres
    ``types``; returns the number of rows written.

    Binary rows skip the text escaping of JSON payloads. A ``jsonb`` value that is already
    JSON text is sent as it is (not encoded a second time, as a JSON string)."""
    if frame.empty:
        return 0
    set_json_dumps(_json_text, context=cursor)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cursor.copy(statement) as copy:
        copy.set_types(list(types))
        for row in frame_rows(frame, columns):
            copy.write_row(row)
    return len(frame)


def _json_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)

"""The DDL of the warehouse's tables (defined in ``jibble_pipeline.schema``): every
statement is idempotent, and tables created by an older version gain their new columns."""

from __future__ import annotations

from psycopg import sql

from jibble_pipeline.schema import ROLLUP_VIEWS, TABLES, WEEKLY_HOURS


def _index_name(table_name: str, columns: tuple[str, ...]) -> str:
    return f"{table_name}_{'_'.join(columns)}_idx"


def added_column_statements(schema: str, existing: set[tuple[str, str]]) -> list[sql.Composed]:
    """``ALTER TABLE ... ADD COLUMN`` for the nullable columns a table created by an older
    version lacks; ``existing`` holds the (table, column) pairs the schema has."""
    tables = {name for name, _ in existing}
    return [
        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
            sql.Identifier(schema, spec.name), sql.Identifier(column), sql.SQL(kind)
        )
        for spec in TABLES.values()
        if spec.name in tables
        for column, kind in spec.columns.items()
        if (spec.name, column) not in existing and "NOT NULL" not in kind
    ]


def create_statements(schema: str) -> list[sql.Composed]:
    """DDL for the schema, its tables, indexes and views; every statement is idempotent."""
    statements: list[sql.Composed] = [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
    ]
    for spec in TABLES.values():
        columns = [
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
            for name, kind in spec.columns.items()
        ]
        if spec.primary_key:
            columns.append(
                sql.SQL("PRIMARY KEY ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, spec.primary_key))
                )
            )
        statements.append(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                sql.Identifier(schema, spec.name), sql.SQL(", ").join(columns)
            )
        )
        for index in spec.indexes:
            statements.append(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                    sql.Identifier(_index_name(spec.name, index)),
                    sql.Identifier(schema, spec.name),
                    sql.SQL(", ").join(map(sql.Identifier, index)),
                )
            )
    for view, key in ROLLUP_VIEWS.items():
        statements.append(
            sql.SQL(
                "CREATE OR REPLACE VIEW {view} AS"
                " SELECT week_start, {key},"
                " sum(work_seconds)::bigint AS work_seconds,"
                " sum(break_seconds)::bigint AS break_seconds,"
                " sum(work_seconds) / 3600.0 AS work_hours,"
                " sum(break_seconds) / 3600.0 AS break_hours,"
                " sum(session_count)::bigint AS session_count,"
                " sum(incomplete_count)::bigint AS incomplete_count"
                " FROM {weekly} GROUP BY week_start, {key}"
            ).format(
                view=sql.Identifier(schema, view),
                key=sql.Identifier(key),
                weekly=sql.Identifier(schema, WEEKLY_HOURS.name),
            )
        )
    return statements

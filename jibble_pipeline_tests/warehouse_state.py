"""A warehouse schema's whole content as comparable rows, so a run that went through faults,
crashes or concurrent writers can be compared with a clean run of the same data, table by
table.

History differs legitimately too: an entry the warehouse once held and the source later
deleted (or broke) stays in ``raw_time_entries``, marked removed, where a clean run never saw
it. Scenarios compared with a clean run leave such entries out (or repair them at the source).
"""

from __future__ import annotations

from collections import Counter

import psycopg
from psycopg import sql

from jibble_pipeline.schema import TABLES

# What legitimately differs between two correct runs of the same data, and nothing else:
# - the wall clock of a fetch or sync: ``fetched_at`` (raw entries), ``synced_at`` (snapshots);
# - the derivation's clock: ``derived_at`` (the run's wall clock unless ``now`` is pinned);
# - which run quarantined an entry, and when: ``run_id``, ``quarantined_at``;
# - ``agent_group_history.valid_from``/``valid_to`` are the wall clock of the People syncs
#   that saw a group: only whether a row is still current (``valid_to`` null) is compared;
# - ``raw_time_entries.removed_at`` is when a run noticed an entry gone: only whether it is
#   set is compared;
# - what was learned of the tenant: when, and under which tenant key (a digest of the
#   simulator's client id);
# - the versions of partitions (the ids of the transactions that wrote them) and when they
#   were written or derived: which partitions and inputs are recorded is compared.
RUN_SPECIFIC = {
    "agents": {"synced_at"},
    "client_groups": {"synced_at"},
    "activities": {"synced_at"},
    "raw_time_entries": {"fetched_at"},
    "quarantined_entries": {"run_id", "quarantined_at"},
    "sessions": {"derived_at"},
    "agent_group_history": {"valid_from"},
    "jibble_tenant": {"tenant", "learned_at"},
    "partition_versions": {"version", "changed_at"},
    "derived_from": {"version", "derived_at"},
}
ONLY_WHETHER_SET = {"agent_group_history": {"valid_to"}, "raw_time_entries": {"removed_at"}}
PARTITIONED = [name for name, spec in TABLES.items() if spec.partition_column]

Rows = dict[str, list[tuple]]


def _select(name: str, exact: bool) -> list[sql.Composable]:
    columns = []
    for column, kind in TABLES[name].columns.items():
        if not exact and column in RUN_SPECIFIC.get(name, ()):
            continue
        expression: sql.Composable = sql.Identifier(column)
        if not exact and column in ONLY_WHETHER_SET.get(name, ()):
            expression = sql.SQL("({} IS NOT NULL)").format(expression)
        elif kind.split()[0] == "jsonb":
            expression = sql.SQL("{}::text").format(expression)  # canonical, hashable
        columns.append(expression)
    return columns


def warehouse_rows(
    database_url: str, schema: str, *, exact: bool = False, tables: list[str] | None = None
) -> Rows:
    """Every row of every warehouse table of ``schema``, sorted. ``exact``: all columns, as
    stored (for "nothing changed at all"); otherwise without what differs between runs."""
    rows: Rows = {}
    with psycopg.connect(database_url) as conn:
        for name in tables or list(TABLES):
            columns = _select(name, exact)
            query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                sql.SQL(", ").join(columns),
                sql.Identifier(schema, name),
                sql.SQL(", ").join(sql.Literal(n) for n in range(1, len(columns) + 1)),
            )
            rows[name] = [tuple(row) for row in conn.execute(query)]
    return rows


def differences(actual: Rows, expected: Rows, sample: int = 3) -> list[str]:
    """What differs, table by table: row counts and a few rows found on one side only."""
    found = []
    for name in expected:
        if actual[name] == expected[name]:
            continue
        extra = Counter(actual[name]) - Counter(expected[name])
        missing = Counter(expected[name]) - Counter(actual[name])
        found.append(
            f"{name}: {len(actual[name])} rows, expected {len(expected[name])}; "
            f"{sum(extra.values())} unexpected, e.g. {list(extra)[:sample]}; "
            f"{sum(missing.values())} missing, e.g. {list(missing)[:sample]}"
        )
    return found


def assert_same_warehouse(actual: Rows, expected: Rows) -> None:
    """Equal table by table; the expectation must hold data (an empty match proves nothing)."""
    for name in ("agents", "raw_time_entries", "sessions", "daily_attendance"):
        assert expected.get(name, [None]), f"the reference has no {name}"
    problems = differences(actual, expected)
    assert not problems, "\n".join(problems)

"""Warehouse tables (docs/rules.md, Warehouse): one definition each, its columns and their Postgres
types, keys and indexes. It feeds the DDL (``warehouse.ddl``), the frames the payloads and
the rules produce (their columns, in table order) and the column schema the UI shows.

Each table names the column its partitions are keyed on and how a write lands: ``upsert``
(snapshots), ``merge`` (raw entries: newest version wins, entries gone at the source are
kept and marked), ``replace`` (a partition window, or the whole table when unpartitioned,
is deleted and loaded again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

WriteMode = Literal["upsert", "merge", "replace"]


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, str]  # name -> SQL type, in table order
    write: WriteMode
    primary_key: tuple[str, ...] = ()
    partition_column: str | None = None
    indexes: tuple[tuple[str, ...], ...] = ()
    # Columns left out when the table is read as an asset input (large, not used downstream).
    unread: frozenset[str] = field(default_factory=frozenset)

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    @property
    def column_types(self) -> list[str]:
        """The Postgres type of each column (its definition without constraints)."""
        return [definition.removesuffix(" NOT NULL") for definition in self.columns.values()]

    @property
    def instant_columns(self) -> list[str]:
        """Columns of UTC instants (``timestamptz``)."""
        return [c for c, kind in zip(self.columns, self.column_types, strict=True) if kind == TS]

    @property
    def read_columns(self) -> list[str]:
        return [c for c in self.columns if c not in self.unread]


TEXT, TS, JSON = "text", "timestamptz", "jsonb"

AGENTS = Table(
    "agents",
    {
        "person_id": "text NOT NULL", "full_name": TEXT, "preferred_name": TEXT, "email": TEXT,
        "group_id": TEXT, "status": TEXT, "code": TEXT, "role": TEXT, "time_zone": TEXT,
        "created_at": TS, "updated_at": TS, "removed_at": TS, "raw_payload": JSON,
        "synced_at": TS, "time_zone_source": TEXT,
    },
    write="upsert",
    primary_key=("person_id",),
    indexes=(("group_id",),),
)  # fmt: skip
CLIENT_GROUPS = Table(
    "client_groups",
    {
        "group_id": "text NOT NULL", "name": TEXT, "code": TEXT, "status": TEXT,
        "raw_payload": JSON, "synced_at": TS,
    },
    write="upsert",
    primary_key=("group_id",),
)  # fmt: skip
ACTIVITIES = Table(
    "activities",
    {
        "activity_id": "text NOT NULL", "name": TEXT, "code": TEXT, "color": TEXT,
        "status": TEXT, "raw_payload": JSON, "synced_at": TS,
    },
    write="upsert",
    primary_key=("activity_id",),
)  # fmt: skip
AGENT_GROUP_HISTORY = Table(
    "agent_group_history",
    {"person_id": "text NOT NULL", "group_id": TEXT, "valid_from": "timestamptz NOT NULL",
     "valid_to": TS},
    write="replace",
    primary_key=("person_id", "valid_from"),
)  # fmt: skip
RAW_TIME_ENTRIES = Table(
    "raw_time_entries",
    {
        "entry_id": "text NOT NULL", "person_id": "text NOT NULL", "type": "text NOT NULL",
        "time_utc": "timestamptz NOT NULL", "local_time": "timestamp", "offset_minutes": "integer",
        "belongs_to_date": "date NOT NULL", "activity_id": TEXT, "project_id": TEXT,
        "break_id": TEXT, "client_type": TEXT, "status": TEXT, "note": TEXT, "created_at": TS,
        "updated_at": TS, "raw_payload": "jsonb NOT NULL", "fetched_at": "timestamptz NOT NULL",
        "removed_at": TS,
    },
    write="merge",
    primary_key=("entry_id",),
    partition_column="belongs_to_date",
    indexes=(("person_id", "time_utc"), ("activity_id",), ("belongs_to_date",), ("updated_at",)),
    unread=frozenset({"raw_payload"}),
)  # fmt: skip
# One row per quarantined entry (``quarantine_key``: its id, or a digest of a payload without
# one), filed under the work date of the query that returned it; cleared when it is fixed.
QUARANTINED_ENTRIES = Table(
    "quarantined_entries",
    {
        "partition_date": "date NOT NULL", "entry_id": TEXT, "reason": "text NOT NULL",
        "raw_payload": JSON, "run_id": TEXT, "quarantined_at": TS, "quarantine_key": TEXT,
    },
    write="replace",
    partition_column="partition_date",
    indexes=(("partition_date",), ("entry_id",), ("quarantine_key",)),
)  # fmt: skip
# Progress of a range being fetched: each work date landed (one row per date, written in the
# same transaction as its entries). A re-run of the same range skips the dates listed here
# that have not changed at the source since; a range that completes removes its rows.
INGEST_CHECKPOINTS = Table(
    "ingest_checkpoints",
    {
        "range_first": "date NOT NULL", "range_last": "date NOT NULL",
        "work_date": "date NOT NULL", "entries": "integer NOT NULL",
        "quarantined": "integer NOT NULL", "fetched_at": "timestamptz NOT NULL",
        "run_id": TEXT,
    },
    write="upsert",
    primary_key=("range_first", "range_last", "work_date"),
)  # fmt: skip
# What the Jibble tenant accepts and how it answers (jibble.tenant), one row per capability of
# each tenant (a digest of its client id): the next run starts from what was learned.
JIBBLE_TENANT = Table(
    "jibble_tenant",
    {"tenant": "text NOT NULL", "capability": "text NOT NULL", "value": "text NOT NULL",
     "evidence": TEXT, "learned_at": TS},
    write="upsert",
    primary_key=("tenant", "capability"),
)  # fmt: skip
SESSIONS = Table(
    "sessions",
    {
        "session_id": "text NOT NULL", "person_id": "text NOT NULL", "group_id": TEXT,
        "activity_id": TEXT, "belongs_to_date": "date NOT NULL", "kind": "text NOT NULL",
        "start_utc": "timestamptz NOT NULL", "end_utc": TS, "duration_seconds": "bigint",
        "status": "text NOT NULL", "auto_out": "boolean NOT NULL", "start_entry_id": TEXT,
        "end_entry_id": TEXT, "offset_minutes": "integer", "start_local": "timestamp",
        "end_local": "timestamp", "derived_at": TS,
    },
    write="replace",
    partition_column="belongs_to_date",
    indexes=(("belongs_to_date",), ("person_id", "start_utc"), ("session_id",),
             ("end_entry_id",), ("activity_id",), ("group_id",)),
)  # fmt: skip
DAILY_ATTENDANCE = Table(
    "daily_attendance",
    {
        "person_id": "text NOT NULL", "belongs_to_date": "date NOT NULL", "group_id": TEXT,
        "clock_in_utc": TS, "clock_out_utc": TS, "clock_in_local": "timestamp",
        "clock_out_local": "timestamp", "work_seconds": "bigint NOT NULL",
        "break_seconds": "bigint NOT NULL", "work_hours": "double precision NOT NULL",
        "break_hours": "double precision NOT NULL", "session_count": "integer NOT NULL",
        "orphan_out_count": "integer NOT NULL", "has_open": "boolean NOT NULL",
        "has_incomplete": "boolean NOT NULL", "has_auto_out": "boolean NOT NULL",
    },
    write="replace",
    primary_key=("person_id", "belongs_to_date"),
    partition_column="belongs_to_date",
    indexes=(("belongs_to_date",),),
)  # fmt: skip
WEEKLY_HOURS = Table(
    "weekly_hours",
    {
        "week_start": "date NOT NULL", "person_id": "text NOT NULL", "group_id": TEXT,
        "activity_id": TEXT, "work_seconds": "bigint NOT NULL", "break_seconds": "bigint NOT NULL",
        "work_hours": "double precision NOT NULL", "break_hours": "double precision NOT NULL",
        "session_count": "integer NOT NULL", "incomplete_count": "integer NOT NULL",
    },
    write="replace",
    partition_column="week_start",
    indexes=(("week_start", "person_id"), ("group_id",), ("activity_id",)),
)  # fmt: skip

# Versions of derived partitions (warehouse.versions): each write of a partitioned table gives
# the partitions it wrote a new version, in the same transaction; each derived partition
# records the version of every input partition it read. Where the two differ, the inputs
# changed while or after it read them, and it is derived again.
PARTITION_VERSIONS = Table(
    "partition_versions",
    {"table_name": "text NOT NULL", "partition_date": "date NOT NULL",
     "version": "bigint NOT NULL", "changed_at": "timestamptz NOT NULL"},
    write="upsert",
    primary_key=("table_name", "partition_date"),
)  # fmt: skip
DERIVED_FROM = Table(
    "derived_from",
    {"table_name": "text NOT NULL", "partition_date": "date NOT NULL",
     "input_table": "text NOT NULL", "input_date": "date NOT NULL", "version": "bigint",
     "derived_at": "timestamptz NOT NULL"},
    write="upsert",
    primary_key=("table_name", "partition_date", "input_table", "input_date"),
    indexes=(("input_table", "input_date"),),
)  # fmt: skip

# ------------------------------------------------------------------------------ digests
# Who receives which client group's weekly digest, and the hours the client buys a week (its
# contract, repeated on each of its rows): a snapshot of Airtable or the clients file, replaced
# whole on each sync so mappings the source dropped disappear.
CLIENT_DIRECTORY = Table(
    "client_directory",
    {"email": "text NOT NULL", "group_id": "text NOT NULL", "client_name": TEXT,
     "contracted_hours": "double precision", "seats": "integer",
     "hours_per_seat": "double precision", "source": TEXT, "synced_at": TS},
    write="replace",
    primary_key=("email", "group_id"),
    indexes=(("group_id",),),
)  # fmt: skip
# One rendered digest per (week, client): HTML and text as emailed, and the content as JSON.
CLIENT_DIGESTS = Table(
    "client_digests",
    {
        "week_start": "date NOT NULL", "client_email": "text NOT NULL", "client_name": TEXT,
        "group_ids": TEXT, "subject": TEXT, "agent_count": "integer NOT NULL",
        "total_work_seconds": "bigint NOT NULL", "note_count": "integer NOT NULL",
        "html": "text NOT NULL", "text": "text NOT NULL", "content": "jsonb NOT NULL",
        "digest_sha256": "text NOT NULL", "rendered_at": TS,
    },
    write="replace",
    primary_key=("week_start", "client_email"),
    partition_column="week_start",
    indexes=(("week_start",),),
)  # fmt: skip


def _send_log(
    name: str, period: str, recipient: str, sha: str, *indexes: str, version: str | None = None
) -> Table:
    """A send log: one row per (period, recipient[, version]), claimed and recorded by the
    sending step's own set-based statements (delivery/sent_log.py), never replaced by a
    re-run (a plain write would only upsert)."""
    key = (period, recipient, version) if version else (period, recipient)
    return Table(
        name,
        {
            period: "date NOT NULL", recipient: "text NOT NULL",
            **({version: "integer NOT NULL"} if version else {}), "status": "text NOT NULL",
            "attempts": "integer NOT NULL", "send_count": "integer NOT NULL", "backend": TEXT,
            "subject": TEXT, sha: TEXT, "message_id": TEXT, "last_error": TEXT,
            "first_attempt_at": TS, "claimed_at": TS, "last_attempt_at": TS, "sent_at": TS,
            "run_id": TEXT,
        },
        write="upsert",
        primary_key=key,
        partition_column=period,
        indexes=((period,), *((i,) for i in indexes)),
    )  # fmt: skip


# Which client got which week's digest.
SENT_DIGESTS = _send_log("sent_digests", "week_start", "client_email", "digest_sha256", "status")
# Which client got which correction (its version of the week) of a week it was sent.
SENT_CORRECTIONS = _send_log(
    "sent_corrections", "week_start", "client_email", "correction_sha256", "status",
    version="version",
)  # fmt: skip

# The as-reported ledger (warehouse/ledger.py): what each client was told of each week, one
# version per digest or correction sent (``dry_run``: a deployment that sends nothing, which
# rehearses), or per change past the correction cut-off noted for operations instead.
# Written by the ledger's own set-based statements, never replaced.
REPORTED_WEEKS = Table(
    "reported_weeks",
    {
        "week_start": "date NOT NULL", "client_email": "text NOT NULL",
        "version": "integer NOT NULL", "kind": "text NOT NULL",
        "reported_at": "timestamptz NOT NULL", "dry_run": "boolean NOT NULL",
        "total_seconds": "bigint NOT NULL", "subject": TEXT, "content": "jsonb NOT NULL",
        "correction": JSON, "run_id": TEXT,
    },
    write="upsert",
    primary_key=("week_start", "client_email", "version"),
    partition_column="week_start",
    indexes=(("week_start",), ("reported_at",)),
)  # fmt: skip
# Each version's hours per agent and activity, the grain a change is measured at.
REPORTED_HOURS = Table(
    "reported_hours",
    {
        "week_start": "date NOT NULL", "client_email": "text NOT NULL",
        "version": "integer NOT NULL", "person_id": "text NOT NULL", "activity_id": TEXT,
        "seconds": "bigint NOT NULL",
    },
    write="upsert",
    partition_column="week_start",
    indexes=(("week_start", "client_email", "version"),),
)  # fmt: skip

# ------------------------------------------------------------------------------ alerts
# The daily operations alert's send log: one row per (work date, recipient: an email
# address or the webhook).
SENT_ALERTS = _send_log("sent_alerts", "alert_date", "recipient", "alert_sha256")

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        AGENTS, CLIENT_GROUPS, ACTIVITIES, AGENT_GROUP_HISTORY, RAW_TIME_ENTRIES,
        QUARANTINED_ENTRIES, INGEST_CHECKPOINTS, JIBBLE_TENANT, SESSIONS, DAILY_ATTENDANCE,
        WEEKLY_HOURS, PARTITION_VERSIONS, DERIVED_FROM, CLIENT_DIRECTORY, CLIENT_DIGESTS,
        SENT_DIGESTS, SENT_CORRECTIONS, REPORTED_WEEKS, REPORTED_HOURS, SENT_ALERTS,
    )
}  # fmt: skip

# Roll-ups of weekly_hours (docs/rules.md, Weekly hours), as views so they never disagree with it.
ROLLUP_VIEWS = {
    "weekly_hours_by_agent": "person_id",
    "weekly_hours_by_group": "group_id",
    "weekly_hours_by_activity": "activity_id",
}


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no warehouse table {name!r} (known: {', '.join(TABLES)})") from None

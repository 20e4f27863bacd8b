"""A small hand-made week (Mon 6 – Sun 12 Jan 2025) of Jibble payloads, with hostile names,
and the digest figures worked out by hand from it.

Groups: G1 (hostile name), G2, G3 (no client). Agents: Maria (Manila, UTC+8, G1), Bob (a
hostile name, New York, UTC-5, G1), Carla (UTC, G2), Dan (UTC, G3). ``NOW`` is Monday
13 Jan 06:00 UTC: Bob's Sunday-evening session started 5 h earlier (open), Maria's
Wednesday session never ended (incomplete).

Hand-computed hours (complete work sessions only):

- Maria: Mon 09:00-13:00 Inbound Calls 4:00, 13:00-13:30 break, 13:30-17:30 hostile
  activity 4:00; Tue 09:00-21:00 Inbound Calls 12:00 ended by an automatic clock-out;
  Wed 09:00 Inbound Calls, no clock-out (incomplete). Total 20:00.
- Bob: Thu 22:00 - Fri 02:15 local (work date Thu) hostile activity 4:15; Sun 20:00
  Inbound Calls, still clocked in (open). Total 4:15.
- Carla: Mon 08:00-16:30 Inbound Calls 8:30; Fri 08:00:00-08:44:40 Email Support 0:44:40,
  shown 0:45. Total 9:14:40, shown 9:15. (Sun 5 Jan 1:00 belongs to the week before.)
- Dan (G3): Mon 10:00-12:00, 2:00, in no client's digest.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql

from jibble_pipeline import schema
from jibble_pipeline.jibble.frames import (
    agents_frame,
    entries_frame,
    snapshot_frame,
)
from jibble_pipeline.jibble.models import Activity, Group, Person, TimeEntry, parse_payloads
from jibble_pipeline.partitions import range_tags
from jibble_pipeline.rules.groups import update_group_history
from jibble_pipeline.warehouse.date_window import DateWindow
from jibble_pipeline.warehouse.store import Warehouse

WEEK = date(2025, 1, 6)
NOW = datetime(2025, 1, 13, 6, 0, tzinfo=UTC)
FIRST_DAY, LAST_DAY = date(2025, 1, 5), date(2025, 1, 12)

HOSTILE_GROUP = 'Acme <b>Dental</b> & "Sons"'
HOSTILE_AGENT = '<script>alert("pwn")</script> Bob'
HOSTILE_ACTIVITY = '"><img src=x onerror=alert(1)>'

GROUPS = [
    {"id": "g1", "name": HOSTILE_GROUP, "code": "ACME", "status": "Active"},
    {"id": "g2", "name": "Beta Logistics", "code": "BETA", "status": "Active"},
    {"id": "g3", "name": "Gamma Unassigned", "status": "Active"},
]
ACTIVITIES = [
    {"id": "a1", "name": "Inbound Calls", "code": "INB", "status": "Active"},
    {"id": "a2", "name": HOSTILE_ACTIVITY, "code": "XSS", "status": "Active"},
    {"id": "a3", "name": "Email Support", "code": "EML", "status": "Active"},
]
PEOPLE = [
    {"id": "p1", "fullName": "Maria Santos", "groupId": "g1", "timeZone": "Asia/Manila",
     "email": "maria@agents.example", "status": "Joined"},
    {"id": "p2", "fullName": HOSTILE_AGENT, "groupId": "g1", "timeZone": "America/New_York",
     "email": "bob@agents.example", "status": "Joined"},
    {"id": "p3", "fullName": "Carla Diaz", "groupId": "g2", "timeZone": "UTC",
     "email": "carla@agents.example", "status": "Joined"},
    {"id": "p4", "fullName": "Dan Gamma", "groupId": "g3", "timeZone": "UTC",
     "email": "dan@agents.example", "status": "Joined"},
]  # fmt: skip


def _offset(minutes: int) -> str:
    if minutes == 0:
        return "PT0S"
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}PT{hours}H" + (f"{rest}M" if rest else "")


def punch(
    entry_id: str,
    person: str,
    kind: str,
    at: str,
    offset: int,
    day: str,
    activity: str | None = None,
    break_id: str | None = None,
    client_type: str | None = None,
) -> dict:
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    local = (moment + timedelta(minutes=offset)).replace(tzinfo=None)
    return {
        "id": entry_id, "personId": person, "type": kind, "time": at,
        "localTime": local.isoformat(), "offset": _offset(offset), "belongsToDate": day,
        "activityId": activity, "breakId": break_id, "clientType": client_type or "Web",
        "status": "Active", "createdAt": at, "updatedAt": at,
    }  # fmt: skip


ENTRIES = [
    # Maria, Manila (+8): Monday with a break and an activity switch.
    punch("e01", "p1", "In", "2025-01-06T01:00:00Z", 480, "2025-01-06", "a1"),
    punch("e02", "p1", "In", "2025-01-06T05:00:00Z", 480, "2025-01-06", None, "brk"),
    punch("e03", "p1", "In", "2025-01-06T05:30:00Z", 480, "2025-01-06", "a2"),
    punch("e04", "p1", "Out", "2025-01-06T09:30:00Z", 480, "2025-01-06"),
    # Tuesday: Jibble clocked her out automatically.
    punch("e05", "p1", "In", "2025-01-07T01:00:00Z", 480, "2025-01-07", "a1"),
    punch("e06", "p1", "Out", "2025-01-07T13:00:00Z", 480, "2025-01-07", client_type="AutoOut"),
    # Wednesday: never clocked out.
    punch("e07", "p1", "In", "2025-01-08T01:00:00Z", 480, "2025-01-08", "a1"),
    # Bob, New York (-5): a night shift past midnight, and a session still open.
    punch("e10", "p2", "In", "2025-01-10T03:00:00Z", -300, "2025-01-09", "a2"),
    punch("e11", "p2", "Out", "2025-01-10T07:15:00Z", -300, "2025-01-09"),
    punch("e12", "p2", "In", "2025-01-13T01:00:00Z", -300, "2025-01-12", "a1"),
    # Carla, UTC: the Sunday before the week, then Monday and a Friday with seconds.
    punch("e20", "p3", "In", "2025-01-05T10:00:00Z", 0, "2025-01-05", "a1"),
    punch("e21", "p3", "Out", "2025-01-05T11:00:00Z", 0, "2025-01-05"),
    punch("e22", "p3", "In", "2025-01-06T08:00:00Z", 0, "2025-01-06", "a1"),
    punch("e23", "p3", "Out", "2025-01-06T16:30:00Z", 0, "2025-01-06"),
    punch("e24", "p3", "In", "2025-01-10T08:00:00Z", 0, "2025-01-10", "a3"),
    punch("e25", "p3", "Out", "2025-01-10T08:44:40Z", 0, "2025-01-10"),
    # Dan, G3: hours no client receives.
    punch("e30", "p4", "In", "2025-01-06T10:00:00Z", 0, "2025-01-06", "a1"),
    punch("e31", "p4", "Out", "2025-01-06T12:00:00Z", 0, "2025-01-06"),
]

ACME = "acme@client.example"
BETA = "ops@beta.example"
BOTH = "both@example.com"
# Both forms of a client file: Acme's email in mixed case, Beta with a list, and the
# combined client as one comma-separated string, with a name that tries a header injection.
CLIENTS_YAML = """
clients:
  - email: Acme@Client.Example
    groups: g1
  - email: ops@beta.example
    name: Beta Logistics
    groups: [g2]
  - email: BOTH@example.com
    name: "Both\\r\\nBcc: attacker@evil.example"
    groups: "g1, g2"
  - email: not-an-email
    groups: g3
"""

H = 3600
EXPECTED = {
    ACME: {
        "total": 24 * H + 15 * 60,
        "agents": [
            ("Maria Santos", 20 * H, [("Inbound Calls", 16 * H), (HOSTILE_ACTIVITY, 4 * H)]),
            (HOSTILE_AGENT, 4 * H + 15 * 60, [(HOSTILE_ACTIVITY, 4 * H + 15 * 60)]),
        ],
        "days": [8 * H, 12 * H, 0, 4 * H + 15 * 60, 0, 0, 0],
        "notes": [
            (
                "auto_out",
                "Maria Santos",
                HOSTILE_GROUP,
                "Inbound Calls",
                "Tue 7 Jan 09:00 (UTC+08:00)",
            ),
            (
                "incomplete",
                "Maria Santos",
                HOSTILE_GROUP,
                "Inbound Calls",
                "Wed 8 Jan 09:00 (UTC+08:00)",
            ),
            ("open", HOSTILE_AGENT, HOSTILE_GROUP, "Inbound Calls", "Sun 12 Jan 20:00 (UTC-05:00)"),
        ],  # fmt: skip
    },
    BETA: {
        "total": 9 * H + 14 * 60 + 40,
        "agents": [
            (
                "Carla Diaz",
                9 * H + 14 * 60 + 40,
                [("Inbound Calls", 8 * H + 30 * 60), ("Email Support", 44 * 60 + 40)],
            ),
        ],  # fmt: skip
        "days": [8 * H + 30 * 60, 0, 0, 0, 44 * 60 + 40, 0, 0],
        "notes": [],
    },
}


def load_fixture(
    warehouse: Warehouse, people_payloads: list[dict] = PEOPLE, entry_payloads: list[dict] = ENTRIES
) -> None:
    """Snapshots and raw entries written as the ingestion assets write them."""
    synced = datetime(2025, 1, 1, tzinfo=UTC)
    people, rejected = parse_payloads(Person, people_payloads)
    groups, rejected_groups = parse_payloads(Group, GROUPS)
    activities, rejected_activities = parse_payloads(Activity, ACTIVITIES)
    entries, rejected_entries = parse_payloads(TimeEntry, entry_payloads)
    assert not (rejected or rejected_groups or rejected_activities or rejected_entries)
    agents = agents_frame(people, synced)
    warehouse.write("agents", agents)
    warehouse.write("client_groups", snapshot_frame(groups, schema.CLIENT_GROUPS, synced))
    warehouse.write("activities", snapshot_frame(activities, schema.ACTIVITIES, synced))
    history = update_group_history(
        warehouse.read("agent_group_history"), agents[["person_id", "group_id"]], synced
    )
    warehouse.write("agent_group_history", history)
    warehouse.write(
        "raw_time_entries",
        entries_frame(entries, synced),
        DateWindow(FIRST_DAY, LAST_DAY + timedelta(days=1)),
    )


class DigestPipeline:
    """The real assets over the fixture week in one warehouse schema, run with
    ``dg.materialize`` like the Monday job (weekly partition ``WEEK``). ``clients_yaml``,
    ``people`` and ``entries`` replace the fixture's own."""

    def __init__(
        self,
        database_url: str,
        schema: str,
        folder: Path,
        clients_yaml: str = CLIENTS_YAML,
        people: list[dict] = PEOPLE,
        entries: list[dict] = ENTRIES,
    ):
        from jibble_pipeline.alerts.resources import AlertResource
        from jibble_pipeline.assets.alerts import operations_alert
        from jibble_pipeline.assets.corrections import sent_corrections
        from jibble_pipeline.assets.digests import DIGEST_ASSETS
        from jibble_pipeline.assets.sessions import derive_daily_hours
        from jibble_pipeline.assets.snapshots import (
            activities,
            agents,
            client_groups,
        )
        from jibble_pipeline.assets.time_entries import fetch_time_entries
        from jibble_pipeline.assets.weekly import weekly_hours
        from jibble_pipeline.delivery.resources import EmailResource
        from jibble_pipeline.digest.resources import (
            ClientDirectoryResource,
            CorrectionsResource,
            ReportsResource,
        )
        from jibble_pipeline.jibble.resource import JibbleResource
        from jibble_pipeline.warehouse.io_manager import PostgresIOManager
        from jibble_pipeline.warehouse.resource import WarehouseResource

        self.database_url = database_url
        self.schema = schema
        self.folder = folder
        self.reports = folder / "reports"
        clients_file = folder / "clients.yaml"
        clients_file.write_text(clients_yaml)
        self.people, self.entries = people, entries
        self.assets = [
            agents, client_groups, activities, fetch_time_entries,
            derive_daily_hours, weekly_hours, *DIGEST_ASSETS, sent_corrections, operations_alert,
        ]  # fmt: skip
        self.derive_daily_hours = derive_daily_hours
        self.weekly_hours = weekly_hours
        self.resources: dict[str, object] = {
            "jibble": JibbleResource(),  # not used: the fixture is written to the warehouse
            "io_manager": PostgresIOManager(database_url=database_url, schema_name=schema),
            "warehouse": WarehouseResource(database_url=database_url, schema_name=schema),
            "clients": ClientDirectoryResource(source="file", clients_file=str(clients_file)),
            "email": EmailResource(),  # no backend: dry run
            "reports": ReportsResource(folder=str(self.reports)),
            "corrections": CorrectionsResource(),
            "alerts": AlertResource(),  # no recipients
        }
        self.instance = dg.DagsterInstance.ephemeral()
        self.warehouse = Warehouse(database_url, schema)
        self.result: dg.ExecuteInProcessResult | None = None  # ``running_pipeline``'s run

    def prepare(self) -> None:
        """The fixture's snapshots and entries, then sessions and the week's hours."""
        load_fixture(self.warehouse, self.people, self.entries)
        self.derive(FIRST_DAY, LAST_DAY)
        self.run([self.weekly_hours])

    def derive(self, first: date, last: date) -> None:
        """Sessions and attendance of work dates [first, last] from the raw entries, at ``NOW``."""
        daily = dg.materialize(
            self.assets,
            selection=[self.derive_daily_hours],
            instance=self.instance,
            resources=self.resources,
            tags=range_tags(first, last),
            run_config={"ops": {"derive_daily_hours": {"config": {"now": NOW.isoformat()}}}},
        )
        assert daily.success

    def run(
        self,
        selection,
        *,
        resources: dict[str, object] | None = None,
        run_config: dict | None = None,
        partition_key: str = WEEK.isoformat(),
        raise_on_error: bool = True,
    ) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            self.assets,
            selection=selection,
            instance=self.instance,
            resources={**self.resources, **(resources or {})},
            partition_key=partition_key,
            run_config=run_config or {},
            raise_on_error=raise_on_error,
        )

    def query(self, text: str, params: dict | None = None) -> list[tuple]:
        with psycopg.connect(self.database_url) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            return conn.execute(text, params).fetchall()

    def drop(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )


def running_pipeline(
    database_url: str, folder: Path, selection: list[str], **fixture: Any
) -> Iterator[DigestPipeline]:
    """A module fixture's pipeline in a schema of its own: the fixture week prepared (with
    ``DigestPipeline``'s options ``fixture``), then ``selection`` run (its result in
    ``.result``); the schema is dropped afterwards."""
    pipeline = DigestPipeline(database_url, f"test_{uuid.uuid4().hex[:10]}", folder, **fixture)
    try:
        pipeline.prepare()
        pipeline.result = pipeline.run(selection)
        yield pipeline
    finally:
        pipeline.drop()

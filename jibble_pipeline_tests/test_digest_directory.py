"""The client directory: Airtable over real HTTP to a local Airtable-compatible server (paging,
field shapes, errors, retries), clients files, and the ``client_directory`` asset replacing
stale mappings."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from jibble_pipeline.assets.digests import client_directory
from jibble_pipeline.digest.directory.clients import (
    Client,
    Contract,
    DirectoryError,
    parse_group_ids,
)
from jibble_pipeline.digest.directory.sources import (
    AirtableSource,
    ContractFields,
    load_clients_file,
)
from jibble_pipeline.digest.resources import ClientDirectoryResource
from jibble_pipeline.transport import RetryPolicy
from jibble_pipeline.warehouse.io_manager import PostgresIOManager
from jibble_pipeline.warehouse.store import Warehouse
from jibble_pipeline_tests.fake_services import FakeAirtable

API_KEY = "patSECRET0123456789.abcdefabcdef"
BASE = "appDIRECTORY01"
FAST = RetryPolicy(initial_wait_seconds=0.01, max_wait_seconds=0.02)


def airtable_rows(count: int) -> list[dict]:
    """``count`` clients whose group cells take every shape Airtable can send."""
    rows = []
    for n in range(count):
        shape = n % 3
        groups = [f"g{n}", f"x{n}"] if shape == 1 else (f"g{n}, x{n}" if shape == 2 else f"g{n}")
        rows.append({"Email": f"Client{n}@Example.COM", "Jibble Group ID": groups, "Notes": "x"})
    return rows


def source(server: FakeAirtable, **options) -> AirtableSource:
    return AirtableSource(API_KEY, BASE, "Clients", api_url=server.url, retry=FAST, **options)


def test_group_ids_in_every_shape():
    assert parse_group_ids("g1") == ["g1"]
    assert parse_group_ids(["g1", "g2"]) == ["g1", "g2"]
    assert parse_group_ids("g1, g2 ,g1,") == ["g1", "g2"]
    assert parse_group_ids(["g1, g2", "g3", None]) == ["g1", "g2", "g3"]
    assert parse_group_ids(12345) == ["12345"]
    assert parse_group_ids(None) == [] and parse_group_ids("") == []
    with pytest.raises(ValueError):
        parse_group_ids([{"id": "recX"}])


def test_airtable_is_read_over_three_pages():
    rows = airtable_rows(230)
    with FakeAirtable(API_KEY, BASE, "Clients", rows) as server:
        reader = source(server)
        load = reader.load()
    assert reader.pages == 3 and len(server.requests) == 3
    offsets = [r["query"].get("offset") for r in server.requests]
    assert offsets[0] is None and offsets[1] and offsets[2] and offsets[1] != offsets[2]
    for request in server.requests:
        assert request["query"]["pageSize"] == ["100"]
        assert request["query"]["fields[]"] == ["Email", "Jibble Group ID"]
    assert len(load.clients) == 230 and not load.skipped
    by_email = {c.email: c for c in load.clients}
    assert by_email["client0@example.com"].group_ids == ("g0",)  # one id
    assert by_email["client1@example.com"].group_ids == ("g1", "x1")  # a list
    assert by_email["client2@example.com"].group_ids == ("g2", "x2")  # a comma string
    assert by_email["client228@example.com"].group_ids == ("g228",)  # the last page


def test_emails_merge_case_insensitively_and_bad_rows_are_reported():
    rows = [
        {"Email": "Ops@Acme.example", "Jibble Group ID": "g1"},
        {"Email": "ops@acme.EXAMPLE ", "Jibble Group ID": ["g2", "g1"]},
        {"Email": "", "Jibble Group ID": "g3"},
        {"Email": "two@a.example, three@b.example", "Jibble Group ID": "g3"},
        {"Email": "nogroup@acme.example"},
    ]
    with FakeAirtable(API_KEY, BASE, "Clients", rows) as server:
        load = source(server).load()
    assert load.clients == [Client(email="ops@acme.example", group_ids=("g1", "g2"))]
    reasons = sorted(s.reason for s in load.skipped)
    assert reasons == [
        "no Jibble group id for nogroup@acme.example",
        "no email",
        "not one email address",
    ]
    assert all(s.row.startswith("rec") for s in load.skipped)


def test_rate_limits_are_waited_out():
    with FakeAirtable(API_KEY, BASE, "Clients", airtable_rows(150)) as server:
        server.rate_limit_next = 2
        reader = source(server)
        load = reader.load()
    assert len(load.clients) == 150 and reader.retries == 2 and reader.pages == 2


def test_airtable_is_paced_to_its_limit_of_five_requests_a_second():
    """The shared HTTP layer paces every Airtable session of the process to Airtable's
    documented limit per base, however fast the server answers."""
    with FakeAirtable(API_KEY, BASE, "Clients", airtable_rows(1100)) as server:
        started = time.monotonic()
        reader = source(server)
        load = reader.load()
        elapsed = time.monotonic() - started
    assert reader.pages == 11 and len(load.clients) == 1100
    assert elapsed >= (11 - 1) / 5 * 0.95


def test_errors_name_the_setting_never_the_key():
    with FakeAirtable(API_KEY, BASE, "Clients", airtable_rows(3)) as server:
        wrong_key = AirtableSource(API_KEY + "-revoked", BASE, api_url=server.url, retry=FAST)
        with pytest.raises(DirectoryError) as refused:
            wrong_key.load()
        with pytest.raises(DirectoryError) as missing:
            AirtableSource(API_KEY, "appOTHER", api_url=server.url).load()
        with pytest.raises(DirectoryError) as unknown_field:
            source(server, name_field="Client Name").load()
    assert "401" in str(refused.value) and "AIRTABLE_API_KEY" in str(refused.value)
    assert "404" in str(missing.value) and "AIRTABLE_BASE_ID" in str(missing.value)
    assert "422" in str(unknown_field.value) and "Client Name" in str(unknown_field.value)
    for error in (refused.value, missing.value, unknown_field.value):
        assert API_KEY not in str(error) and "patSECRET" not in str(error)


def test_clients_files_yaml_and_csv(tmp_path):
    yaml_file = tmp_path / "clients.yaml"
    yaml_file.write_text(
        "- email: A@X.example\n  groups: g1\n  name: Alpha\n"
        "- {email: a@x.example, groups: [g2]}\n"
        "- {email: b@x.example, group_ids: 'g3,g4'}\n"
        "- {email: c@x.example}\n"
    )
    load = load_clients_file(yaml_file)
    assert [(c.email, c.name, c.group_ids) for c in load.clients] == [
        ("a@x.example", "Alpha", ("g1", "g2")),
        ("b@x.example", None, ("g3", "g4")),
    ]
    assert [s.row for s in load.skipped] == ["clients.yaml client 4"]

    csv_file = tmp_path / "clients.csv"
    csv_file.write_text('Email,Jibble Group ID,Name\nd@x.example,"g5, g6",Delta\n,g7,\n')
    load = load_clients_file(csv_file)
    assert [(c.email, c.group_ids, c.name) for c in load.clients] == [
        ("d@x.example", ("g5", "g6"), "Delta")
    ]
    assert [s.row for s in load.skipped] == ["clients.csv line 3"]
    with pytest.raises(DirectoryError, match="does not exist"):
        load_clients_file(tmp_path / "missing.yaml")


def test_the_asset_drops_mappings_the_source_no_longer_has(
    database_url, warehouse_schema, monkeypatch
):
    monkeypatch.setenv("TEST_AIRTABLE_KEY", API_KEY)
    rows = [
        {"Email": "keep@a.example", "Jibble Group ID": "g1, g2"},
        {"Email": "gone@b.example", "Jibble Group ID": "g3"},
    ]
    with FakeAirtable(API_KEY, BASE, "Clients", rows) as server:
        resources = {
            "clients": ClientDirectoryResource(
                source="airtable",
                airtable_api_key=dg.EnvVar("TEST_AIRTABLE_KEY"),
                airtable_base_id=BASE,
                airtable_url=server.url,
            ),
            "io_manager": PostgresIOManager(
                database_url=database_url, schema_name=warehouse_schema
            ),
        }
        instance = dg.DagsterInstance.ephemeral()
        first = dg.materialize([client_directory], resources=resources, instance=instance)
        server.records[0]["fields"]["Jibble Group ID"] = ["g2"]  # g1 unmapped
        del server.records[1]  # the client left
        second = dg.materialize([client_directory], resources=resources, instance=instance)
    assert first.success and second.success
    table = Warehouse(database_url, warehouse_schema).read("client_directory")
    assert sorted(zip(table["email"], table["group_id"], strict=True)) == [("keep@a.example", "g2")]
    assert set(table["source"]) == {f"airtable:{BASE}/Clients"}
    # The key went through EnvVar: not in the run config, logs or metadata.
    for result in (first, second):
        run = instance.get_run_by_id(result.run_id)
        assert API_KEY not in str(run.run_config)
        for record in instance.all_logs(result.run_id):
            assert API_KEY not in str(record)


def test_the_sample_file_maps_groups_of_the_demo_organisation():
    from jibble_pipeline.settings.catalog import SAMPLE_CLIENTS_FILE
    from jibble_pipeline.simulator import SyntheticOrganisation
    from jibble_pipeline.simulator.demo import DEMO_AGENTS, DEMO_SEED

    load = load_clients_file(SAMPLE_CLIENTS_FILE)
    organisation = SyntheticOrganisation(seed=DEMO_SEED, agents=DEMO_AGENTS)
    groups = {g["id"] for g in organisation.groups}
    staffed = {p["groupId"] for p in organisation.people}
    assert len(load.clients) >= 5 and not load.skipped
    for client in load.clients:
        assert client.email.endswith(".example")  # undeliverable by design
        assert set(client.group_ids) <= groups & staffed, client.email
    assert any(len(c.group_ids) > 1 for c in load.clients)
    # Every staffed group has a client: a fresh demo warns of no group without one.
    assert staffed <= {g for c in load.clients for g in c.group_ids}


def test_contracts_in_a_clients_file_per_client_or_as_seats_times_hours(tmp_path):
    yaml_file = tmp_path / "clients.yaml"
    yaml_file.write_text(
        "- {email: a@x.example, groups: g1, contracted_hours: 120}\n"
        "- {email: b@x.example, groups: g2, seats: 3, hours_per_seat: 37.5}\n"
        "- {email: c@x.example, groups: g3}\n"
        "- {email: d@x.example, groups: g4, contracted_hours: lots}\n"
        "- {email: e@x.example, groups: g5, seats: 2}\n"
        "- {email: f@x.example, groups: g6, contracted_hours: 10, seats: 1, hours_per_seat: 10}\n"
        "- {email: g@x.example, groups: g7, seats: 2.5, hours_per_seat: 8}\n"
    )
    load = load_clients_file(yaml_file)
    contracts = {c.email: c.contract for c in load.clients}
    # A client whose contract cannot be read keeps its digest, without a delivery line.
    assert set(contracts) == {f"{x}@x.example" for x in "abcdefg"}
    assert contracts["a@x.example"] == Contract(hours=120)
    assert contracts["a@x.example"].label == "120:00 a week"
    assert contracts["b@x.example"] == Contract(hours=112.5, seats=3, hours_per_seat=37.5)
    assert contracts["b@x.example"].label == "3 seats × 37:30"
    assert contracts["b@x.example"].seconds == 405_000
    assert all(contracts[f"{x}@x.example"] is None for x in "cdefg")
    reasons = {s.row: s.reason for s in load.skipped}
    assert reasons == {
        "clients.yaml client 4": "contract left out for d@x.example: contracted hours must be a "
        "positive number, got 'lots'",
        "clients.yaml client 5": "contract left out for e@x.example: seats need hours per seat, "
        "and hours per seat need seats",
        "clients.yaml client 6": "contract left out for f@x.example: give contracted hours or "
        "seats × hours per seat, not both",
        "clients.yaml client 7": "contract left out for g@x.example: seats must be a whole "
        "number, got 2.5",
    }

    csv_file = tmp_path / "clients.csv"
    csv_file.write_text(
        "email,groups,name,contracted_hours,seats,hours_per_seat\n"
        "h@x.example,g8,Hotel,,4,40\nh@x.example,g9,,80,,\n"
    )
    load = load_clients_file(csv_file)
    (hotel,) = load.clients
    # Rows of one email merge; the first contract stands and the other is reported.
    assert hotel.group_ids == ("g8", "g9") and hotel.contract == Contract(
        hours=160, seats=4, hours_per_seat=40
    )
    assert [s.reason for s in load.skipped] == [
        "contract left out for h@x.example: an earlier row gives 4 seats × 40:00"
    ]


def test_airtable_contract_fields_are_asked_for_only_when_named():
    rows = [
        {"Email": "a@x.example", "Jibble Group ID": "g1", "Contract": 60},
        {"Email": "b@x.example", "Jibble Group ID": "g2", "Seats": 2, "Seat Hours": [40]},
    ]
    fields = ContractFields(hours="Contract", seats="Seats", hours_per_seat="Seat Hours")
    with FakeAirtable(API_KEY, BASE, "Clients", rows) as server:
        plain = source(server).load()
        with_contracts = source(server, contract_fields=fields).load()
        asked = [r["query"]["fields[]"] for r in server.requests]
    assert [c.contract for c in plain.clients] == [None, None]
    assert [c.contract for c in with_contracts.clients] == [
        Contract(hours=60),
        Contract(hours=80, seats=2, hours_per_seat=40),
    ]
    assert asked == [
        ["Email", "Jibble Group ID"],
        ["Email", "Jibble Group ID", "Contract", "Seats", "Seat Hours"],
    ]

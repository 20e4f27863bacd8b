"""The Jibble client against the local simulator over real HTTP: paging, tokens, faults."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, date, datetime

import pytest

from jibble_pipeline.jibble.client import (
    JibbleAuthError,
    JibbleClient,
    JibbleUnavailableError,
    RetryPolicy,
)
from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation

FIRST, LAST = date(2025, 1, 6), date(2025, 1, 12)
FAST_RETRIES = RetryPolicy(max_attempts=8, initial_wait_seconds=0.01, max_wait_seconds=0.05)


def organisation() -> SyntheticOrganisation:
    return SyntheticOrganisation(
        seed=5, agents=12, start=date(2025, 1, 1), end=date(2025, 1, 31),
        now=datetime(2025, 2, 10, tzinfo=UTC),
    )  # fmt: skip


@pytest.fixture
def simulator():
    with JibbleSimulator(organisation(), page_cap=7) as running:
        yield running


def client_for(simulator: JibbleSimulator, **options) -> JibbleClient:
    options.setdefault("retry", FAST_RETRIES)
    options.setdefault("page_size", 50)
    return JibbleClient(
        simulator.client_id,
        simulator.client_secret,
        identity_url=simulator.url,
        workspace_url=simulator.url,
        time_tracking_url=simulator.url,
        **options,
    )


def expected_ids(simulator: JibbleSimulator, first: date = FIRST, last: date = LAST) -> list[str]:
    return sorted(e["id"] for e in simulator.organisation.time_entries_for_dates(first, last))


def test_pages_past_a_silent_cap_below_top(simulator):
    """The server caps pages at 7 while the client asks for 50 and sends no nextLink."""
    with client_for(simulator) as client:
        entries = client.time_entries(FIRST, LAST)
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == expected_ids(simulator)
    assert len(ids) > 100
    assert client.stats.pages == -(-len(ids) // 7)
    assert client.stats.rows == len(ids)


def test_payloads_arrive_whole(simulator):
    with client_for(simulator) as client:
        entries = {e["id"]: e for e in client.time_entries(FIRST, FIRST)}
    served = simulator.organisation.time_entries_for_dates(FIRST, FIRST)
    assert entries == {e["id"]: e for e in served}


def test_workspace_collections_are_complete(simulator):
    with client_for(simulator) as client:
        people, groups = client.people(), client.groups()
        activities, organizations = client.activities(), client.organizations()
    assert sorted(p["id"] for p in people) == sorted(p["id"] for p in simulator.organisation.people)
    assert len(groups) == len(simulator.organisation.groups)
    assert len(activities) == 12
    assert organizations[0]["id"] == simulator.organisation.organization_id


def test_changed_since_asks_for_updated_entries(simulator):
    org = simulator.organisation
    some = org.time_entries_for_dates(FIRST, FIRST)[3]
    org.set_now(datetime(2025, 2, 11, 9, tzinfo=UTC))
    org.edit_entry(some["id"], note="fixed by the team lead")
    with client_for(simulator) as client:
        changed = client.time_entries_changed_since(datetime(2025, 2, 11, tzinfo=UTC))
    assert [e["id"] for e in changed] == [some["id"]]
    assert changed[0]["note"] == "fixed by the team lead"


def test_one_token_serves_the_session_and_a_401_refreshes_it_once(simulator):
    with client_for(simulator) as client:
        client.groups()
        simulator.expire_tokens()
        client.people()
        client.activities()
    assert client.stats.token_refreshes == 2
    assert simulator.stats.unauthorized == 1
    assert simulator.stats.token_requests == 2


def test_a_token_is_refreshed_before_it_expires():
    with JibbleSimulator(organisation(), page_cap=50, token_lifetime_seconds=1) as simulator:
        with client_for(simulator) as client:
            client.groups()
            time.sleep(1.1)
            client.groups()
        assert client.stats.token_refreshes == 2
        assert simulator.stats.unauthorized == 0


@pytest.mark.parametrize("header", ["Retry-After", "X-RateLimit-Reset"])
def test_rate_limits_are_waited_out(header):
    faults = FaultPlan(every_nth_429=3, retry_after_seconds=1, rate_limit_header=header)
    with JibbleSimulator(organisation(), page_cap=40, faults=faults) as simulator:
        started = time.monotonic()
        with client_for(simulator) as client:
            entries = client.time_entries(FIRST, FIRST)
        elapsed = time.monotonic() - started
        assert sorted(e["id"] for e in entries) == expected_ids(simulator, FIRST, FIRST)
        assert simulator.stats.rate_limited >= 1
        assert client.stats.rate_limited == simulator.stats.rate_limited
        if header == "Retry-After":  # waited what the server asked, not its own short backoff
            assert elapsed >= 0.9 * simulator.stats.rate_limited


def test_server_errors_drops_and_stalls_are_retried():
    faults = FaultPlan(
        error_rate_5xx=0.25, drop_rate=0.1, stall_rate=0.1, stall_seconds=1.0, seed=4
    )
    with JibbleSimulator(organisation(), page_cap=9, faults=faults) as simulator:
        with client_for(simulator, timeout_seconds=0.5) as client:
            entries = client.time_entries(FIRST, LAST)
        stats = simulator.stats
        assert sorted(e["id"] for e in entries) == expected_ids(simulator)
        assert stats.server_errors > 0 and stats.dropped > 0 and stats.stalled > 0
        assert client.stats.retries >= stats.server_errors + stats.dropped


def test_an_exhausted_retry_budget_fails_clearly():
    faults = FaultPlan(error_rate_5xx=1.0)
    with JibbleSimulator(organisation(), faults=faults) as simulator:
        policy = RetryPolicy(max_attempts=4, initial_wait_seconds=0.01, max_wait_seconds=0.02)
        with (
            client_for(simulator, retry=policy) as client,
            pytest.raises(
                JibbleUnavailableError, match=r"Gave up on GET /v1/Groups: 4 attempts failed"
            ),
        ):
            client.groups()
        assert simulator.stats.server_errors == 4

        budget = RetryPolicy(max_attempts=50, retry_budget=5, initial_wait_seconds=0.01)
        with (
            client_for(simulator, retry=budget) as client,
            pytest.raises(JibbleUnavailableError, match="retry budget of 5 retries is spent"),
        ):
            client.people()
        assert client.stats.retries == 5


def test_wrong_credentials_name_the_settings_and_never_the_secret(simulator, caplog):
    caplog.set_level(logging.DEBUG)
    client = JibbleClient(
        simulator.client_id, "wrong-secret-4711", identity_url=simulator.url,
        workspace_url=simulator.url, time_tracking_url=simulator.url, retry=FAST_RETRIES,
    )  # fmt: skip
    with client, pytest.raises(JibbleAuthError) as raised:
        client.people()
    assert "JIBBLE_CLIENT_ID" in str(raised.value)
    assert "wrong-secret-4711" not in str(raised.value)
    assert "wrong-secret-4711" not in caplog.text


def test_secrets_and_tokens_stay_out_of_logs(caplog):
    caplog.set_level(logging.DEBUG)
    faults = FaultPlan(error_rate_5xx=0.3, every_nth_429=4, retry_after_seconds=0, seed=1)
    with JibbleSimulator(organisation(), page_cap=20, faults=faults) as simulator:
        with client_for(simulator, log=logging.getLogger("jibble-test")) as client:
            client.time_entries(FIRST, FIRST)
            token = client._valid_token()
        assert client.stats.retries > 0  # something was logged
        assert simulator.client_secret not in caplog.text
        assert token not in caplog.text


def test_an_unreachable_api_fails_with_the_cause():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once the socket is closed
    url = f"http://127.0.0.1:{port}"
    policy = RetryPolicy(max_attempts=3, initial_wait_seconds=0.01, max_wait_seconds=0.02)
    client = JibbleClient(
        "id", "secret-value", identity_url=url, workspace_url=url, time_tracking_url=url,
        retry=policy,
    )  # fmt: skip
    with client, pytest.raises(JibbleUnavailableError, match="connection failed") as raised:
        client.people()
    assert "secret-value" not in str(raised.value)

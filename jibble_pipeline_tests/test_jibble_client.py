"""The Jibble client against the local simulator over real HTTP: paging, tokens, faults."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from jibble_pipeline.jibble.client import JibbleClient
from jibble_pipeline.jibble.errors import JibbleAuthError, JibbleUnavailableError
from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation
from jibble_pipeline.transport import Pacing, RetryPolicy

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


def client_for(simulator: JibbleSimulator | str, **options) -> JibbleClient:
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


def pages_needed(entries: int, cap: int) -> int:
    """A first page of ``cap`` rows, then windows of ``cap`` rows that re-read one row each."""
    return 1 if entries <= cap else 1 + -(-(entries - cap) // (cap - 1))


def test_pages_past_a_silent_cap_below_top(simulator):
    """The server caps pages at 7 while the client asks for 50 and sends no nextLink."""
    with client_for(simulator) as client:
        entries = all_entries(client, FIRST, LAST)
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == expected_ids(simulator)
    assert len(ids) > 100
    org = simulator.organisation
    per_date = [len(org.time_entries_for_dates(d, d)) for d in client_dates(FIRST, LAST)]
    assert client.stats.pages == sum(pages_needed(n, 7) for n in per_date)
    assert client.stats.rows == len(ids) + client.stats.pages - len(per_date)  # the re-reads


def client_dates(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


def all_entries(client: JibbleClient, first: date, last: date) -> list[dict]:
    """Every entry of the work dates first..last, any status, as the raw-entry load reads them."""
    return [
        row for _, rows in client.time_entries_by_date(client_dates(first, last)) for row in rows
    ]


def test_dates_arrive_whole_and_in_order_while_many_pages_are_in_flight():
    """With 0.1 s per request, 8 concurrent requests read a week in about an eighth of the
    time one at a time would take, and each date comes whole, in the order asked."""
    faults = FaultPlan(latency_seconds=0.1)
    with JibbleSimulator(organisation(), page_cap=7, faults=faults) as simulator:
        days = client_dates(FIRST, LAST)
        with client_for(simulator, pacing=Pacing(concurrency=8)) as client:
            started = time.monotonic()
            read = list(client.time_entries_by_date(reversed(days)))
            elapsed = time.monotonic() - started
            requests = client.stats.requests
        assert [day for day, _ in read] == list(reversed(days))
        for day, rows in read:
            assert sorted(r["id"] for r in rows) == expected_ids(simulator, day, day)
        assert requests > 40
        assert elapsed < requests * 0.1 / 3  # one at a time: requests x 0.1 s


def test_payloads_arrive_whole(simulator):
    with client_for(simulator) as client:
        entries = {e["id"]: e for e in all_entries(client, FIRST, FIRST)}
    served = simulator.organisation.time_entries_for_dates(FIRST, FIRST)
    assert entries == {e["id"]: e for e in served}


def test_workspace_collections_are_complete(simulator):
    with client_for(simulator) as client:
        people, groups = client.people(), client.groups()
        activities = client.activities()
    assert sorted(p["id"] for p in people) == sorted(p["id"] for p in simulator.organisation.people)
    assert len(groups) == len(simulator.organisation.groups)
    assert len(activities) == 12


def test_changed_since_asks_for_updated_entries(simulator):
    org = simulator.organisation
    some = org.time_entries_for_dates(FIRST, FIRST)[3]
    org.set_now(datetime(2025, 2, 11, 9, tzinfo=UTC))
    org.edit_entry(some["id"], note="fixed by the team lead")
    with client_for(simulator) as client:
        changed = client.time_entries_changed_since(datetime(2025, 2, 11, tzinfo=UTC))
    assert [e["id"] for e in changed] == [some["id"]]
    assert changed[0]["note"] == "fixed by the team lead"


def test_newer_than_asks_each_date_for_what_changed_since_its_own_newest(simulator):
    org = simulator.organisation
    first, second = FIRST, FIRST + timedelta(days=1)
    held = {day: org.time_entries_for_dates(day, day) for day in (first, second)}
    newest = {day: max(datetime.fromisoformat(e["updatedAt"]) for e in held[day]) for day in held}
    edited = held[first][2]
    org.set_now(datetime(2025, 2, 11, 9, tzinfo=UTC))
    org.edit_entry(edited["id"], note="fixed by the team lead")
    simulator.reset_stats()
    with client_for(simulator) as client:
        changed = client.time_entries_newer_than({**newest, second: None})
    by_date: dict[str, list[dict]] = {}
    for entry in changed:
        by_date.setdefault(entry["belongsToDate"], []).append(entry)
    # The first date: only the edit is newer (the filter's instant is whole seconds, so
    # entries of the newest one's second come too); the second, held nothing of: every entry.
    newer = [e for e in by_date[first.isoformat()]
             if datetime.fromisoformat(e["updatedAt"]) > newest[first]]  # fmt: skip
    assert [e["id"] for e in newer] == [edited["id"]]
    assert sorted(e["id"] for e in by_date[second.isoformat()]) == sorted(
        e["id"] for e in held[second]
    )
    # One query for both dates, paged past the cap of 7 like any other.
    assert simulator.stats.pages == pages_needed(len(changed), 7)


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
            entries = all_entries(client, FIRST, FIRST)
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
            entries = all_entries(client, FIRST, LAST)
        stats = simulator.stats
        assert sorted(e["id"] for e in entries) == expected_ids(simulator)
        assert stats.server_errors > 0 and stats.dropped > 0 and stats.stalled > 0
        assert client.stats.retries >= stats.server_errors + stats.dropped


@pytest.mark.slow
def test_an_unavailable_api_fails_clearly_per_request_and_per_session():
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

        # Many requests at once, each with attempts to spare: the session stops when the
        # API has failed 10 times in a row, wherever those faults came from.
        down = RetryPolicy(max_attempts=50, max_consecutive_faults=10, initial_wait_seconds=0.01)
        simulator.reset_stats()
        with (
            client_for(simulator, retry=down, pacing=Pacing(concurrency=4)) as client,
            pytest.raises(JibbleUnavailableError, match="10 requests in a row failed"),
        ):
            all_entries(client, FIRST, LAST)
        assert 10 <= simulator.stats.server_errors < 20


def test_a_steady_fault_rate_never_adds_up_to_a_failure():
    """30 % of requests fail, over many more requests than any fixed budget would allow.

    Attempts per request are raised from 8: which request draws which fault depends on the
    threads' order, and 0.3**8 per request would, rarely, fail one request of the hundreds."""
    faults = FaultPlan(error_rate_5xx=0.3, seed=8)
    patient = RetryPolicy(max_attempts=20, initial_wait_seconds=0.01, max_wait_seconds=0.05)
    with JibbleSimulator(organisation(), page_cap=3, faults=faults) as simulator:
        with client_for(simulator, retry=patient, pacing=Pacing(concurrency=4)) as client:
            entries = all_entries(client, FIRST, LAST)
        assert sorted(e["id"] for e in entries) == expected_ids(simulator)
        assert simulator.stats.server_errors > 50
        assert client.stats.faults == simulator.stats.server_errors


@pytest.mark.slow
def test_a_429_storm_is_flow_control_not_a_fault():
    """A server limiting to 10 requests/s, an unpaced client with 8 requests in flight:
    many 429s, none counted as a fault, every entry read, the limit kept on average."""
    faults = FaultPlan(rate_limit_per_second=10, rate_limit_burst=2)
    strict = RetryPolicy(max_attempts=1, max_consecutive_faults=1, initial_wait_seconds=0.01)
    with JibbleSimulator(organisation(), page_cap=20, faults=faults) as simulator:
        started = time.monotonic()
        with client_for(simulator, retry=strict, pacing=Pacing(concurrency=8)) as client:
            entries = all_entries(client, FIRST, LAST)
        elapsed = time.monotonic() - started
        assert sorted(e["id"] for e in entries) == expected_ids(simulator)
        assert client.stats.rate_limited == simulator.stats.rate_limited > 0
        assert client.stats.faults == 0
        assert simulator.stats.pages / elapsed <= 10 * 1.2


def test_pacing_at_a_known_limit_meets_no_429():
    faults = FaultPlan(rate_limit_per_second=10, rate_limit_burst=2)
    pacing = Pacing(max_requests_per_second=9, concurrency=8)
    with JibbleSimulator(organisation(), page_cap=40, faults=faults) as simulator:
        started = time.monotonic()
        with client_for(simulator, pacing=pacing) as client:
            all_entries(client, FIRST, LAST)
        elapsed = time.monotonic() - started
        assert simulator.stats.rate_limited == 0
        assert simulator.stats.requests / elapsed <= 9 * 1.1
        assert simulator.stats.requests / elapsed >= 9 * 0.7


def test_a_request_that_never_gets_through_gives_up_after_its_patience():
    faults = FaultPlan(every_nth_429=1, retry_after_seconds=0.2)
    with JibbleSimulator(organisation(), faults=faults) as simulator:
        patience = RetryPolicy(patience_seconds=1.0)
        started = time.monotonic()
        with (
            client_for(simulator, retry=patience) as client,
            pytest.raises(JibbleUnavailableError, match="did not get through in 1 s"),
        ):
            client.groups()
        assert time.monotonic() - started < 3


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
            all_entries(client, FIRST, FIRST)
            token = client.tokens.valid()
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

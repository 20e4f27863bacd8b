"""The Jibble simulator's HTTP server, spoken to with plain httpx (not the project's client)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from jibble_pipeline.simulator import FaultPlan, JibbleSimulator, SyntheticOrganisation

pytestmark = pytest.mark.slow  # left out of ./scripts/test --fast (setup.cfg)

DAY = date(2025, 1, 7)
NOW = datetime(2025, 2, 1, tzinfo=UTC)


def organisation(seed: int = 5) -> SyntheticOrganisation:
    return SyntheticOrganisation(
        seed=seed, agents=6, start=date(2025, 1, 1), end=date(2025, 1, 14), now=NOW
    )


@pytest.fixture
def simulator() -> Iterator[JibbleSimulator]:
    with JibbleSimulator(organisation(), page_cap=5) as running:
        yield running


@pytest.fixture
def http(simulator: JibbleSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator.url, timeout=5) as client:
        client.headers["Authorization"] = f"Bearer {issue_token(client, simulator)}"
        yield client


def issue_token(client: httpx.Client, simulator: JibbleSimulator) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": simulator.client_id,
        "client_secret": simulator.client_secret,
    }
    response = client.post("/connect/token", data=form)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def read_all(http: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a collection: ``$skip`` advanced by the rows received until an empty page."""
    rows: list[dict[str, Any]] = []
    while True:
        response = http.get(path, params={**params, "$skip": len(rows)})
        assert response.status_code == 200, response.text
        page = response.json()["value"]
        if not page:
            return rows
        rows.extend(page)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def entries(simulator: JibbleSimulator, first: date = DAY, last: date = DAY) -> list[dict]:
    return simulator.organisation.time_entries_for_dates(first, last)


def stop_while_waiting(
    simulator: JibbleSimulator, request: Callable[[], Any], arrived: Callable[[], bool]
) -> None:
    """Sends ``request`` from another thread and stops the simulator once ``arrived()``: the
    stop is quick and the request ends without an answer."""
    errors: list[BaseException] = []

    def send() -> None:
        try:
            request()
        except httpx.HTTPError as error:
            errors.append(error)

    waiting = threading.Thread(target=send)
    waiting.start()
    while not arrived():
        time.sleep(0.01)
    started = time.monotonic()
    simulator.stop()
    assert time.monotonic() - started < 2
    waiting.join(5)
    assert isinstance(errors[0], httpx.RemoteProtocolError)  # closed without an answer


# ---------------------------------------------------------------------------------- tokens


def test_a_token_is_issued_for_the_right_credentials(simulator):
    form = {
        "grant_type": "client_credentials",
        "client_id": simulator.client_id,
        "client_secret": simulator.client_secret,
        "scope": "api1",
    }
    response = httpx.post(f"{simulator.url}/connect/token", data=form)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["organizationId"] == simulator.organisation.organization_id
    assert len(body["access_token"]) >= 32
    assert simulator.stats.token_requests == 1


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"client_secret": "wrong-secret-4711"}, "invalid_client"),
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"client_secret": None}, "invalid_client"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
    ],
)
def test_bad_token_requests_are_refused_without_echoing_the_secret(simulator, changes, error):
    form = {
        "grant_type": "client_credentials",
        "client_id": simulator.client_id,
        "client_secret": simulator.client_secret,
        **changes,
    }
    form = {name: value for name, value in form.items() if value is not None}
    response = httpx.post(f"{simulator.url}/connect/token", data=form)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert "wrong-secret-4711" not in response.text
    assert simulator.client_secret not in response.text


def test_api_calls_need_a_valid_unexpired_token(simulator):
    with httpx.Client(base_url=simulator.url, timeout=5) as http:
        assert http.get("/v1/People").status_code == 401
        refused = http.get("/v1/People", headers={"Authorization": "Bearer not-a-token"})
        assert refused.status_code == 401
        assert refused.json() == {"error": "invalid_token"}

        token = issue_token(http, simulator)
        headers = {"Authorization": f"Bearer {token}"}
        assert http.get("/v1/People", headers=headers).status_code == 200
        simulator.expire_tokens()
        assert http.get("/v1/People", headers=headers).status_code == 401

        simulator.faults = FaultPlan(token_lifetime_seconds=0.3)
        short = issue_token(http, simulator)
        assert http.get("/v1/Groups", headers={"Authorization": f"Bearer {short}"}).is_success
        time.sleep(0.4)
        assert http.get("/v1/Groups", headers={"Authorization": f"Bearer {short}"}).is_error
    assert simulator.stats.unauthorized == 4
    assert simulator.stats.token_requests == 2


# ---------------------------------------------------------------------------------- paging


def test_pages_are_capped_below_top_and_carry_no_next_link(simulator, http):
    big = http.get("/v1/TimeEntries", params={"$top": 50}).json()
    assert len(big["value"]) == 5
    assert "@odata.nextLink" not in big
    assert big["@odata.context"] == f"{simulator.url}/v1/$metadata#TimeEntries"
    assert len(http.get("/v1/TimeEntries", params={"$top": 3}).json()["value"]) == 3
    assert len(http.get("/v1/TimeEntries").json()["value"]) == 5

    all_rows = read_all(http, "/v1/TimeEntries", **{"$orderby": "createdAt,id", "$top": 50})
    expected = entries(simulator, date(2025, 1, 1), date(2025, 1, 14))
    assert sorted(r["id"] for r in all_rows) == sorted(e["id"] for e in expected)
    assert len({r["id"] for r in all_rows}) == len(all_rows)
    assert simulator.stats.pages == 3 + -(-len(all_rows) // 5) + 1


def test_skip_and_count(simulator, http):
    query = {"$filter": f"belongsToDate eq {DAY}", "$orderby": "id", "$count": "true"}
    first = http.get("/v1/TimeEntries", params=query).json()
    total = len(entries(simulator))
    assert first["@odata.count"] == total
    second = http.get("/v1/TimeEntries", params={**query, "$skip": 5}).json()
    ids = sorted(e["id"] for e in entries(simulator))
    assert [r["id"] for r in first["value"] + second["value"]] == ids[:10]
    assert http.get("/v1/TimeEntries", params={**query, "$skip": total}).json()["value"] == []
    assert "@odata.count" not in http.get("/v1/TimeEntries", params={"$top": 1}).json()


def test_orderby_and_select(simulator, http):
    params = {"$filter": f"belongsToDate eq {DAY}", "$orderby": "time desc,id", "$top": 50}
    rows = read_all(http, "/v1/TimeEntries", **params, **{"$select": "id,time,type"})
    assert {tuple(sorted(row)) for row in rows} == {("id", "time", "type")}
    assert [(r["time"], r["id"]) for r in rows] == sorted(
        ((e["time"], e["id"]) for e in entries(simulator)),
        key=lambda pair: (-instant(pair[0]).timestamp(), pair[1]),
    )


# --------------------------------------------------------------------------------- filters


def ids_of(rows: list[dict]) -> list[str]:
    return sorted(row["id"] for row in rows)


def test_work_date_ranges(simulator, http):
    rows = read_all(
        http,
        "/v1/TimeEntries",
        **{"$filter": "belongsToDate ge 2025-01-06 and belongsToDate le 2025-01-08"},
    )
    assert ids_of(rows) == ids_of(entries(simulator, date(2025, 1, 6), date(2025, 1, 8)))
    assert {row["belongsToDate"] for row in rows} == {"2025-01-06", "2025-01-07", "2025-01-08"}


def test_instant_person_and_update_filters(simulator, http):
    everything = entries(simulator, date(2025, 1, 1), date(2025, 1, 14))
    since = datetime(2025, 1, 9, tzinfo=UTC)
    rows = read_all(http, "/v1/TimeEntries", **{"$filter": "time ge 2025-01-09T00:00:00Z"})
    assert ids_of(rows) == ids_of([e for e in everything if instant(e["time"]) >= since])

    person = simulator.organisation.people[2]["id"]
    rows = read_all(http, "/v1/TimeEntries", **{"$filter": f"personId eq {person}"})
    assert rows and ids_of(rows) == ids_of([e for e in everything if e["personId"] == person])

    simulator.organisation.set_now(datetime(2025, 2, 2, 9, tzinfo=UTC))
    edited = simulator.organisation.edit_entry(everything[4]["id"], note="fixed")
    changed = read_all(http, "/v1/TimeEntries", **{"$filter": "updatedAt ge 2025-02-02T08:00:00Z"})
    assert changed == [edited]


def test_and_or_and_parentheses(simulator, http):
    first, second = (p["id"] for p in simulator.organisation.people[:2])
    condition = (
        f"(personId eq {first} or personId eq {second}) and belongsToDate eq {DAY} and type eq In"
    )
    rows = read_all(http, "/v1/TimeEntries", **{"$filter": condition})
    expected = [
        e for e in entries(simulator) if e["personId"] in (first, second) and e["type"] == "In"
    ]
    assert rows and ids_of(rows) == ids_of(expected)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"$filter": "bogus eq 1"}, "unknown field 'bogus'"),
        ({"$filter": "belongsToDate ge yesterday"}, "not a valid date"),
        ({"$filter": "(type eq In"}, "')'"),
        ({"$top": "-1"}, "$top must be a non-negative integer"),
        ({"$orderby": "time sideways"}, "$orderby"),
    ],
)
def test_bad_query_options_are_a_400_that_says_why(http, params, message):
    response = http.get("/v1/TimeEntries", params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_unknown_paths_are_404(http):
    response = http.get("/v1/Nothing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")


def test_workspace_collections(simulator, http):
    org = simulator.organisation
    assert ids_of(read_all(http, "/v1/People")) == ids_of(org.people)
    assert ids_of(read_all(http, "/v1/Groups")) == ids_of(org.groups)
    assert len(read_all(http, "/v1/Activities")) == len(org.activities)
    organizations = http.get("/v1/Organizations").json()["value"]
    assert [o["id"] for o in organizations] == [org.organization_id]


def test_the_same_seed_serves_the_same_data():
    pages = []
    for _ in range(2):
        with (
            JibbleSimulator(organisation(seed=9), page_cap=50) as simulator,
            httpx.Client(base_url=simulator.url, timeout=5) as http,
        ):
            http.headers["Authorization"] = f"Bearer {issue_token(http, simulator)}"
            pages.append(read_all(http, "/v1/TimeEntries", **{"$orderby": "id"}))
            pages.append(read_all(http, "/v1/People", **{"$orderby": "id"}))
    assert pages[0] == pages[2] and pages[1] == pages[3]
    assert len(pages[0]) > 100


# ---------------------------------------------------------------------------------- faults


@pytest.mark.parametrize("header", ["Retry-After", "X-RateLimit-Reset"])
def test_every_nth_request_is_rate_limited(simulator, http, header):
    simulator.faults = FaultPlan(every_nth_429=2, retry_after_seconds=3, rate_limit_header=header)
    statuses = [http.get("/v1/Groups") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 429, 200, 429]
    limited = statuses[1]
    if header == "Retry-After":
        assert limited.headers["Retry-After"] == "3"
    else:
        assert abs(float(limited.headers["X-RateLimit-Reset"]) - (time.time() + 3)) < 1
    assert limited.json()["error"]["code"] == "TooManyRequests"
    assert simulator.stats.rate_limited == 2


def test_a_5xx_rate_of_one_fails_every_api_call_but_not_the_token(simulator):
    simulator.faults = FaultPlan(error_rate_5xx=1.0)
    with httpx.Client(base_url=simulator.url, timeout=5) as http:
        http.headers["Authorization"] = f"Bearer {issue_token(http, simulator)}"
        statuses = [http.get("/v1/People").status_code for _ in range(6)]
        assert set(statuses) <= {500, 502, 503, 504}
        assert simulator.stats.server_errors == 6
        simulator.faults = FaultPlan()
        assert http.get("/v1/People").status_code == 200


def test_dropped_connections_raise_a_transport_error(simulator, http):
    simulator.faults = FaultPlan(drop_rate=1.0)
    with pytest.raises(httpx.TransportError):
        http.get("/v1/Groups")
    assert simulator.stats.dropped == 1
    simulator.faults = FaultPlan()
    assert http.get("/v1/Groups").status_code == 200


def test_stalls_make_a_short_timeout_expire(simulator, http):
    simulator.faults = FaultPlan(stall_rate=1.0, stall_seconds=0.5)
    with pytest.raises(httpx.ReadTimeout):
        http.get("/v1/Groups", timeout=0.1)
    started = time.monotonic()
    assert http.get("/v1/Groups", timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.45
    assert simulator.stats.stalled == 2


def test_random_faults_replay_for_the_same_seed(simulator, http):
    runs = []
    for _ in range(2):
        simulator.faults = FaultPlan(error_rate_5xx=0.4, seed=21)
        runs.append([http.get("/v1/Groups").status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert 200 in runs[0] and set(runs[0]) - {200}


def test_stopping_ends_stalled_answers_and_connection_threads():
    before = threading.active_count()
    faults = FaultPlan(stall_rate=1.0, stall_seconds=30)
    with JibbleSimulator(organisation(), faults=faults) as simulator:
        url = simulator.url
        idle = httpx.Client(base_url=url, timeout=5)
        issue_token(idle, simulator)  # leaves a kept-alive connection open
        stop_while_waiting(
            simulator,
            lambda: httpx.get(f"{url}/v1/Groups", timeout=60),
            arrived=lambda: simulator.stats.stalled > 0,
        )
    idle.close()
    assert threading.active_count() == before
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v1/Groups")


# ------------------------------------------------------------------ latency and rate limit


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def get_at_once(
    simulator: JibbleSimulator, http: httpx.Client, count: int
) -> list[tuple[int, float]]:
    """``count`` GETs sent at once, each from its own thread on its own connection: their
    (status, seconds)."""
    headers = {"Authorization": http.headers["Authorization"]}

    def one(_: int) -> tuple[int, float]:
        url = f"{simulator.url}/v1/Groups"
        response, seconds = timed(lambda: httpx.get(url, headers=headers, timeout=10))
        return response.status_code, seconds

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_latency_delays_every_answer(simulator, http):
    simulator.faults = FaultPlan(latency_seconds=0.2, latency_jitter_seconds=0.1, every_nth_429=2)
    calls = {
        200: lambda: http.get("/v1/Groups"),
        429: lambda: http.get("/v1/Groups"),
        404: lambda: http.get("/v1/Nothing"),
    }
    for status, call in calls.items():
        response, seconds = timed(call)
        assert response.status_code == status
        assert 0.2 <= seconds < 0.3 + 0.2
    _, seconds = timed(lambda: issue_token(http, simulator))
    assert 0.2 <= seconds < 0.3 + 0.2


def test_concurrent_requests_wait_their_latency_side_by_side(simulator, http):
    simulator.faults = FaultPlan(latency_seconds=0.3)
    results, seconds = timed(lambda: get_at_once(simulator, http, 8))
    assert [status for status, _ in results] == [200] * 8
    assert min(each for _, each in results) >= 0.3
    assert seconds < 1.2  # one after the other, they would take 2.4 s


def test_stopping_cuts_the_latency_short():
    with JibbleSimulator(organisation(), faults=FaultPlan(latency_seconds=30)) as simulator:
        token_url = f"{simulator.url}/connect/token"
        stop_while_waiting(
            simulator,
            lambda: httpx.post(token_url, data={}, timeout=60),
            arrived=lambda: simulator.stats.requests > 0,
        )


def test_a_burst_beyond_the_bucket_is_limited_until_it_refills(simulator, http):
    simulator.faults = FaultPlan(rate_limit_per_second=5, rate_limit_burst=5)
    simulator.reset_stats()
    responses = [http.get("/v1/Groups") for _ in range(10)]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 5
    assert responses[5].json()["error"]["code"] == "TooManyRequests"
    assert {r.headers["Retry-After"] for r in responses[5:]} == {"1"}  # 0.2 s at most, rounded up
    stats = simulator.stats
    assert (stats.requests, stats.pages, stats.rate_limited) == (10, 5, 5)

    time.sleep(int(responses[-1].headers["Retry-After"]))  # the bucket is full again
    assert [http.get("/v1/Groups").status_code for _ in range(6)] == [200] * 5 + [429]


def test_requests_paced_under_the_rate_are_never_limited(simulator, http):
    simulator.faults = FaultPlan(rate_limit_per_second=10, rate_limit_burst=1)
    statuses = []
    for _ in range(8):
        statuses.append(http.get("/v1/Groups").status_code)
        time.sleep(0.125)  # 8 a second: 1.25 tokens come back between two requests
    assert statuses == [200] * 8
    assert [http.get("/v1/Groups").status_code for _ in range(2)] == [200, 429]


def test_concurrent_requests_share_one_bucket(simulator, http):
    simulator.faults = FaultPlan(rate_limit_per_second=1, rate_limit_burst=4)
    simulator.reset_stats()
    results = get_at_once(simulator, http, 8)
    assert Counter(status for status, _ in results) == {200: 4, 429: 4}
    assert (simulator.stats.pages, simulator.stats.rate_limited) == (4, 4)


@pytest.mark.parametrize("header", ["Retry-After", "X-RateLimit-Reset"])
def test_the_bucket_says_when_a_token_is_back(simulator, http, header):
    simulator.faults = FaultPlan(rate_limit_per_second=0.4, rate_limit_header=header)
    before = time.time()
    assert http.get("/v1/Groups").status_code == 200
    after = time.time()
    limited = http.get("/v1/Groups")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "TooManyRequests"
    if header == "Retry-After":
        assert limited.headers["Retry-After"] == "3"  # 2.5 s, rounded up to whole seconds
    else:
        assert "Retry-After" not in limited.headers
        assert (
            before + 2.5 - 0.05 <= float(limited.headers["X-RateLimit-Reset"]) <= after + 2.5 + 0.01
        )


def test_token_requests_are_not_rate_limited(simulator, http):
    simulator.faults = FaultPlan(rate_limit_per_second=1)  # bursts of one
    for _ in range(5):
        issue_token(http, simulator)
    assert [http.get("/v1/Groups").status_code for _ in range(2)] == [200, 429]
    simulator.faults = FaultPlan(rate_limit_per_second=1)  # a new plan: a full bucket
    assert http.get("/v1/Groups").status_code == 200


def test_latency_and_rate_limit_settings_are_checked():
    assert FaultPlan(rate_limit_per_second=3).rate_limit_capacity == 3
    assert FaultPlan(rate_limit_per_second=0.5).rate_limit_capacity == 1
    assert FaultPlan(rate_limit_per_second=3, rate_limit_burst=10).rate_limit_capacity == 10
    for bad in (
        {"latency_seconds": -0.1},
        {"latency_jitter_seconds": -1},
        {"rate_limit_per_second": -1},
        {"rate_limit_per_second": 5, "rate_limit_burst": 0.5},
    ):
        with pytest.raises(ValueError):
            FaultPlan(**bad)

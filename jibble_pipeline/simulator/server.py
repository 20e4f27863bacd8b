"""The local Jibble API: identity, workspace, time tracking and time attendance (Jibble's own
totals, ``reports``) served by one threaded HTTP server.

It serves a ``SyntheticOrganisation`` like Jibble (docs/rules.md, Jibble API): client-credentials
tokens that expire, OData collections whose pages are capped silently below ``$top`` and never
carry ``@odata.nextLink``, and, when a ``FaultPlan`` asks for them, the conditions a client must
survive: network latency, a token-bucket rate limit, 429s, 5xx answers, dropped connections and
stalled answers.
"""

from __future__ import annotations

import contextlib
import math
import random
import secrets
import socket
import socketserver
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import orjson

from jibble_pipeline.simulator.dialect import Dialect
from jibble_pipeline.simulator.fields import ENTITY_FIELDS, HOUR_ENTRY_FIELDS, FieldType
from jibble_pipeline.simulator.odata import ODataError, ODataQuery
from jibble_pipeline.simulator.organisation import SyntheticOrganisation
from jibble_pipeline.simulator.reports import (
    REPORT_AVAILABILITY,
    REPORT_PATH,
    UNAVAILABLE_ANSWERS,
    ReportError,
    date_range,
    logged_time,
    report_rows,
    tracked_time,
)

TOKEN_PATH = "/connect/token"
COLLECTION_PATHS = {f"/v1/{entity}": entity for entity in ENTITY_FIELDS}
HOUR_ENTRIES_PATH = "/v1/HourEntries"  # served only to a dialect with hour entries
RATE_LIMIT_STYLES = ("token-bucket", "fixed-window")
RATE_LIMIT_HEADERS = ("Retry-After", "X-RateLimit-Reset", "none")
SERVER_ERROR_STATUSES = (500, 502, 503, 504)
CONTROL_PREFIX = "/_simulator"
RESULT_CACHE_SIZE = 1024  # clients read a year one work date (one query) at a time
# Pages already answered are kept as the bytes sent, up to this many bytes in all: a page
# read again (a re-run, a benchmark's second round) costs the server almost no CPU.
PAGE_CACHE_BYTES = 256 * 1024 * 1024
_JSON = "application/json; charset=utf-8"


@dataclass(frozen=True)
class FaultPlan:
    """Latency for every request, and faults injected into collection and report GETs (never
    into token requests).

    Every request the server answers (token requests and 404s included) is delayed by
    ``latency_seconds`` plus a uniform random extra of up to ``latency_jitter_seconds``; each
    connection has its own thread, so concurrent requests wait side by side.

    ``rate_limit_per_second`` (0: none) is a token bucket holding ``rate_limit_burst`` tokens
    (None: one second's worth, at least 1). It starts full, refills continuously, and is
    consulted when a request arrives (before the latency): a request that finds less than one
    token is answered 429 and takes none. ``every_nth_429`` answers every Nth collection request
    with 429, whatever the bucket holds. A 429 carries the header ``rate_limit_header``:
    ``Retry-After`` (seconds; the bucket's are rounded up to a whole second),
    ``X-RateLimit-Reset`` (the Unix time at which to retry) or ``none`` (nothing).

    ``rate_limit_style="fixed-window"`` limits as ASP.NET's AspNetCoreRateLimit does instead of
    the bucket: a window of ``rate_limit_window_seconds`` opens with the first request after the
    last one closed, and admits ``rate_limit_per_second * rate_limit_window_seconds`` requests
    (refused ones count too). Every answer carries ``X-Rate-Limit-Limit`` (the period, ``1s``),
    ``X-Rate-Limit-Remaining`` and ``X-Rate-Limit-Reset`` (the window's end, an ISO instant with
    seven fractional digits); a 429 says ``API calls quota exceeded! maximum admitted 3 per 1s.``
    in plain text, with ``Retry-After`` when ``rate_limit_header`` says so, else no header.

    The random faults are drawn in a fixed order per request from a generator seeded with
    ``seed``, so a plan replays identically for the same sequence of requests. Precedence: an
    outage, the bucket's 429, every Nth 429, drop, 5xx, stall (a stalled request is answered
    normally, late).

    ``outage_after_requests`` (0: never): once that many collection requests have been
    answered, the API is down: every later one is answered 503."""

    error_rate_5xx: float = 0.0
    every_nth_429: int = 0
    retry_after_seconds: float = 1
    rate_limit_header: str = "Retry-After"
    drop_rate: float = 0.0
    stall_rate: float = 0.0
    stall_seconds: float = 2.0
    token_lifetime_seconds: float | None = None
    seed: int = 0
    latency_seconds: float = 0.0
    latency_jitter_seconds: float = 0.0
    rate_limit_per_second: float = 0.0
    rate_limit_burst: float | None = None
    rate_limit_style: str = "token-bucket"
    rate_limit_window_seconds: float = 1.0
    outage_after_requests: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate_5xx", "drop_rate", "stall_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.every_nth_429 < 0 or self.outage_after_requests < 0:
            raise ValueError("every_nth_429 and outage_after_requests must be 0 (never) or more")
        for name in (
            "retry_after_seconds",
            "stall_seconds",
            "latency_seconds",
            "latency_jitter_seconds",
            "rate_limit_per_second",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.rate_limit_burst is not None and self.rate_limit_burst < 1:
            raise ValueError("rate_limit_burst must be at least 1 (a request takes one token)")
        if self.rate_limit_header not in RATE_LIMIT_HEADERS:
            raise ValueError(f"rate_limit_header must be one of {', '.join(RATE_LIMIT_HEADERS)}")
        if self.rate_limit_style not in RATE_LIMIT_STYLES:
            raise ValueError(f"rate_limit_style must be one of {', '.join(RATE_LIMIT_STYLES)}")
        if self.rate_limit_window_seconds <= 0:
            raise ValueError("rate_limit_window_seconds must be positive")
        if self.token_lifetime_seconds is not None and self.token_lifetime_seconds <= 0:
            raise ValueError("token_lifetime_seconds must be positive")

    @property
    def rate_limit_capacity(self) -> float:
        """The bucket's size: ``rate_limit_burst``, or one second's worth (at least 1)."""
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1.0, self.rate_limit_per_second)

    @property
    def window_limit(self) -> int:
        """Requests a fixed window admits."""
        return max(1, round(self.rate_limit_per_second * self.rate_limit_window_seconds))


@dataclass
class SimulatorStats:
    """What the server answered since it started (or since ``reset_stats``)."""

    requests: int = 0
    token_requests: int = 0
    unauthorized: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    dropped: int = 0
    stalled: int = 0
    pages: int = 0
    reports: int = 0  # TrackedTimeReport requests past authorisation (402/404 answers included)
    # Unix times of the first and the last collection or report request since the start.
    first_request_at: float = 0.0
    last_request_at: float = 0.0
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def arrived(self) -> None:
        """A collection or report request arrived (its time is kept)."""
        with self._lock:
            now = time.time()
            self.first_request_at = self.first_request_at or now
            self.last_request_at = now

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def reset(self) -> None:
        with self._lock:
            for counter in fields(self):
                if counter.init:
                    setattr(self, counter.name, 0)


class _Fault(NamedTuple):
    kind: str | None  # "rate_limit", "drop", "server_error", "stall" or None
    status: int = 200
    headers: dict[str, str] | None = None  # rate-limit headers of the answer (a 429's or all)
    text: str | None = None  # a plain-text 429 (AspNetCoreRateLimit's), instead of OData JSON


class _TokenBucket:
    """Holds up to ``capacity`` tokens, starts full and refills at ``rate`` tokens a second."""

    def __init__(self, rate: float, capacity: float):
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Takes a token and returns 0, or, if less than one is left, takes none and returns
        the seconds until one is."""
        with self._lock:
            now = time.monotonic()
            elapsed = now - self._updated
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


class _FixedWindow:
    """AspNetCoreRateLimit's fixed window: opened by the first request after the last window
    closed, ``limit`` requests admitted in it, refused ones counted too."""

    def __init__(self, limit: int, seconds: float):
        self.limit = limit
        self.seconds = seconds
        self._opened: float | None = None
        self._count = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, int, float]:
        """(admitted, requests left in the window, the window's end as a Unix time)."""
        with self._lock:
            now = time.monotonic()
            if self._opened is None or now >= self._opened + self.seconds:
                self._opened, self._count = now, 0
            self._count += 1
            ends_in = self._opened + self.seconds - now
            return self._count <= self.limit, max(0, self.limit - self._count), ends_in


class _FaultDice:
    """The fault draws of one plan: a request counter, a seeded generator and the rate
    limit's token bucket."""

    def __init__(self, plan: FaultPlan):
        self.plan = plan
        self._random = random.Random(plan.seed)
        self._requests = 0
        self._lock = threading.Lock()
        rate = plan.rate_limit_per_second
        fixed = plan.rate_limit_style == "fixed-window"
        self._bucket = _TokenBucket(rate, plan.rate_limit_capacity) if rate and not fixed else None
        self._window = (
            _FixedWindow(plan.window_limit, plan.rate_limit_window_seconds)
            if rate and fixed
            else None
        )

    def roll(self) -> _Fault:
        if self._window is None:
            return self._roll()
        admitted, remaining, ends_in = self._window.take()
        headers = _window_headers(self.plan, remaining, ends_in)
        if admitted:
            return self._roll()._replace(headers=headers)
        plan = self.plan
        retry = {"Retry-After": str(max(1, math.ceil(ends_in)))}
        period = _period_text(plan.rate_limit_window_seconds)
        return _Fault(
            "rate_limit",
            429,
            retry if plan.rate_limit_header == "Retry-After" else {},
            f"API calls quota exceeded! maximum admitted {plan.window_limit} per {period}.",
        )

    def _roll(self) -> _Fault:
        plan = self.plan
        wait = self._bucket.take() if self._bucket is not None else 0.0
        with self._lock:
            self._requests += 1
            nth = self._requests
            drop, error, stall = self._random.random(), self._random.random(), self._random.random()
            status = self._random.choice(SERVER_ERROR_STATUSES)
        if plan.outage_after_requests and nth > plan.outage_after_requests:
            return _Fault("server_error", 503)
        if wait:
            return _Fault(
                "rate_limit", 429, _rate_limit_headers(plan, max(1, math.ceil(wait)), wait)
            )
        if plan.every_nth_429 and nth % plan.every_nth_429 == 0:
            seconds = plan.retry_after_seconds
            return _Fault("rate_limit", 429, _rate_limit_headers(plan, seconds, seconds))
        if drop < plan.drop_rate:
            return _Fault("drop")
        if error < plan.error_rate_5xx:
            return _Fault("server_error", status)
        if stall < plan.stall_rate:
            return _Fault("stall")
        return _Fault(None)


class JibbleSimulator:
    """Serves ``organisation`` on 127.0.0.1 (a free port unless ``port`` is given) while used
    as a context manager. ``faults`` may be replaced while it runs.

    ``reports`` is the tenant's access to Jibble's own totals (``TrackedTimeReport``):
    ``available``, ``restricted`` (a plan without them: 402 ``feature_restricted_subscription``)
    or ``missing`` (a tenant without the endpoint: 404); it may be changed while it runs.

    ``dialect`` plays a tenant whose API differs from the default reading (``Dialect``); with
    ``other_organisation_agents`` a second organisation (``other``) is served alongside."""

    def __init__(
        self,
        organisation: SyntheticOrganisation,
        page_cap: int = 100,
        faults: FaultPlan | None = None,
        token_lifetime_seconds: float = 3600,
        client_id: str | None = None,
        client_secret: str | None = None,
        port: int = 0,
        reports: str = "available",
        dialect: Dialect | None = None,
    ):
        if page_cap < 1:
            raise ValueError("page_cap must be at least 1")
        if token_lifetime_seconds <= 0:
            raise ValueError("token_lifetime_seconds must be positive")
        if reports not in REPORT_AVAILABILITY:
            raise ValueError(f"reports must be one of {', '.join(REPORT_AVAILABILITY)}")
        self.reports = reports
        self.organisation = organisation
        self.dialect = dialect or Dialect()
        self.other: SyntheticOrganisation | None = None
        if self.dialect.other_organisation_agents:
            self.other = SyntheticOrganisation(
                seed=organisation.seed + 101,
                agents=self.dialect.other_organisation_agents,
                start=organisation.start,
                end=organisation.end,
                name="Bluefin Field Services",
            )
        self.page_cap = page_cap
        self.token_lifetime_seconds = token_lifetime_seconds
        self.client_id = client_id or f"simulator-{secrets.token_hex(8)}"
        self.client_secret = client_secret or secrets.token_urlsafe(32)
        self.port = port
        self.stats = SimulatorStats()
        self._dice = _FaultDice(faults or FaultPlan())
        self._tokens: dict[str, float] = {}  # token -> time.monotonic() at which it expires
        self._issued: list[str] = []  # every token ever issued, for tests that look for leaks
        self._tokens_lock = threading.Lock()
        self._results: OrderedDict[tuple, list[Mapping[str, Any]]] = OrderedDict()
        self._results_lock = threading.Lock()
        self._pages: OrderedDict[tuple, bytes] = OrderedDict()
        self._pages_bytes = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # ------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> JibbleSimulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> JibbleSimulator:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping.clear()
        server = _Server(("127.0.0.1", self.port), self)
        self._server = server
        self._url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"jibble-simulator:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops accepting, wakes stalled answers, closes open connections, joins threads."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        self._stopping.set()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the identity, workspace and time tracking host."""
        if self._url is None:
            raise RuntimeError("the simulator has not been started; use it as a context manager")
        return self._url

    # ------------------------------------------------------------------- test controls

    @property
    def faults(self) -> FaultPlan:
        """The fault plan; assigning a new one restarts the request count and random draws
        and fills the rate limit's bucket."""
        return self._dice.plan

    @faults.setter
    def faults(self, plan: FaultPlan) -> None:
        self._dice = _FaultDice(plan)

    def reset_stats(self) -> None:
        self.stats.reset()

    def issued_tokens(self) -> list[str]:
        """Every access token issued since the simulator was created, expired ones included."""
        with self._tokens_lock:
            return list(self._issued)

    def expire_tokens(self) -> None:
        """Invalidates every token issued so far: the next API call with one gets a 401."""
        with self._tokens_lock:
            self._tokens.clear()

    # ---------------------------------------------------------------------- behaviour

    def _issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint's answer to a form; the secret is never echoed."""
        known_client = secrets.compare_digest(
            form.get("client_id", "").encode(), self.client_id.encode()
        ) and secrets.compare_digest(
            form.get("client_secret", "").encode(), self.client_secret.encode()
        )
        if not known_client:
            return 400, {"error": "invalid_client"}
        if not form.get("grant_type"):
            return 400, {"error": "invalid_request", "error_description": "grant_type is missing"}
        if form["grant_type"] != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        plan_lifetime = self.faults.token_lifetime_seconds
        lifetime = self.token_lifetime_seconds if plan_lifetime is None else plan_lifetime
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._tokens_lock:
            self._tokens = {t: expiry for t, expiry in self._tokens.items() if expiry > now}
            self._tokens[token] = now + lifetime
            self._issued.append(token)
        return 200, {
            "access_token": token,
            "expires_in": int(lifetime),
            "token_type": "Bearer",
            "organizationId": self.organisation.organization_id,
        }

    def _authorised(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        with self._tokens_lock:
            expiry = self._tokens.get(token.strip())
        return expiry is not None and time.monotonic() < expiry

    def _collection_page(self, entity: str, params: dict[str, str]) -> bytes:
        """One page of a collection, as the JSON sent: at most ``page_cap`` rows whatever
        ``$top`` says (kept while the organisation's state is unchanged)."""
        dialect = self.dialect
        query = ODataQuery.parse(
            params,
            _fields(entity),
            orderable=dialect.orderable,
            unfilterable=dialect.refused_filter_fields(),
        )
        size = self.page_cap if query.top is None else min(query.top, self.page_cap)
        key = (
            entity,
            query.result_key,
            query.skip,
            size,
            query.count,
            self.organisation.state_key(),
        )
        with self._results_lock:
            cached = self._pages.get(key)
            if cached is not None:
                self._pages.move_to_end(key)
                return cached
        rows = self._result(entity, query)
        body: dict[str, Any] = {"@odata.context": f"{self.url}/v1/$metadata#{entity}"}
        if query.count:
            body["@odata.count"] = len(rows)
        body["value"] = rows[query.skip : query.skip + size]
        data = orjson.dumps(body)
        with self._results_lock:
            self._pages[key] = data
            self._pages_bytes += len(data)
            while self._pages_bytes > PAGE_CACHE_BYTES:
                _, dropped = self._pages.popitem(last=False)
                self._pages_bytes -= len(dropped)
        return data

    def _report_page(self, params: dict[str, str]) -> dict[str, Any]:
        """One page of ``TrackedTimeReport`` (``simulator.reports``), capped like collections."""
        public = self.dialect.public_reports
        if public:
            refused = [option for option in ("$top", "$skip", "$count") if option in params]
            if refused:
                raise ReportError(f"The query parameter '{refused[0]}' is not supported.")
            if not params.get("subGroupBy"):
                raise ReportError("The subGroupBy field is required.")
        first, last = date_range(params)
        group_by = params.get("groupBy") or "Member"
        sub_group_by = params.get("subGroupBy") or "None"
        names = {
            "Member": {p["id"]: p.get("fullName") or p["id"] for p in self.organisation.people},
            "Activity": {a["id"]: a.get("name") or a["id"] for a in self.organisation.activities},
        }
        tracked = tracked_time(self.organisation.records("TimeEntries", first, last))
        if self.dialect.hour_entries:
            tracked += logged_time(self.organisation.hour_entries(first, last))
        rows = report_rows(
            tracked,
            group_by,
            None if sub_group_by == "None" else sub_group_by,
            names,
            public=public,
        )
        try:
            skip = int(params.get("$skip") or 0)
            top = int(params["$top"]) if params.get("$top") else None
        except ValueError:
            raise ReportError("$top and $skip must be whole numbers") from None
        size = self.page_cap if top is None else min(top, self.page_cap)
        body: dict[str, Any] = {"@odata.context": f"{self.url}/v1/$metadata#TrackedTimeReport"}
        if params.get("$count") == "true":
            body["@odata.count"] = len(rows)
        body["value"] = rows[skip : skip + size]
        return body

    def _result(self, entity: str, query: ODataQuery) -> list[Mapping[str, Any]]:
        """The full evaluated result, cached while the organisation's state is unchanged, so
        paging through a large collection filters and sorts it once (under the lock, so
        concurrent pages of one query do not evaluate it twice)."""
        state = self.organisation.state_key()
        key = (entity, query.result_key, state)
        with self._results_lock:
            cached = self._results.get(key)
            if cached is not None:
                self._results.move_to_end(key)
                return cached
            result = query.evaluate(self._records(entity, query, state[1]))
            self._results[key] = result
            while len(self._results) > RESULT_CACHE_SIZE:
                self._results.popitem(last=False)
            return result

    def _records(self, entity: str, query: ODataQuery, now_ms: int) -> list[Mapping[str, Any]]:
        """The rows a query reads: of the organisation (and of the other one, when the dialect
        has it), time-dated ones limited to the query's work dates, as the dialect shapes
        them."""
        rows: list[Mapping[str, Any]] = []
        for organisation in (self.organisation, self.other):
            if organisation is None:
                continue
            if entity in ("TimeEntries", "HourEntries"):
                first, last = query.date_bounds("belongsToDate")
                if entity == "TimeEntries":
                    rows += organisation.records(entity, first, last, at_ms=now_ms)
                else:
                    rows += organisation.hour_entries(first, last, at_ms=now_ms)
            else:
                rows += organisation.records(entity)
        if entity in ("People", "Organizations") and self.dialect.time_zone != "timeZone":
            return [_moved_time_zone(row, self.dialect.time_zone) for row in rows]
        return rows


def _fields(entity: str) -> dict[str, FieldType]:
    return HOUR_ENTRY_FIELDS if entity == "HourEntries" else ENTITY_FIELDS[entity]


def _moved_time_zone(row: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A person or organisation with its ``timeZone`` where the dialect keeps it: the flat key
    of an OData open type, or a nested settings object."""
    moved = {k: v for k, v in row.items() if k != "timeZone"}
    if "timeZone" in row:
        if where == "cultureSettings":
            moved["cultureSettings"] = {"timeZone": row["timeZone"], "cultureCode": "en-US"}
        else:
            moved[where] = row["timeZone"]
    return moved


class _Server(ThreadingHTTPServer):
    """Tracks its connection threads, so stopping closes every kept-alive connection and
    leaves no thread behind."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulator: JibbleSimulator):
        self.simulator = simulator
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skips HTTPServer's reverse DNS lookup
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True
        )
        with self._connections_lock:
            self._connections[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)

    def close_connections(self, timeout_seconds: float = 5.0) -> None:
        with self._connections_lock:
            connections = dict(self._connections)
        for connection in connections.values():
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout_seconds
        for thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away (often after timing out on a stalled answer)
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "JibbleSimulator/1.0"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    timeout = 120  # an idle kept-alive connection is closed after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests and benchmarks send many thousands of requests."""

    def _control(self) -> bool:
        """``/_simulator/stats`` (GET) and ``/_simulator/faults`` (POST a JSON FaultPlan):
        controls for tests and benchmarks that run the simulator in another process, allowed
        with the client secret in ``X-Simulator-Control``. Not counted, never delayed."""
        path = urlsplit(self.path).path
        if not path.startswith(CONTROL_PREFIX):
            return False
        simulator = self.server.simulator
        given = self.headers.get("X-Simulator-Control", "")
        if not secrets.compare_digest(given.encode(), simulator.client_secret.encode()):
            self._send_json(403, {"error": "forbidden"})
            return True
        if path == f"{CONTROL_PREFIX}/stats" and self.command == "GET":
            self._send_json(200, simulator.stats.as_dict())
        elif path == f"{CONTROL_PREFIX}/faults" and self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            try:
                simulator.faults = FaultPlan(**orjson.loads(self.rfile.read(length) or b"{}"))
            except (TypeError, ValueError) as error:
                self._send_json(400, {"error": str(error)})
                return True
            simulator.reset_stats()
            self._send_json(200, {"faults": "replaced"})
        else:
            self._send_not_found(path)
        return True

    def do_POST(self) -> None:
        if self._control():
            return
        simulator = self.server.simulator
        simulator.stats.add("requests")
        if not self._delay(simulator.faults):
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send_json(400, {"error": "invalid_request"})
            return
        form_text = self.rfile.read(length).decode("utf-8", "replace")
        path = urlsplit(self.path).path
        if path != TOKEN_PATH:
            self._send_not_found(path)
            return
        simulator.stats.add("token_requests")
        form = {name: values[0] for name, values in parse_qs(form_text).items()}
        status, body = simulator._issue_token(form)
        self._send_json(status, body, {"Cache-Control": "no-store"})

    def do_GET(self) -> None:
        if self._control():
            return
        simulator = self.server.simulator
        stats = simulator.stats
        stats.add("requests")
        split = urlsplit(self.path)
        path = split.path.rstrip("/")
        entity = COLLECTION_PATHS.get(path)
        if path == HOUR_ENTRIES_PATH and simulator.dialect.hour_entries:
            entity = "HourEntries"
        report = path == REPORT_PATH
        dice = simulator._dice
        plan = dice.plan
        served = entity is not None or report
        if served:
            stats.arrived()
        fault = dice.roll() if served else _Fault(None)  # on arrival, before the delay
        if not self._delay(plan):
            return
        if not served:
            self._send_not_found(split.path)
            return

        if fault.kind == "drop":
            stats.add("dropped")
            self.close_connection = True
            return
        if fault.kind == "rate_limit":
            stats.add("rate_limited")
            if fault.text is not None:
                self._send(429, fault.text.encode(), "text/plain", fault.headers)
            else:
                self._send_odata_error(429, "TooManyRequests", "Rate limit exceeded", fault.headers)
            return
        if fault.kind == "server_error":
            stats.add("server_errors")
            self._send_odata_error(fault.status, "ServerError", "Injected server error")
            return
        if fault.kind == "stall":
            stats.add("stalled")
            if simulator._stopping.wait(plan.stall_seconds):
                self.close_connection = True
                return

        if not simulator._authorised(self.headers.get("Authorization")):
            stats.add("unauthorized")
            self._send_json(
                401,
                {"error": "invalid_token"},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
            return
        params = {name: values[0] for name, values in parse_qs(split.query).items()}
        if report:
            stats.add("reports")
        if report and simulator.reports in UNAVAILABLE_ANSWERS:
            status, code, message = UNAVAILABLE_ANSWERS[simulator.reports]
            self._send_odata_error(status, code, message)
            return
        try:
            if report:
                data = orjson.dumps(simulator._report_page(params))
            else:
                assert entity is not None
                data = simulator._collection_page(entity, params)
        except (ODataError, ReportError) as error:
            self._send_odata_error(400, "BadRequest", str(error))
            return
        stats.add("pages")
        self._send(200, data, _JSON, fault.headers)

    def _delay(self, plan: FaultPlan) -> bool:
        """Sleeps the plan's latency; False, with the connection to be closed unanswered, if
        the simulator stops meanwhile."""
        seconds = plan.latency_seconds + random.uniform(0.0, plan.latency_jitter_seconds)
        if seconds and self.server.simulator._stopping.wait(seconds):
            self.close_connection = True
            return False
        return True

    def _send_not_found(self, path: str) -> None:
        self._send_odata_error(404, "NotFound", f"No resource at {path}")

    def _send_odata_error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send_json(status, {"error": {"code": code, "message": message}}, headers)

    def _send_json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        # Compact UTF-8 JSON; pages of entries are most of it.
        self._send(status, orjson.dumps(body), _JSON, headers)

    def _send(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _rate_limit_headers(plan: FaultPlan, retry_after: float, reset_in: float) -> dict[str, str]:
    """The plan's 429 header: ``Retry-After: retry_after``, ``X-RateLimit-Reset`` (the Unix
    time ``reset_in`` seconds from now) or none."""
    if plan.rate_limit_header == "Retry-After":
        return {"Retry-After": _number_text(retry_after)}
    if plan.rate_limit_header == "none":
        return {}
    return {"X-RateLimit-Reset": f"{time.time() + reset_in:.3f}"}


def _window_headers(plan: FaultPlan, remaining: int, ends_in: float) -> dict[str, str]:
    """AspNetCoreRateLimit's headers: the period, the requests left and the window's end."""
    ends = datetime.now(UTC) + timedelta(seconds=ends_in)
    tenth_of_microsecond = int(ends_in * 10_000_000) % 10
    return {
        "X-Rate-Limit-Limit": _period_text(plan.rate_limit_window_seconds),
        "X-Rate-Limit-Remaining": str(remaining),
        "X-Rate-Limit-Reset": ends.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{tenth_of_microsecond}Z",
    }


def _period_text(seconds: float) -> str:
    """A rule's period as AspNetCoreRateLimit writes it: ``1s``, ``15m``, ``1h``, ``1d``."""
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{_number_text(seconds)}s"


def _number_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)

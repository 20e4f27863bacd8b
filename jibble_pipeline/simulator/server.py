"""The local Jibble API: identity, workspace and time tracking served by one threaded HTTP server.

It serves a ``SyntheticOrganisation`` the way Jibble behaves (SPEC §2): client-credentials
tokens that expire, OData collections whose pages are capped silently below ``$top`` and never
carry ``@odata.nextLink``, and, when a ``FaultPlan`` asks for them, the faults a client must
survive: 429s, 5xx answers, dropped connections and stalled answers.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import socket
import socketserver
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import orjson

from jibble_pipeline.simulator.odata import ODataError, ODataQuery
from jibble_pipeline.simulator.organisation import ENTITY_FIELDS, SyntheticOrganisation

TOKEN_PATH = "/connect/token"
COLLECTION_PATHS = {f"/v1/{entity}": entity for entity in ENTITY_FIELDS}
RATE_LIMIT_HEADERS = ("Retry-After", "X-RateLimit-Reset")
SERVER_ERROR_STATUSES = (500, 502, 503, 504)
RESULT_CACHE_SIZE = 8
_JSON = "application/json; charset=utf-8"


@dataclass(frozen=True)
class FaultPlan:
    """Faults injected into collection GETs (never into token requests).

    ``every_nth_429`` answers every Nth collection request with 429 and the header
    ``rate_limit_header``: ``Retry-After`` (seconds) or ``X-RateLimit-Reset`` (the Unix time at
    which to retry). The random faults are drawn in a fixed order per request from a generator
    seeded with ``seed``, so a plan replays identically for the same sequence of requests.
    Precedence: 429, drop, 5xx, stall (a stalled request is answered normally, late)."""

    error_rate_5xx: float = 0.0
    every_nth_429: int = 0
    retry_after_seconds: float = 1
    rate_limit_header: str = "Retry-After"
    drop_rate: float = 0.0
    stall_rate: float = 0.0
    stall_seconds: float = 2.0
    token_lifetime_seconds: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate_5xx", "drop_rate", "stall_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.every_nth_429 < 0:
            raise ValueError("every_nth_429 must be 0 (never) or positive")
        if self.retry_after_seconds < 0 or self.stall_seconds < 0:
            raise ValueError("retry_after_seconds and stall_seconds must not be negative")
        if self.rate_limit_header not in RATE_LIMIT_HEADERS:
            raise ValueError(f"rate_limit_header must be one of {', '.join(RATE_LIMIT_HEADERS)}")
        if self.token_lifetime_seconds is not None and self.token_lifetime_seconds <= 0:
            raise ValueError("token_lifetime_seconds must be positive")


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
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def reset(self) -> None:
        with self._lock:
            for counter in fields(self):
                if counter.init:
                    setattr(self, counter.name, 0)


class _Fault(NamedTuple):
    kind: str | None  # "rate_limit", "drop", "server_error", "stall" or None
    status: int = 200


class _FaultDice:
    """The fault draws of one plan: a request counter and a seeded generator."""

    def __init__(self, plan: FaultPlan):
        self.plan = plan
        self._random = random.Random(plan.seed)
        self._requests = 0
        self._lock = threading.Lock()

    def roll(self) -> _Fault:
        plan = self.plan
        with self._lock:
            self._requests += 1
            nth = self._requests
            drop, error, stall = self._random.random(), self._random.random(), self._random.random()
            status = self._random.choice(SERVER_ERROR_STATUSES)
        if plan.every_nth_429 and nth % plan.every_nth_429 == 0:
            return _Fault("rate_limit", 429)
        if drop < plan.drop_rate:
            return _Fault("drop")
        if error < plan.error_rate_5xx:
            return _Fault("server_error", status)
        if stall < plan.stall_rate:
            return _Fault("stall")
        return _Fault(None)


class JibbleSimulator:
    """Serves ``organisation`` on 127.0.0.1 (a free port unless ``port`` is given) while used
    as a context manager. ``faults`` may be replaced while it runs."""

    def __init__(
        self,
        organisation: SyntheticOrganisation,
        page_cap: int = 100,
        faults: FaultPlan | None = None,
        token_lifetime_seconds: float = 3600,
        client_id: str | None = None,
        client_secret: str | None = None,
        port: int = 0,
    ):
        if page_cap < 1:
            raise ValueError("page_cap must be at least 1")
        if token_lifetime_seconds <= 0:
            raise ValueError("token_lifetime_seconds must be positive")
        self.organisation = organisation
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
        self._results: OrderedDict[tuple, list[dict[str, Any]]] = OrderedDict()
        self._results_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # ------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> JibbleSimulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
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
        """The fault plan; assigning a new one restarts the request count and random draws."""
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

    def _collection_page(self, entity: str, params: dict[str, str]) -> dict[str, Any]:
        """One page of a collection: at most ``page_cap`` rows whatever ``$top`` says."""
        query = ODataQuery.parse(params, ENTITY_FIELDS[entity])
        rows = self._result(entity, query)
        size = self.page_cap if query.top is None else min(query.top, self.page_cap)
        body: dict[str, Any] = {"@odata.context": f"{self.url}/v1/$metadata#{entity}"}
        if query.count:
            body["@odata.count"] = len(rows)
        body["value"] = rows[query.skip : query.skip + size]
        return body

    def _result(self, entity: str, query: ODataQuery) -> list[dict[str, Any]]:
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
            if entity == "TimeEntries":
                first, last = query.date_bounds("belongsToDate")
                rows = self.organisation.records(entity, first, last, at_ms=state[1])
            else:
                rows = self.organisation.records(entity)
            result = query.evaluate(rows)
            self._results[key] = result
            while len(self._results) > RESULT_CACHE_SIZE:
                self._results.popitem(last=False)
            return result


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

    def do_POST(self) -> None:
        simulator = self.server.simulator
        simulator.stats.add("requests")
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
        simulator = self.server.simulator
        stats = simulator.stats
        stats.add("requests")
        split = urlsplit(self.path)
        entity = COLLECTION_PATHS.get(split.path.rstrip("/"))
        if entity is None:
            self._send_not_found(split.path)
            return

        dice = simulator._dice
        fault, plan = dice.roll(), dice.plan
        if fault.kind == "drop":
            stats.add("dropped")
            self.close_connection = True
            return
        if fault.kind == "rate_limit":
            stats.add("rate_limited")
            self._send_rate_limited(plan)
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
        try:
            body = simulator._collection_page(entity, params)
        except ODataError as error:
            self._send_odata_error(400, "BadRequest", str(error))
            return
        stats.add("pages")
        self._send_json(200, body)

    def _send_rate_limited(self, plan: FaultPlan) -> None:
        if plan.rate_limit_header == "Retry-After":
            value = _number_text(plan.retry_after_seconds)
        else:
            value = f"{time.time() + plan.retry_after_seconds:.3f}"
        self._send_odata_error(
            429, "TooManyRequests", "Rate limit exceeded", {plan.rate_limit_header: value}
        )

    def _send_not_found(self, path: str) -> None:
        self._send_odata_error(404, "NotFound", f"No resource at {path}")

    def _send_odata_error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send_json(status, {"error": {"code": code, "message": message}}, headers)

    def _send_json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = orjson.dumps(body)  # compact UTF-8 JSON; pages of entries are most of it
        self.send_response(status)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _number_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)

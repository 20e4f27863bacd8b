"""HTTP client of the Jibble API: OAuth2 client credentials, paging, retries (SPEC §2).

Jibble caps page sizes silently below the ``$top`` asked for and rarely sends
``@odata.nextLink``, so every collection is read with ``$skip`` advanced by the rows
actually received, under a stable ``$orderby``, until an empty page (or the
``@odata.count`` it announced). Transient faults (429, 5xx, timeouts, dropped
connections) are retried with jittered exponential backoff, honouring ``Retry-After`` and
``X-RateLimit-Reset``, within a per-request limit and a budget shared by the whole
session. Secrets never appear in logs or errors: the token travels in a header, the client
secret only in the token request's body.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_random_exponential

from jibble_pipeline.jibble.odata import all_of, at_or_after, before, between_dates

TOKEN_PATH = "/connect/token"
PEOPLE_PATH = "/v1/People"
GROUPS_PATH = "/v1/Groups"
ACTIVITIES_PATH = "/v1/Activities"
ORGANIZATIONS_PATH = "/v1/Organizations"
TIME_ENTRIES_PATH = "/v1/TimeEntries"
ENTRY_ORDER = "createdAt asc,id asc"  # stable under new entries: they sort last
WORKSPACE_ORDER = "id asc"
TRANSIENT_STATUSES = {500, 502, 503, 504}
USER_AGENT = "jibble-pipeline"


class JibbleError(RuntimeError):
    """The Jibble API answered in a way the pipeline cannot use; the message says what."""


class JibbleAuthError(JibbleError):
    """Credentials rejected, or a fresh token refused."""


class JibbleUnavailableError(JibbleError):
    """Transient faults outlasted the retry limits."""


class _Transient(Exception):
    """A failure worth retrying; ``wait`` is the delay the server asked for, if any."""

    def __init__(self, description: str, wait: float | None = None, rate_limited: bool = False):
        super().__init__(description)
        self.description = description
        self.wait = wait
        self.rate_limited = rate_limited


@dataclass(frozen=True)
class RetryPolicy:
    """How long the client keeps trying. ``max_attempts`` bounds one request;
    ``retry_budget`` bounds the retries of the whole client session."""

    max_attempts: int = 8
    retry_budget: int = 200
    initial_wait_seconds: float = 0.5
    max_wait_seconds: float = 30.0
    max_rate_limit_wait_seconds: float = 300.0


@dataclass
class ClientStats:
    """What a session cost, for the run's metadata."""

    requests: int = 0
    pages: int = 0
    rows: int = 0
    retries: int = 0
    rate_limited: int = 0
    token_refreshes: int = 0


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float  # time.monotonic()


class JibbleClient:
    """A session with the Jibble API; use as a context manager."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        identity_url: str,
        workspace_url: str,
        time_tracking_url: str,
        page_size: int = 1000,
        timeout_seconds: float = 30.0,
        retry: RetryPolicy | None = None,
        log: logging.Logger | Any | None = None,
    ):
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._client_id = client_id
        self._client_secret = client_secret
        self.identity_url = identity_url.rstrip("/")
        self.workspace_url = workspace_url.rstrip("/")
        self.time_tracking_url = time_tracking_url.rstrip("/")
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.log = log or logging.getLogger(__name__)
        self.stats = ClientStats()
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 10.0)),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        )

    def __enter__(self) -> JibbleClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ collections

    def people(self) -> list[dict[str, Any]]:
        return self._collect(self.workspace_url, PEOPLE_PATH, {"$orderby": WORKSPACE_ORDER})

    def groups(self) -> list[dict[str, Any]]:
        return self._collect(self.workspace_url, GROUPS_PATH, {"$orderby": WORKSPACE_ORDER})

    def activities(self) -> list[dict[str, Any]]:
        return self._collect(self.workspace_url, ACTIVITIES_PATH, {"$orderby": WORKSPACE_ORDER})

    def organizations(self) -> list[dict[str, Any]]:
        return self._collect(self.workspace_url, ORGANIZATIONS_PATH, {"$orderby": WORKSPACE_ORDER})

    def time_entries(self, first: date, last: date) -> list[dict[str, Any]]:
        """Every entry whose work date (``belongsToDate``) is in [first, last], any status."""
        return self._collect(self.time_tracking_url, TIME_ENTRIES_PATH, _entry_query(first, last))

    def time_entry_pages(self, first: date, last: date) -> Iterator[list[dict[str, Any]]]:
        """The same entries as ``time_entries``, page by page (bounded memory)."""
        return self._pages(self.time_tracking_url, TIME_ENTRIES_PATH, _entry_query(first, last))

    def time_entries_changed_since(
        self, since: datetime, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Entries created, edited or archived at or after ``since`` (``updatedAt``)."""
        conditions = [at_or_after("updatedAt", since)]
        if until is not None:
            conditions.append(before("updatedAt", until))
        query = {"$filter": all_of(*conditions), "$orderby": ENTRY_ORDER}
        return self._collect(self.time_tracking_url, TIME_ENTRIES_PATH, query)

    # ----------------------------------------------------------------------- paging

    def _collect(self, base_url: str, path: str, query: Mapping[str, str]) -> list[dict]:
        rows: list[dict] = []
        for page in self._pages(base_url, path, query):
            rows.extend(page)
        return rows

    def _pages(
        self, base_url: str, path: str, query: Mapping[str, str]
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages until an empty one, or until the announced ``@odata.count`` is reached.

        A page's ``@odata.nextLink`` is followed when sent; otherwise ``$skip`` advances by
        the rows received (never by ``$top``: the server caps pages below it)."""
        url = f"{base_url}{path}"
        skip, total, previous_first_id = 0, None, None
        next_link: str | None = None
        while True:
            params = None if next_link else {**query, "$top": self.page_size, "$skip": skip}
            if params is not None and total is None and skip == 0:
                params["$count"] = "true"
            body = self._get_json(next_link or url, params, path)
            rows = body.get("value")
            if not isinstance(rows, list):
                raise JibbleError(f"GET {path}: the answer has no 'value' list")
            if skip == 0 and isinstance(body.get("@odata.count"), int):
                total = body["@odata.count"]
            if not rows:
                return
            first_id = rows[0].get("id") if isinstance(rows[0], dict) else None
            if first_id is not None and first_id == previous_first_id:
                raise JibbleError(
                    f"GET {path}: the server returned the same page for $skip={skip}; "
                    "it does not honour $skip, so the collection cannot be read completely"
                )
            previous_first_id = first_id
            self._count(pages=1, rows=len(rows))
            yield rows
            skip += len(rows)
            next_link = body.get("@odata.nextLink") or None
            if next_link is None and total is not None and skip >= total:
                return

    # --------------------------------------------------------------------- requests

    def _get_json(self, url: str, params: Mapping[str, Any] | None, path: str) -> dict:
        def attempt() -> dict:
            response = self._send_authorised(url, params, path)
            try:
                body = orjson.loads(response.content)  # pages of entries: the bulk of a run
            except orjson.JSONDecodeError as exc:
                raise _Transient(f"GET {path}: the answer is not JSON") from exc
            if not isinstance(body, dict):
                raise JibbleError(f"GET {path}: the answer is not a JSON object")
            return body

        return self._with_retries(attempt, f"GET {path}")

    def _send_authorised(
        self, url: str, params: Mapping[str, Any] | None, path: str
    ) -> httpx.Response:
        """One GET with a valid token; a 401 refreshes the token and tries once more."""
        response = self._send("GET", url, path, params=params, headers=self._auth_header())
        if response.status_code == 401:
            self._drop_token()
            response = self._send("GET", url, path, params=params, headers=self._auth_header())
            if response.status_code == 401:
                raise JibbleAuthError(
                    f"GET {path}: Jibble refused a freshly issued access token (401). "
                    "Check that the API client of JIBBLE_CLIENT_ID may read this endpoint."
                )
        _raise_for_status(response, f"GET {path}")
        return response

    def _send(self, method: str, url: str, path: str, **kwargs: Any) -> httpx.Response:
        self._count(requests=1)
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise _Transient(f"{method} {path}: timed out") from exc
        except httpx.TransportError as exc:
            reason = type(exc).__name__
            raise _Transient(f"{method} {path}: connection failed ({reason})") from exc

    def _with_retries(self, attempt: Any, what: str) -> Any:
        policy = self.retry
        backoff = wait_random_exponential(
            multiplier=policy.initial_wait_seconds, max=policy.max_wait_seconds
        )

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, _Transient) and error.wait is not None:
                return min(error.wait, policy.max_rate_limit_wait_seconds)
            return backoff(state)

        def stop(state: RetryCallState) -> bool:
            return (
                state.attempt_number >= policy.max_attempts
                or self.stats.retries >= policy.retry_budget
            )

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self._count(retries=1, rate_limited=int(getattr(error, "rate_limited", False)))
            delay = state.next_action.sleep if state.next_action else 0.0
            self.log.warning(
                f"{error}; retrying in {delay:.1f} s "
                f"(attempt {state.attempt_number + 1} of {policy.max_attempts})"
            )

        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            wait=wait,
            stop=stop,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Transient as error:
            budget_spent = self.stats.retries >= policy.retry_budget
            limit = (
                f"the session's retry budget of {policy.retry_budget} retries is spent"
                if budget_spent
                else f"{policy.max_attempts} attempts failed"
            )
            raise JibbleUnavailableError(
                f"Gave up on {what}: {limit}; last error: {error.description}. "
                "Jibble may be down or rate-limiting hard; nothing partial was written, "
                "re-run later."
            ) from None

    # ------------------------------------------------------------------------ token

    def _auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._valid_token()}"}

    def _drop_token(self) -> None:
        with self._token_lock:
            self._token = None

    def _valid_token(self) -> str:
        with self._token_lock:
            if self._token is None or time.monotonic() >= self._token.refresh_at:
                self._token = self._with_retries(self._request_token, f"POST {TOKEN_PATH}")
                self._count(token_refreshes=1)
            return self._token.value

    def _request_token(self) -> _Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        url = f"{self.identity_url}{TOKEN_PATH}"
        response = self._send("POST", url, TOKEN_PATH, data=form)
        if response.status_code in (400, 401, 403):
            raise JibbleAuthError(
                f"Jibble rejected the client credentials ({_oauth_error(response)}). "
                "Check JIBBLE_CLIENT_ID and JIBBLE_CLIENT_SECRET (and JIBBLE_IDENTITY_URL)."
            )
        _raise_for_status(response, f"POST {TOKEN_PATH}")
        try:
            body = response.json()
            value = body["access_token"]
            lifetime = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise JibbleError(f"POST {TOKEN_PATH}: the answer holds no access_token") from exc
        # Refresh a little before expiry: a tenth of the lifetime, at most a minute.
        return _Token(value, time.monotonic() + lifetime - min(60.0, lifetime / 10))

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            for name, n in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)


def _entry_query(first: date, last: date) -> dict[str, str]:
    if last < first:
        raise ValueError(f"work dates {first}..{last}: the last is before the first")
    return {"$filter": between_dates("belongsToDate", first, last), "$orderby": ENTRY_ORDER}


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``X-RateLimit-Reset``
    (a Unix time, or seconds when small)."""
    header = response.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            value = float(reset)
        except ValueError:
            return None
        return max(0.0, value - time.time()) if value > 1_000_000_000 else max(0.0, value)
    return None


def _raise_for_status(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 429:
        raise _Transient(
            f"{what}: rate limited (429)", wait=_retry_after(response), rate_limited=True
        )
    if status in TRANSIENT_STATUSES:
        raise _Transient(f"{what}: server error {status}")
    detail = response.text[:200].strip()
    raise JibbleError(f"{what}: Jibble answered {status}" + (f": {detail}" if detail else ""))


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    return f"HTTP {response.status_code}, {error}" if error else f"HTTP {response.status_code}"

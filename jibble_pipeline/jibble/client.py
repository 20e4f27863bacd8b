"""Jibble API client: OAuth2 client credentials, complete paging (docs/rules.md, Jibble API).

Requests go through the project's one HTTP layer (``jibble_pipeline.transport``): paced to
the API's limits, 429s waited out, faults retried. Collections are read by ``PageReader``
(``jibble.paging``): several pages at once, exact under Jibble's silent page cap. Time
entries are read one work date per query, so a range's dates arrive whole and in order
while many of its pages are in flight. Secrets never appear in logs or errors: the token
travels in a header, the client secret only in the token request's body.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx
import orjson

from jibble_pipeline.jibble.odata import after, all_of, any_of, at_or_after, before, between_dates
from jibble_pipeline.jibble.paging import Collection, PageReader, PagingError
from jibble_pipeline.jibble.reports import ReportUnavailable, tracked_seconds_by_member
from jibble_pipeline.settings import PRODUCTION_TIME_ATTENDANCE_URL
from jibble_pipeline.transport import (
    ApiSession,
    Pacing,
    RetryPolicy,
    ServiceUnavailable,
    open_session,
)

TOKEN_PATH = "/connect/token"
PEOPLE_PATH = "/v1/People"
GROUPS_PATH = "/v1/Groups"
ACTIVITIES_PATH = "/v1/Activities"
TIME_ENTRIES_PATH = "/v1/TimeEntries"
TRACKED_TIME_REPORT_PATH = "/v1/TrackedTimeReport"
ENTRY_ORDER = "createdAt asc,id asc"  # stable under new entries: they sort last
WORKSPACE_ORDER = "id asc"


class JibbleError(RuntimeError):
    """The Jibble API answered in a way the pipeline cannot use; the message says what."""


class JibbleStatusError(JibbleError):
    """Jibble answered an HTTP error status; ``code`` is the OData error code when it sent one."""

    def __init__(self, message: str, status: int, code: str | None):
        super().__init__(message)
        self.status = status
        self.code = code


class JibbleAuthError(JibbleError):
    """Credentials rejected, or a fresh token refused."""


class JibbleUnavailableError(JibbleError):
    """Faults or rate limits outlasted the retry policy."""


@dataclass(frozen=True)
class ClientStats:
    """What a session cost, for the run's metadata."""

    requests: int = 0
    pages: int = 0
    rows: int = 0
    retries: int = 0
    faults: int = 0
    rate_limited: int = 0
    token_refreshes: int = 0
    waited_seconds: float = 0.0


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
        time_attendance_url: str = PRODUCTION_TIME_ATTENDANCE_URL,
        page_size: int = 1000,
        timeout_seconds: float = 30.0,
        pacing: Pacing | None = None,
        retry: RetryPolicy | None = None,
        log: logging.Logger | Any | None = None,
        share: Callable[[], int] | None = None,
    ):
        """``share``: how many runs use the API right now (each paces at its share)."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._client_id = client_id
        self._client_secret = client_secret
        self.identity_url = identity_url.rstrip("/")
        self.workspace_url = workspace_url.rstrip("/")
        self.time_tracking_url = time_tracking_url.rstrip("/")
        self.time_attendance_url = time_attendance_url.rstrip("/")
        self.pacing = pacing or Pacing()
        self.log = log or logging.getLogger(__name__)
        retry = retry or RetryPolicy()

        # The token travels in a header set just before each request leaves, so however long
        # a request waited for its turn, it goes with a valid token.
        def api_session(api: str) -> ApiSession:
            return open_session(
                api,
                pacing=self.pacing,
                retry=retry,
                timeout_seconds=timeout_seconds,
                headers={"Accept": "application/json"},
                log=self.log,
                share=share,
                prepare=self._authorise,
            )

        self._session = api_session(f"jibble:{client_id}")
        # Jibble's own totals live on another host, with limits of their own; same token.
        self._attendance = api_session(f"jibble-time-attendance:{client_id}")
        self._identity = open_session(
            f"jibble-identity:{client_id}",
            pacing=Pacing(concurrency=1),
            retry=retry,
            timeout_seconds=timeout_seconds,
            headers={"Accept": "application/json"},
            log=self.log,
        )
        self._reader = PageReader(
            self._get_json, page_size=page_size, concurrency=self.pacing.concurrency
        )
        self._attendance_reader = PageReader(
            self._get_attendance_json, page_size=page_size, concurrency=1
        )
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self._pages = self._rows = self._token_refreshes = 0

    def __enter__(self) -> JibbleClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()
        self._attendance.close()
        self._identity.close()

    @property
    def stats(self) -> ClientStats:
        api, identity = self._session.stats, self._identity.stats
        attendance = self._attendance.stats
        return ClientStats(
            requests=api.requests + identity.requests + attendance.requests,
            pages=self._pages,
            rows=self._rows,
            retries=api.retries + identity.retries + attendance.retries,
            faults=api.faults + identity.faults + attendance.faults,
            rate_limited=api.rate_limited + identity.rate_limited + attendance.rate_limited,
            token_refreshes=self._token_refreshes,
            waited_seconds=api.waited_seconds + attendance.waited_seconds,
        )

    # ------------------------------------------------------------------ collections

    def people(self) -> list[dict[str, Any]]:
        return self._read_all(self.workspace_url, PEOPLE_PATH, {"$orderby": WORKSPACE_ORDER})

    def groups(self) -> list[dict[str, Any]]:
        return self._read_all(self.workspace_url, GROUPS_PATH, {"$orderby": WORKSPACE_ORDER})

    def activities(self) -> list[dict[str, Any]]:
        return self._read_all(self.workspace_url, ACTIVITIES_PATH, {"$orderby": WORKSPACE_ORDER})

    def time_entries_by_date(
        self, dates: Iterable[date]
    ) -> Iterator[tuple[date, list[dict[str, Any]]]]:
        """Each work date with all its entries (any status), in the order given, several
        dates and pages in flight at once."""
        queries = (
            Collection(
                f"{self.time_tracking_url}{TIME_ENTRIES_PATH}",
                TIME_ENTRIES_PATH,
                {"$filter": between_dates("belongsToDate", day, day), "$orderby": ENTRY_ORDER},
                key=day,
            )
            for day in dates
        )
        try:
            for query, rows in self._reader.read(queries):
                yield query.key, rows
        except PagingError as error:
            raise JibbleError(str(error)) from None

    def time_entries_changed_since(
        self,
        since: datetime,
        until: datetime | None = None,
        *,
        work_dates: tuple[date, date] | None = None,
    ) -> list[dict[str, Any]]:
        """Entries created, edited or archived at or after ``since`` (``updatedAt``), of the
        work dates ``work_dates`` (first, last) when given."""
        conditions = [at_or_after("updatedAt", since)]
        if until is not None:
            conditions.append(before("updatedAt", until))
        if work_dates is not None:
            conditions.append(between_dates("belongsToDate", *work_dates))
        query = {"$filter": all_of(*conditions), "$orderby": ENTRY_ORDER}
        return self._read_all(self.time_tracking_url, TIME_ENTRIES_PATH, query)

    def time_entries_newer_than(
        self, newest: Mapping[date, datetime | None]
    ) -> list[dict[str, Any]]:
        """Entries of each work date in ``newest`` whose ``updatedAt`` is after the date's
        instant (every entry of a date mapped to None), in one query: what changed at
        Jibble since the newest version held of each date."""
        if not newest:
            return []
        clauses = [
            all_of(between_dates("belongsToDate", day, day), after("updatedAt", moment))
            if moment is not None
            else between_dates("belongsToDate", day, day)
            for day, moment in sorted(newest.items())
        ]
        query = {"$filter": any_of(*clauses), "$orderby": ENTRY_ORDER}
        return self._read_all(self.time_tracking_url, TIME_ENTRIES_PATH, query)

    def tracked_time_by_member(
        self, first: date, last: date
    ) -> dict[str, float] | ReportUnavailable:
        """Jibble's own tracked seconds per person id for the work dates [first, last]
        (``TrackedTimeReport``, ``groupBy=Member``), or why this tenant cannot have them."""
        query = {"from": first.isoformat(), "to": last.isoformat(), "groupBy": "Member"}
        try:
            rows = self._read_all(
                self.time_attendance_url, TRACKED_TIME_REPORT_PATH, query, self._attendance_reader
            )
        except JibbleStatusError as error:
            if error.status == 402:
                return ReportUnavailable(
                    "not available: the Jibble plan does not include TrackedTimeReport "
                    f"(402 {error.code or 'payment required'})",
                    402,
                )
            if error.status == 404:
                return ReportUnavailable(
                    "not available: this Jibble tenant has no TrackedTimeReport (404 at "
                    f"{self.time_attendance_url}; see JIBBLE_TIME_ATTENDANCE_URL)",
                    404,
                )
            raise
        try:
            return tracked_seconds_by_member(rows)
        except ValueError as error:
            raise JibbleError(f"GET {TRACKED_TIME_REPORT_PATH}: {error}") from None

    def _read_all(
        self,
        base_url: str,
        path: str,
        query: Mapping[str, str],
        reader: PageReader | None = None,
    ) -> list[dict]:
        try:
            return (reader or self._reader).read_all(Collection(f"{base_url}{path}", path, query))
        except PagingError as error:
            raise JibbleError(str(error)) from None

    # --------------------------------------------------------------------- requests

    def _get_json(self, url: str, params: Mapping[str, Any] | None, path: str) -> dict:
        response = self._send_authorised(self._session, url, params, path)
        return self._json_body(response, path)

    def _get_attendance_json(self, url: str, params: Mapping[str, Any] | None, path: str) -> dict:
        response = self._send_authorised(self._attendance, url, params, path)
        return self._json_body(response, path)

    def _json_body(self, response: httpx.Response, path: str) -> dict:
        try:
            body = orjson.loads(response.content)  # pages of entries: the bulk of a run
        except orjson.JSONDecodeError:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise JibbleError(
                f"GET {path}: the answer is not JSON ({kind}); check the Jibble URL settings "
                "(JIBBLE_IDENTITY_URL, JIBBLE_WORKSPACE_URL, JIBBLE_TIME_TRACKING_URL, "
                "JIBBLE_TIME_ATTENDANCE_URL)"
            ) from None
        if not isinstance(body, dict):
            raise JibbleError(f"GET {path}: the answer is not a JSON object")
        rows = body.get("value")
        with self._counts_lock:
            self._pages += 1
            self._rows += len(rows) if isinstance(rows, list) else 0
        return body

    def _send_authorised(
        self, session: ApiSession, url: str, params: Mapping[str, Any] | None, path: str
    ) -> httpx.Response:
        """One GET with a valid token; a 401 refreshes the token and tries once more."""
        response = self._send(session, "GET", url, params=params)
        if response.status_code == 401:
            self._drop_token(_token_of(response.request))
            response = self._send(session, "GET", url, params=params)
            if response.status_code == 401:
                raise JibbleAuthError(
                    f"GET {path}: Jibble refused a freshly issued access token (401). "
                    "Check that the API client of JIBBLE_CLIENT_ID may read this endpoint."
                )
        _raise_for_status(response, f"GET {path}")
        return response

    def _send(self, session: ApiSession, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return session.http.request(method, url, **kwargs)
        except ServiceUnavailable as error:
            raise JibbleUnavailableError(
                f"{error}. Jibble may be down or refusing requests; try again later."
            ) from None

    # ------------------------------------------------------------------------ token

    def _authorise(self, request: httpx.Request) -> None:
        request.headers["Authorization"] = f"Bearer {self._valid_token()}"

    def _drop_token(self, used: str) -> None:
        """Forgets the token a request was refused with (unless another thread already got a
        new one)."""
        with self._token_lock:
            if self._token is not None and self._token.value == used:
                self._token = None

    def _valid_token(self) -> str:
        with self._token_lock:
            if self._token is None or time.monotonic() >= self._token.refresh_at:
                self._token = self._request_token()
                with self._counts_lock:
                    self._token_refreshes += 1
            return self._token.value

    def _request_token(self) -> _Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        url = f"{self.identity_url}{TOKEN_PATH}"
        response = self._send(self._identity, "POST", url, data=form)
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


def _token_of(request: httpx.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


def _raise_for_status(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = response.text[:200].strip()
    message = f"{what}: Jibble answered {status}" + (f": {detail}" if detail else "")
    raise JibbleStatusError(message, status, _error_code(response))


def _error_code(response: httpx.Response) -> str | None:
    """The OData error's ``code`` (``{"error": {"code": ...}}``), or a plain ``error`` text."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("code")
    return error if isinstance(error, str) else None


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    return f"HTTP {response.status_code}, {error}" if error else f"HTTP {response.status_code}"

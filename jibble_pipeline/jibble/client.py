"""Jibble API client: OAuth2 client credentials, complete paging (docs/jibble-api.md).

Requests go through the project's one HTTP layer (``jibble_pipeline.transport``): paced to
the API's limits, 429s waited out, faults retried. Collections are read by ``PageReader``
(``jibble.paging``): several pages at once, exact under Jibble's silent page cap. Time
entries are read one work date per query, so a range's dates arrive whole and in order
while many of its pages are in flight. Secrets never appear in logs or errors: the token
travels in a header, the client secret only in the token request's body.

What the tenant accepts is learned, not assumed (``jibble.tenant``): a refused sort order,
report shape or filter falls back to the next shape that yields the same rows, and the
``TenantProfile`` records it. Rows of another organisation the credentials can see are left
out of every collection (``organization_id``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson

from jibble_pipeline.jibble.odata import after, all_of, any_of, at_or_after, before, between_dates
from jibble_pipeline.jibble.paging import Collection, PageReader, PagingError
from jibble_pipeline.jibble.reports import (
    ReportUnavailable,
    duration_format,
    tracked_seconds_by_member,
)
from jibble_pipeline.jibble.tenant import (
    ENTRY_ORDER,
    ENTRY_ORDERS,
    HOUR_ENTRIES,
    HOUR_ENTRY_FILTERS,
    ORGANIZATION,
    RATE_LIMIT,
    REPORT_DURATIONS,
    REPORT_SHAPE,
    REPORT_SHAPES,
    UPDATED_AT_FILTER,
    WORKSPACE_ORDER,
    WORKSPACE_ORDERS,
    TenantProfile,
)
from jibble_pipeline.settings.pipeline import PRODUCTION_TIME_ATTENDANCE_URL
from jibble_pipeline.transport import (
    ApiSession,
    Pacing,
    Quota,
    RetryPolicy,
    ServiceUnavailable,
    open_session,
)
from jibble_pipeline.transport.rate_limits import period_seconds

TOKEN_PATH = "/connect/token"
PEOPLE_PATH = "/v1/People"
GROUPS_PATH = "/v1/Groups"
ACTIVITIES_PATH = "/v1/Activities"
ORGANIZATIONS_PATH = "/v1/Organizations"
TIME_ENTRIES_PATH = "/v1/TimeEntries"
HOUR_ENTRIES_PATH = "/v1/HourEntries"
TRACKED_TIME_REPORT_PATH = "/v1/TrackedTimeReport"


class JibbleError(RuntimeError):
    """The Jibble API answered in a way the pipeline cannot use; the message says what."""


class JibbleStatusError(JibbleError):
    """Jibble answered an HTTP error status; ``code`` is the OData error code when it sent one,
    ``detail`` the start of what it said."""

    def __init__(self, message: str, status: int, code: str | None, detail: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail


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
class Probe:
    """One request as it was answered, for diagnosis (``jibble.doctor``): never an error for
    an HTTP status. ``body`` is the parsed JSON, or the text when it is not JSON."""

    status: int
    body: Any
    headers: Mapping[str, str]
    seconds: float

    @property
    def rows(self) -> list:
        rows = self.body.get("value") if isinstance(self.body, dict) else None
        return rows if isinstance(rows, list) else []

    @property
    def message(self) -> str:
        """What an error answer said, shortened."""
        if isinstance(self.body, dict):
            error = self.body.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return error["message"][:200]
            if isinstance(error, str):
                return error[:200]
        return str(self.body)[:200].strip()


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
        profile: TenantProfile | None = None,
        organization_id: str | None = None,
    ):
        """``share``: how many runs use the API right now (each paces at its share).
        ``profile``: what is known of the tenant (learned here otherwise).
        ``organization_id``: the organisation to read when the credentials see several
        (default: the one the token names)."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.profile = profile or TenantProfile()
        self.configured_organization = organization_id or None
        self.token_organization: str | None = None
        self.foreign: dict[str, int] = {}  # rows of another organisation left out, by path
        self._foreign_people: set[str] | None = None
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
        self._token_fields: dict[str, Any] = {}
        remembered = _quota(self.profile.get(RATE_LIMIT))
        if remembered is not None:
            self._session.pacer.stated(remembered)

    def __enter__(self) -> JibbleClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()
        self._attendance.close()
        self._identity.close()

    @property
    def stated_quota(self) -> Quota | None:
        """The rate limit the API's answers stated, once learned."""
        return self._session.pacer.quota

    def learn_rate_limit(self) -> None:
        """The limit the answers stated, into the profile (called when a session ends)."""
        quota = self._session.pacer.quota
        if quota is not None:
            value = f"{quota.requests}/{quota.period_seconds:g}s"
            self.profile.learn(RATE_LIMIT, value, f"{quota}, from the answers' headers")

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
        return self._ours(PEOPLE_PATH, self._workspace_list(PEOPLE_PATH))

    def groups(self) -> list[dict[str, Any]]:
        return self._ours(GROUPS_PATH, self._workspace_list(GROUPS_PATH))

    def activities(self) -> list[dict[str, Any]]:
        return self._ours(ACTIVITIES_PATH, self._workspace_list(ACTIVITIES_PATH))

    def organizations(self) -> list[dict[str, Any]]:
        """Every organisation the credentials see (not only the one read)."""
        return self._workspace_list(ORGANIZATIONS_PATH)

    def time_entries_by_date(
        self, dates: Iterable[date]
    ) -> Iterator[tuple[date, list[dict[str, Any]]]]:
        """Each work date with all its entries (any status), in the order given, several
        dates and pages in flight at once.

        Until the tenant's sort order is known, the first date is read alone, trying the
        orders it may accept (``tenant.ENTRY_ORDERS``); the rest follow with the one it
        took."""
        days = list(dates)
        url = f"{self.time_tracking_url}{TIME_ENTRIES_PATH}"

        def query(day: date, order: str) -> Collection:
            return Collection(url, TIME_ENTRIES_PATH, _query(_on(day), order), key=day)

        if days and self.profile.get(ENTRY_ORDER) is None:
            first = days.pop(0)
            rows = self._negotiated(
                ENTRY_ORDER,
                ENTRY_ORDERS,
                lambda order: self._read(query(first, order)),
                "TimeEntries $orderby",
            )
            yield first, self._ours(TIME_ENTRIES_PATH, rows)
        order = self.profile.get(ENTRY_ORDER) or ""
        yielded = False
        try:
            for collection, rows in self._reader.read(query(day, order) for day in days):
                yielded = True
                yield collection.key, self._ours(TIME_ENTRIES_PATH, rows)
        except JibbleStatusError as error:
            if yielded or error.status != 400:
                raise
            self.profile.forget(ENTRY_ORDER)  # remembered, but refused now: learn it again
            yield from self.time_entries_by_date(days)
        except PagingError as error:
            raise JibbleError(str(error)) from None

    def time_entries_changed_since(
        self,
        since: datetime,
        until: datetime | None = None,
        *,
        work_dates: tuple[date, date] | None = None,
    ) -> list[dict[str, Any]] | None:
        """Entries created, edited or archived at or after ``since`` (``updatedAt``), of the
        work dates ``work_dates`` (first, last) when given; None when the tenant cannot
        filter on ``updatedAt``."""
        conditions = [at_or_after("updatedAt", since)]
        if until is not None:
            conditions.append(before("updatedAt", until))
        if work_dates is not None:
            conditions.append(between_dates("belongsToDate", *work_dates))
        return self._changed_entries(all_of(*conditions))

    def time_entries_newer_than(
        self, newest: Mapping[date, datetime | None]
    ) -> list[dict[str, Any]] | None:
        """Entries of each work date in ``newest`` whose ``updatedAt`` is after the date's
        instant (every entry of a date mapped to None), in one query: what changed at
        Jibble since the newest version held of each date. None when the tenant cannot
        filter on ``updatedAt``."""
        if not newest:
            return []
        clauses = [
            all_of(_on(day), after("updatedAt", moment)) if moment is not None else _on(day)
            for day, moment in sorted(newest.items())
        ]
        return self._changed_entries(any_of(*clauses))

    def tracked_time_by_member(
        self, first: date, last: date
    ) -> dict[str, float] | ReportUnavailable:
        """Jibble's own tracked seconds per person id for the work dates [first, last]
        (``TrackedTimeReport``, ``groupBy=Member``), or why this tenant cannot have them.
        The report is asked in the shape the tenant takes (``tenant.REPORT_SHAPES``)."""
        try:
            rows = self._negotiated(
                REPORT_SHAPE,
                REPORT_SHAPES,
                lambda shape: self._report(first, last, shape),
                "TrackedTimeReport",
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
        durations = duration_format(rows)
        if durations is not None:
            self.profile.learn(REPORT_DURATIONS, durations, "as the report writes them")
        try:
            return tracked_seconds_by_member(rows)
        except ValueError as error:
            raise JibbleError(f"GET {TRACKED_TIME_REPORT_PATH}: {error}") from None

    def hour_entries(self, first: date, last: date) -> list[dict[str, Any]] | None:
        """Hours logged as durations (``HourEntries``) of the work dates [first, last], or
        None when the tenant has none to give (404, 402)."""
        url = f"{self.time_tracking_url}{HOUR_ENTRIES_PATH}"

        def read(field: str) -> list[dict]:
            condition = between_dates(field, first, last) if field else ""
            query = {"$filter": condition} if condition else {}
            rows = self._read(Collection(url, HOUR_ENTRIES_PATH, query))
            if field:
                return rows
            return [row for row in rows if _work_date_in(row, first, last)]

        try:
            rows = self._negotiated(HOUR_ENTRIES, HOUR_ENTRY_FILTERS, read, "HourEntries $filter")
        except JibbleStatusError as error:
            if error.status in (402, 403, 404):
                return None
            raise
        return self._ours(HOUR_ENTRIES_PATH, rows)

    @property
    def organization_id(self) -> str | None:
        """The organisation read: the one configured, else the one the token names."""
        if self.configured_organization is None and self.token_organization is None:
            self._valid_token()  # the token answer names the credentials' organisation
        return self.configured_organization or self.token_organization

    # ------------------------------------------------------------- what is learned

    def _negotiated(
        self,
        capability: str,
        candidates: tuple[str, ...],
        attempt: Callable[[str], Any],
        what: str,
    ) -> Any:
        """``attempt`` with the shape the tenant is known to take, else with each candidate
        in turn until one is not refused (400); the one taken is learned."""
        known = self.profile.get(capability)
        order = list(candidates)
        if known is not None:
            order = [known, *(c for c in candidates if c != known)]
        refusals: list[str] = []
        for candidate in order:
            try:
                result = attempt(candidate)
            except JibbleStatusError as error:
                if error.status != 400:
                    raise
                refusals.append(f"{candidate or '(none)'} refused: {error.detail}")
                if candidate == known:
                    self.profile.forget(capability)
                continue
            evidence = "; ".join(refusals) if refusals else "accepted"
            self.profile.learn(capability, candidate, evidence)
            return result
        raise JibbleError(
            f"GET {what}: Jibble refused every form the pipeline can use "
            f"({'; '.join(refusals)}). Run `jibble-pipeline doctor` and report what it prints."
        )

    def _changed_entries(self, condition: str) -> list[dict[str, Any]] | None:
        """Entries matching an ``updatedAt`` condition, or None when the tenant refuses a
        filter on ``updatedAt``. A 400 is told apart (once) by the simplest query on
        ``updatedAt``: refused, the filter is; accepted, the sort order is learned."""
        if self.profile.get(UPDATED_AT_FILTER) == "refused":
            return None

        def read(order: str) -> list[dict]:
            return self._read(self._time_entries(_query(condition, order)))

        known = self.profile.get(ENTRY_ORDER)
        try:
            rows = read(ENTRY_ORDERS[0] if known is None else known)
        except JibbleStatusError as error:
            if error.status != 400:
                raise
            if self._updated_at_refused():
                return None
            rows = self._negotiated(ENTRY_ORDER, ENTRY_ORDERS, read, "TimeEntries $orderby")
        else:
            if known is None:
                self.profile.learn(ENTRY_ORDER, ENTRY_ORDERS[0], "accepted")
        self.profile.learn(UPDATED_AT_FILTER, "accepted", "accepted")
        return self._ours(TIME_ENTRIES_PATH, rows)

    def updated_at_filterable(self) -> bool:
        """Whether the tenant takes a ``$filter`` on ``updatedAt`` (asked once if unknown)."""
        known = self.profile.get(UPDATED_AT_FILTER)
        if known is None:
            refused = self._updated_at_refused()
            if not refused:
                self.profile.learn(UPDATED_AT_FILTER, "accepted", "accepted")
            return not refused
        return known != "refused"

    def _updated_at_refused(self) -> bool:
        """Asks the simplest ``updatedAt`` filter; a 400 is learned as the tenant's refusal."""
        query = {"$filter": at_or_after("updatedAt", datetime.now(UTC)), "$top": "1"}
        try:
            self._read(self._time_entries(query), whole=False)
        except JibbleStatusError as probe:
            if probe.status != 400:
                raise
            self.profile.learn(UPDATED_AT_FILTER, "refused", f"400: {probe.detail}")
            return True
        return False

    def _time_entries(self, query: Mapping[str, str]) -> Collection:
        return Collection(f"{self.time_tracking_url}{TIME_ENTRIES_PATH}", TIME_ENTRIES_PATH, query)

    def _workspace_list(self, path: str) -> list[dict[str, Any]]:
        url = f"{self.workspace_url}{path}"
        return self._negotiated(
            WORKSPACE_ORDER,
            WORKSPACE_ORDERS,
            lambda order: self._read(Collection(url, path, _query("", order))),
            f"{path} $orderby",
        )

    def _report(self, first: date, last: date, shape: str) -> list[dict]:
        query = {"from": first.isoformat(), "to": last.isoformat(), "groupBy": "Member"}
        url = f"{self.time_attendance_url}{TRACKED_TIME_REPORT_PATH}"
        if shape == "paged":
            collection = Collection(url, TRACKED_TIME_REPORT_PATH, query)
            return self._read(collection, reader=self._attendance_reader)
        name, _, value = shape.partition("=")
        body = self._get_attendance_json(url, {**query, name: value}, TRACKED_TIME_REPORT_PATH)
        rows = body.get("value")
        if not isinstance(rows, list):
            raise JibbleError(f"GET {TRACKED_TIME_REPORT_PATH}: the answer has no 'value' list")
        return rows

    # --------------------------------------------------------------- organisations

    def _ours(self, path: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows of the organisation read: a row of another one (its ``organizationId``,
        or for an entry without one, its person's) is left out and counted."""
        ours = self.organization_id
        seen = {row.get("organizationId") for row in rows if isinstance(row, dict)} - {None}
        if ours is None:
            if len(seen) > 1:
                raise JibbleError(
                    f"GET {path}: these credentials see {len(seen)} organisations "
                    f"({', '.join(sorted(map(str, seen)))}) and Jibble's token names none: "
                    "set JIBBLE_ORGANIZATION_ID to the one to read."
                )
            return rows
        if not seen - {ours} and not any(
            isinstance(row, dict) and row.get("organizationId") is None for row in rows
        ):
            return rows
        if path == PEOPLE_PATH and rows and ours not in seen and self.configured_organization:
            raise JibbleError(
                f"JIBBLE_ORGANIZATION_ID is {ours}, which these credentials do not see "
                f"(their people belong to {', '.join(sorted(map(str, seen)))})."
            )
        foreign_people = self._people_elsewhere() if path != PEOPLE_PATH else set()
        kept = [row for row in rows if not _elsewhere(row, ours, foreign_people)]
        if len(kept) < len(rows):
            with self._counts_lock:
                self.foreign[path] = self.foreign.get(path, 0) + len(rows) - len(kept)
        return kept

    def _people_elsewhere(self) -> set[str]:
        """Ids of the people of other organisations (read once, when an entry lacks its
        organisation)."""
        if self._foreign_people is None:
            ours = self.organization_id
            everyone = self._workspace_list(PEOPLE_PATH)
            self._foreign_people = {
                str(p.get("id"))
                for p in everyone
                if isinstance(p, dict) and p.get("organizationId") not in (None, ours)
            }
        return self._foreign_people

    def _read(
        self, collection: Collection, reader: PageReader | None = None, whole: bool = True
    ) -> list[dict]:
        """Every row of a collection (``whole``), or the first page only (a probe)."""
        try:
            if whole:
                return (reader or self._reader).read_all(collection)
            body = self._get_json(collection.url, dict(collection.query), collection.path)
            rows = body.get("value")
            return rows if isinstance(rows, list) else []
        except PagingError as error:
            raise JibbleError(str(error)) from None

    # --------------------------------------------------------------------- requests

    def probe(self, host: str, path: str, params: Mapping[str, str] | None = None) -> Probe:
        """One GET of ``path`` on ``host`` (``workspace``, ``time_tracking`` or
        ``time_attendance``), with a valid token, answered as it is (429s waited out and
        faults retried as always)."""
        base = {
            "workspace": self.workspace_url,
            "time_tracking": self.time_tracking_url,
            "time_attendance": self.time_attendance_url,
        }[host]
        session = self._attendance if host == "time_attendance" else self._session
        started = time.monotonic()
        response = self._send(session, "GET", f"{base}{path}", params=params)
        if response.status_code == 401:
            self._drop_token(_token_of(response.request))
            response = self._send(session, "GET", f"{base}{path}", params=params)
        try:
            body: Any = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = response.text
        with self._counts_lock:
            self._pages += 1
        return Probe(response.status_code, body, response.headers, time.monotonic() - started)

    def token_answer(self) -> dict[str, Any]:
        """The token answer's fields but the token itself (for diagnosis)."""
        self._valid_token()
        return dict(self._token_fields)

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
        self._token_fields = {k: v for k, v in body.items() if k != "access_token"}
        organization = body.get("organizationId")
        if isinstance(organization, str) and organization:
            self.token_organization = organization
            if self.configured_organization is None:
                self.profile.learn(ORGANIZATION, organization, "named by the token answer")
        # Refresh a little before expiry: a tenth of the lifetime, at most a minute.
        return _Token(value, time.monotonic() + lifetime - min(60.0, lifetime / 10))


def _token_of(request: httpx.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


def _raise_for_status(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = _error_message(response) or response.text[:200].strip()
    message = f"{what}: Jibble answered {status}" + (f": {detail}" if detail else "")
    raise JibbleStatusError(message, status, _error_code(response), detail)


def _error_message(response: httpx.Response) -> str | None:
    """The OData error's ``message`` (``{"error": {"message": ...}}``), shortened."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message[:200] if isinstance(message, str) else None


def _on(day: date) -> str:
    return between_dates("belongsToDate", day, day)


def _query(condition: str, order: str) -> dict[str, str]:
    """``$filter`` and ``$orderby`` options, each left out when empty."""
    query = {"$filter": condition} if condition else {}
    return {**query, "$orderby": order} if order else query


def _elsewhere(row: Any, ours: str, foreign_people: set[str]) -> bool:
    if not isinstance(row, dict):
        return False  # quarantined where it is validated
    organization = row.get("organizationId")
    if organization is not None:
        return organization != ours
    return str(row.get("personId")) in foreign_people


def _work_date_in(row: Any, first: date, last: date) -> bool:
    value = row.get("belongsToDate") or row.get("date") if isinstance(row, dict) else None
    try:
        return first <= date.fromisoformat(str(value)[:10]) <= last
    except ValueError:
        return False


def _quota(text: str | None) -> Quota | None:
    """``3/1s`` (as the profile keeps a stated limit) as a quota."""
    requests, _, period = (text or "").partition("/")
    seconds = period_seconds(period) if period else None
    return Quota(int(requests), seconds) if requests.isdigit() and seconds else None


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

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

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx
import orjson

from jibble_pipeline.jibble import change_feeds, report_totals
from jibble_pipeline.jibble.errors import (
    JibbleAuthError,
    JibbleError,
    JibbleStatusError,
    raise_for_status,
    send,
)
from jibble_pipeline.jibble.odata import on_work_date, query_options
from jibble_pipeline.jibble.organisations import OrganisationFilter
from jibble_pipeline.jibble.paging import Collection, PageReader, PagingError
from jibble_pipeline.jibble.paths import (
    ACTIVITIES_PATH,
    GROUPS_PATH,
    ORGANIZATIONS_PATH,
    PEOPLE_PATH,
    TIME_ENTRIES_PATH,
)
from jibble_pipeline.jibble.probing import Probe, negotiated
from jibble_pipeline.jibble.reports import ReportUnavailable
from jibble_pipeline.jibble.tenant import (
    ENTRY_ORDER,
    ENTRY_ORDERS,
    ORGANIZATION,
    RATE_LIMIT,
    WORKSPACE_ORDER,
    WORKSPACE_ORDERS,
    TenantProfile,
)
from jibble_pipeline.jibble.tokens import AccessTokens
from jibble_pipeline.settings.catalog import PRODUCTION_TIME_ATTENDANCE_URL
from jibble_pipeline.transport import (
    ApiSession,
    Pacing,
    Quota,
    RequestStats,
    RetryPolicy,
    open_session,
)


@dataclass
class ClientStats(RequestStats):
    """What a session cost, for the run's metadata: the requests of all its hosts, and the
    pages, rows and token refreshes among them."""

    pages: int = 0
    rows: int = 0
    token_refreshes: int = 0


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
        self.identity_url = identity_url.rstrip("/")
        self.workspace_url = workspace_url.rstrip("/")
        self.time_tracking_url = time_tracking_url.rstrip("/")
        self.time_attendance_url = time_attendance_url.rstrip("/")
        self.pacing = pacing or Pacing()
        self.log = log or logging.getLogger(__name__)
        retry = retry or RetryPolicy()

        def api_session(api: str) -> ApiSession:
            return open_session(
                api,
                pacing=self.pacing,
                retry=retry,
                timeout_seconds=timeout_seconds,
                headers={"Accept": "application/json"},
                log=self.log,
                share=share,
                prepare=self.tokens.authorise,
            )

        self._identity = open_session(
            f"jibble-identity:{client_id}",
            pacing=Pacing(concurrency=1),
            retry=retry,
            timeout_seconds=timeout_seconds,
            headers={"Accept": "application/json"},
            log=self.log,
        )
        self.tokens = AccessTokens(
            self._identity, self.identity_url, client_id, client_secret, self._token_named
        )
        self._session = api_session(f"jibble:{client_id}")
        # Jibble's own totals live on another host, with limits of their own; same token.
        self._attendance = api_session(f"jibble-time-attendance:{client_id}")
        self.organisations = OrganisationFilter(
            lambda: self.organization_id,
            self.configured_organization,
            lambda: self._workspace_list(PEOPLE_PATH),
        )
        self._reader = PageReader(
            self.get_json, page_size=page_size, concurrency=self.pacing.concurrency
        )
        self._attendance_reader = PageReader(
            functools.partial(self.get_json, attendance=True), page_size=page_size, concurrency=1
        )
        self._counts_lock = threading.Lock()
        self._pages = self._rows = 0
        remembered = Quota.parse_short(self.profile.get(RATE_LIMIT))
        if remembered is not None:
            self._session.pacer.stated(remembered)

    def __enter__(self) -> JibbleClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        for session in (self._session, self._attendance, self._identity):
            session.close()

    @property
    def stated_quota(self) -> Quota | None:
        """The rate limit the API's answers stated, once learned."""
        return self._session.pacer.quota

    def learn_rate_limit(self) -> None:
        """The limit the answers stated, into the profile (called when a session ends)."""
        quota = self._session.pacer.quota
        if quota is not None:
            self.profile.learn(RATE_LIMIT, quota.short, f"{quota}, from the answers' headers")

    @property
    def stats(self) -> ClientStats:
        stats = ClientStats(
            pages=self._pages, rows=self._rows, token_refreshes=self.tokens.refreshes
        )
        for session in (self._session, self._identity, self._attendance):
            stats.add(session.stats)
        return stats

    @property
    def foreign(self) -> dict[str, int]:
        """Rows of another organisation left out, by path."""
        return self.organisations.foreign

    @property
    def token_organization(self) -> str | None:
        """The organisation the token answer names, once a token was issued."""
        return self.tokens.organization

    @property
    def organization_id(self) -> str | None:
        """The organisation read: the one configured, else the one the token names."""
        if self.configured_organization is None and self.tokens.organization is None:
            self.tokens.valid()  # the token answer names the credentials' organisation
        return self.configured_organization or self.tokens.organization

    def _token_named(self, organization: str) -> None:
        if self.configured_organization is None:
            self.profile.learn(ORGANIZATION, organization, "named by the token answer")

    # ------------------------------------------------------------------ collections

    def people(self) -> list[dict[str, Any]]:
        return self.organisations.ours(PEOPLE_PATH, self._workspace_list(PEOPLE_PATH))

    def groups(self) -> list[dict[str, Any]]:
        return self.organisations.ours(GROUPS_PATH, self._workspace_list(GROUPS_PATH))

    def activities(self) -> list[dict[str, Any]]:
        return self.organisations.ours(ACTIVITIES_PATH, self._workspace_list(ACTIVITIES_PATH))

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
            return Collection(
                url, TIME_ENTRIES_PATH, query_options(on_work_date(day), order), key=day
            )

        if days and self.profile.get(ENTRY_ORDER) is None:
            first = days.pop(0)
            rows = negotiated(
                self.profile,
                ENTRY_ORDER,
                ENTRY_ORDERS,
                lambda order: self.read(query(first, order)),
                "TimeEntries $orderby",
            )
            yield first, self.organisations.ours(TIME_ENTRIES_PATH, rows)
        order = self.profile.get(ENTRY_ORDER) or ""
        yielded = False
        try:
            for collection, rows in self._reader.read(query(day, order) for day in days):
                yielded = True
                yield collection.key, self.organisations.ours(TIME_ENTRIES_PATH, rows)
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
        """See ``change_feeds.changed_since``."""
        return change_feeds.changed_since(self, since, until, work_dates)

    def time_entries_newer_than(
        self, newest: Mapping[date, datetime | None]
    ) -> list[dict[str, Any]] | None:
        """See ``change_feeds.newer_than``."""
        return change_feeds.newer_than(self, newest)

    def updated_at_filterable(self) -> bool:
        """See ``change_feeds.updated_at_filterable``."""
        return change_feeds.updated_at_filterable(self)

    def tracked_time_by_member(
        self, first: date, last: date
    ) -> dict[str, float] | ReportUnavailable:
        """See ``report_totals.tracked_time_by_member``."""
        return report_totals.tracked_time_by_member(self, first, last)

    def hour_entries(self, first: date, last: date) -> list[dict[str, Any]] | None:
        """See ``report_totals.hour_entries``."""
        return report_totals.hour_entries(self, first, last)

    # --------------------------------------------------------------------- requests

    def read(
        self, collection: Collection, *, attendance: bool = False, whole: bool = True
    ) -> list[dict]:
        """Every row of a collection (``whole``), or the first page only (a probe);
        ``attendance``: a collection of the time-attendance host."""
        try:
            if whole:
                reader = self._attendance_reader if attendance else self._reader
                return reader.read_all(collection)
            body = self.get_json(collection.url, dict(collection.query), collection.path)
            rows = body.get("value")
            return rows if isinstance(rows, list) else []
        except PagingError as error:
            raise JibbleError(str(error)) from None

    def _workspace_list(self, path: str) -> list[dict[str, Any]]:
        url = f"{self.workspace_url}{path}"
        return negotiated(
            self.profile,
            WORKSPACE_ORDER,
            WORKSPACE_ORDERS,
            lambda order: self.read(Collection(url, path, query_options("", order))),
            f"{path} $orderby",
        )

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
        response = send(session, "GET", f"{base}{path}", params=params)
        if response.status_code == 401:
            self.tokens.refused(response.request)
            response = send(session, "GET", f"{base}{path}", params=params)
        try:
            body: Any = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = response.text
        with self._counts_lock:
            self._pages += 1
        return Probe(response.status_code, body, response.headers, time.monotonic() - started)

    def token_answer(self) -> dict[str, Any]:
        """The token answer's fields but the token itself (for diagnosis)."""
        self.tokens.valid()
        return dict(self.tokens.answer)

    def get_json(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        path: str,
        *,
        attendance: bool = False,
    ) -> dict:
        """One page (or answer) as a JSON object; ``attendance``: of the time-attendance
        host."""
        session = self._attendance if attendance else self._session
        response = self._send_authorised(session, url, params, path)
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
        response = send(session, "GET", url, params=params)
        if response.status_code == 401:
            self.tokens.refused(response.request)
            response = send(session, "GET", url, params=params)
            if response.status_code == 401:
                raise JibbleAuthError(
                    f"GET {path}: Jibble refused a freshly issued access token (401). "
                    "Check that the API client of JIBBLE_CLIENT_ID may read this endpoint."
                )
        raise_for_status(response, f"GET {path}")
        return response

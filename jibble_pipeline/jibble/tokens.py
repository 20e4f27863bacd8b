"""OAuth2 client-credentials tokens for the Jibble API, shared by a client's threads.

The token travels in a header set just before each request leaves, so however long a
request waited for its turn, it goes with a valid token. The client secret travels only in
the token request's body.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from jibble_pipeline.jibble.errors import (
    JibbleAuthError,
    JibbleError,
    oauth_error,
    raise_for_status,
    send,
)
from jibble_pipeline.jibble.paths import TOKEN_PATH
from jibble_pipeline.transport import ApiSession


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float  # time.monotonic()


class AccessTokens:
    """The tokens of one API client: requested when first needed, refreshed before they
    expire, dropped when a request is refused with one. ``named`` hears of the organisation
    a token answer names."""

    def __init__(
        self,
        identity: ApiSession,
        identity_url: str,
        client_id: str,
        client_secret: str,
        named: Callable[[str], None],
    ):
        self._identity = identity
        self._url = f"{identity_url}{TOKEN_PATH}"
        self._client_id = client_id
        self._client_secret = client_secret
        self._named = named
        self._token: _Token | None = None
        self._lock = threading.Lock()
        self.refreshes = 0
        self.organization: str | None = None  # the one the token answer names
        self.answer: dict[str, Any] = {}  # the token answer's fields but the token itself

    def authorise(self, request: httpx.Request) -> None:
        request.headers["Authorization"] = f"Bearer {self.valid()}"

    def refused(self, request: httpx.Request) -> None:
        """Forgets the token a request was refused with (unless another thread already got
        a new one)."""
        used = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            if self._token is not None and self._token.value == used:
                self._token = None

    def valid(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._token.refresh_at:
                self._token = self._request()
                self.refreshes += 1
            return self._token.value

    def _request(self) -> _Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        response = send(self._identity, "POST", self._url, data=form)
        if response.status_code in (400, 401, 403):
            raise JibbleAuthError(
                f"Jibble rejected the client credentials ({oauth_error(response)}). "
                "Check JIBBLE_CLIENT_ID and JIBBLE_CLIENT_SECRET (and JIBBLE_IDENTITY_URL)."
            )
        raise_for_status(response, f"POST {TOKEN_PATH}")
        try:
            body = response.json()
            value = body["access_token"]
            lifetime = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise JibbleError(f"POST {TOKEN_PATH}: the answer holds no access_token") from exc
        self.answer = {k: v for k, v in body.items() if k != "access_token"}
        organization = body.get("organizationId")
        if isinstance(organization, str) and organization:
            self.organization = organization
            self._named(organization)
        # Refresh a little before expiry: a tenth of the lifetime, at most a minute.
        return _Token(value, time.monotonic() + lifetime - min(60.0, lifetime / 10))

"""What goes wrong with the Jibble API, as errors whose message says what to do."""

from __future__ import annotations

from typing import Any

import httpx

from jibble_pipeline.transport import ApiSession, ServiceUnavailable


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


def send(session: ApiSession, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request through ``session``; an API that stayed unavailable is a
    ``JibbleUnavailableError``."""
    try:
        return session.http.request(method, url, **kwargs)
    except ServiceUnavailable as error:
        raise JibbleUnavailableError(
            f"{error}. Jibble may be down or refusing requests; try again later."
        ) from None


def raise_for_status(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    error = _error_member(response)
    message = error.get("message") if isinstance(error, dict) else None
    detail = (message[:200] if isinstance(message, str) else "") or response.text[:200].strip()
    code = error.get("code") if isinstance(error, dict) else error
    text = f"{what}: Jibble answered {status}" + (f": {detail}" if detail else "")
    raise JibbleStatusError(text, status, code if isinstance(code, str) else None, detail)


def oauth_error(response: httpx.Response) -> str:
    """The status and the OAuth ``error`` of a refused token request."""
    error = _error_member(response)
    return f"HTTP {response.status_code}, {error}" if error else f"HTTP {response.status_code}"


def _error_member(response: httpx.Response) -> Any:
    """The answer's ``error``: OData's ``{"code": ..., "message": ...}``, OAuth's text."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None

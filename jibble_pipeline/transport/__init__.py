"""Outside HTTP APIs through one layer: pacing, rate limits, retries, timeouts (``resilient``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from jibble_pipeline.transport.pacing import Pacer, Pacing, pacer_for
from jibble_pipeline.transport.rate_limits import Quota, retry_after_seconds
from jibble_pipeline.transport.resilient import (
    RequestStats,
    ResilientTransport,
    RetryPolicy,
    ServiceUnavailable,
)

__all__ = [
    "ApiSession",
    "Pacing",
    "Quota",
    "RequestStats",
    "RetryPolicy",
    "ServiceUnavailable",
    "open_session",
    "retry_after_seconds",
]


@dataclass
class ApiSession:
    """An httpx client whose every request goes through the API's pacer and retry policy."""

    http: httpx.Client
    stats: RequestStats
    pacer: Pacer

    def __enter__(self) -> ApiSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()


def open_session(
    api: str,
    *,
    pacing: Pacing,
    retry: RetryPolicy,
    timeout_seconds: float = 30.0,
    headers: Mapping[str, str] | None = None,
    log: logging.Logger | Any | None = None,
    share: Callable[[], int] | None = None,
    prepare: Callable[[httpx.Request], None] | None = None,
    label: str | None = None,
) -> ApiSession:
    """A session with the API ``api`` (the key of its process-wide pacer, e.g.
    ``jibble:<client id>``: sessions with the same key share one set of limits).
    ``prepare`` sees each request just before it is sent, ``label`` names the requests in
    logs and errors instead of their path (see ``ResilientTransport``)."""
    stats = RequestStats()
    pacer = pacer_for(api, pacing, share)
    transport = ResilientTransport(
        pacer,
        retry,
        stats=stats,
        log=log,
        prepare=prepare,
        label=label,
    )
    http = httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 10.0)),
        headers={"User-Agent": "jibble-pipeline", **(headers or {})},
    )
    return ApiSession(http, stats, pacer)

"""One HTTP layer for every outside API (Jibble, Airtable, Resend): an httpx transport that
paces, waits out rate limits and retries faults, so every client gets the same behaviour.

- A **429 is flow control**, not a fault: the API's pacer pauses every request of the
  process for the ``Retry-After`` (or rate-limit reset) the server sent and slows down; the
  request is sent again. It never spends the fault budget; only ``patience`` (how long one
  request may take to get through) bounds it.
- **Stated limits** are learned from every answer (``rate_limits``): the pacer paces below
  the window the headers describe, so a tenant with a small fixed window meets few 429s.
- **Faults** (5xx, timeouts, dropped connections) are retried with jittered exponential
  backoff. A request gives up after ``max_attempts`` faults; the session gives up when the
  API looks down: ``max_consecutive_faults`` faults in a row, or more than
  ``max_fault_ratio`` of its last ``fault_window`` requests. A steady few percent of faults
  over a long backfill never adds up to a failure.
- Logs and errors name the method and path, never a header, body or query secret.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from jibble_pipeline.transport.pacing import Pacer, PacingTimeout
from jibble_pipeline.transport.rate_limits import quota_of, retry_after_seconds, window_of

RETRY_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry a fault, and when to give up (see the module docstring)."""

    max_attempts: int = 8
    initial_wait_seconds: float = 0.5
    max_wait_seconds: float = 30.0
    max_consecutive_faults: int = 30
    max_fault_ratio: float = 0.5
    fault_window: int = 200
    patience_seconds: float = 900.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_consecutive_faults < 1 or self.fault_window < 1:
            raise ValueError("attempts, consecutive faults and the fault window must be >= 1")
        if not 0 < self.max_fault_ratio <= 1:
            raise ValueError("max_fault_ratio must be in (0, 1]")


class ServiceUnavailable(RuntimeError):
    """An outside API stayed unavailable (or kept rate limiting) past the retry policy."""


@dataclass
class RequestStats:
    """What a session's requests cost, for the run's metadata."""

    requests: int = 0
    retries: int = 0
    faults: int = 0
    rate_limited: int = 0
    waited_seconds: float = 0.0

    def add(self, other: RequestStats) -> None:
        """Counts ``other``'s requests in too."""
        for field in fields(RequestStats):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


class FaultBudget:
    """The outcomes of a session's recent requests, to tell a flaky API from a dead one."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self._recent: deque[bool] = deque(maxlen=policy.fault_window)  # True: a fault
        self._in_a_row = 0
        self._lock = threading.Lock()

    def record(self, fault: bool) -> None:
        with self._lock:
            self._recent.append(fault)
            self._in_a_row = self._in_a_row + 1 if fault else 0

    def spent(self) -> str | None:
        """Why the API looks unavailable, or None while it does not."""
        policy = self.policy
        with self._lock:
            if self._in_a_row >= policy.max_consecutive_faults:
                return f"{self._in_a_row} requests in a row failed"
            window = len(self._recent)
            faults = sum(self._recent)
            if window == policy.fault_window and faults > policy.max_fault_ratio * window:
                return f"{faults} of the last {window} requests failed"
        return None


class _Fault(Exception):
    """A failure worth retrying (5xx, timeout, dropped connection)."""


class _RateLimited(Exception):
    """A 429: wait as the server asks (through the pacer), then send again."""


class _Request:
    """The retry state of one request: its faults so far and its deadline."""

    def __init__(self, what: str, policy: RetryPolicy, budget: FaultBudget):
        self.what = what
        self.policy = policy
        self.budget = budget
        self.deadline = time.monotonic() + policy.patience_seconds
        self.faults = 0
        self.gave_up_because: str | None = None

    def stop(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if time.monotonic() >= self.deadline:
            self.gave_up_because = f"it did not get through in {self.policy.patience_seconds:g} s"
        elif isinstance(error, _Fault):
            if self.faults >= self.policy.max_attempts:
                self.gave_up_because = f"{self.faults} attempts failed"
            else:
                self.gave_up_because = self.budget.spent()
        return self.gave_up_because is not None

    def wait(self, state: RetryCallState) -> float:
        """Full-jitter exponential backoff after a fault; after a 429 the pacer waits."""
        error = state.outcome.exception() if state.outcome else None
        if not isinstance(error, _Fault):
            return 0.0
        cap = min(self.policy.max_wait_seconds, self.policy.initial_wait_seconds * 2**self.faults)
        return min(random.uniform(0, cap), max(0.0, self.deadline - time.monotonic()))


class ResilientTransport(httpx.BaseTransport):
    """Every request through ``pacer``; 429s waited out, faults retried (module docstring)."""

    def __init__(
        self,
        pacer: Pacer,
        policy: RetryPolicy,
        *,
        stats: RequestStats | None = None,
        log: logging.Logger | Any | None = None,
        inner: httpx.BaseTransport | None = None,
        prepare: Callable[[httpx.Request], None] | None = None,
        label: str | None = None,
    ):
        """``prepare``: called on each attempt once it has its slot, just before it is sent
        (e.g. to set a bearer token that is still valid however long the wait was).
        ``label``: names the requests in logs and errors instead of their path (a webhook's
        path is its secret)."""
        self.pacer = pacer
        self._label = label
        self._prepare = prepare
        self.policy = policy
        self.budget = FaultBudget(policy)
        self.stats = stats or RequestStats()
        self.log = log or logging.getLogger(__name__)
        self._inner = inner or httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64)
        )
        self._stats_lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        what = f"{request.method} {self._label or request.url.path}"
        state = _Request(what, self.policy, self.budget)
        retrying = Retrying(
            retry=retry_if_exception_type((_Fault, _RateLimited)),
            stop=state.stop,
            wait=state.wait,
            before_sleep=self._log_retry(state),
            reraise=True,
        )
        try:
            return retrying(self._attempt, request, state)
        except (_Fault, _RateLimited) as error:
            raise ServiceUnavailable(
                f"Gave up on {what}: {state.gave_up_because}; last error: {error}"
            ) from None
        except PacingTimeout:
            raise ServiceUnavailable(
                f"Gave up on {what}: it did not get through in "
                f"{self.policy.patience_seconds:g} s (rate limited)"
            ) from None

    def close(self) -> None:
        self._inner.close()

    def _attempt(self, request: httpx.Request, state: _Request) -> httpx.Response:
        waited = time.monotonic()
        with self.pacer.slot(state.deadline):
            self._count(requests=1, waited_seconds=time.monotonic() - waited)
            if self._prepare is not None:
                self._prepare(request)
            try:
                response = self._inner.handle_request(request)
                response.read()
            except httpx.TimeoutException:
                self._fault(state)
                raise _Fault(f"{state.what}: timed out") from None
            except httpx.TransportError as exc:
                self._fault(state)
                raise _Fault(f"{state.what}: connection failed ({type(exc).__name__})") from None
        status = response.status_code
        self._learn_limit(response)
        if status == 429:
            self._count(rate_limited=1)
            wait = retry_after_seconds(response.headers)
            slower = self.pacer.rate_limited(wait)
            if slower is not None:
                said = f"pausing {wait:g} s" if wait is not None else "pausing"
                self.log.info(
                    f"{state.what}: rate limited (429); {said} and slowing to "
                    f"{slower:.1f} requests/s"
                )
            raise _RateLimited(f"{state.what}: rate limited (429)")
        if status in RETRY_STATUSES:
            self._fault(state)
            raise _Fault(f"{state.what}: server error {status}")
        self.budget.record(False)
        return response

    def _learn_limit(self, response: httpx.Response) -> None:
        """The limit an answer states (its window headers, or a 429's text) paces what
        follows; a new one is logged once."""
        window = window_of(response.headers)
        learned = self.pacer.observe(window) if window is not None else None
        if response.status_code == 429 and "text/plain" in response.headers.get("Content-Type", ""):
            quota = quota_of(response.text)
            learned = (self.pacer.stated(quota) if quota is not None else None) or learned
        if learned is not None:
            self.log.info(
                f"The API's answers state a limit of {learned}: pacing at "
                f"{self.pacer.current_rate() or learned.per_second:.1f} requests/s"
            )

    def _fault(self, state: _Request) -> None:
        state.faults += 1
        self.budget.record(True)
        self._count(faults=1)

    def _log_retry(self, state: _Request):
        def log(retry_state: RetryCallState) -> None:
            self._count(retries=1)
            error = retry_state.outcome.exception() if retry_state.outcome else None
            if isinstance(error, _Fault):
                delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
                self.log.warning(
                    f"{error}; retrying in {delay:.1f} s "
                    f"(attempt {state.faults + 1} of {self.policy.max_attempts})"
                )

        return log

    def _count(self, **increments: float) -> None:
        with self._stats_lock:
            for name, amount in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + amount)

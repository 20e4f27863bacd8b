"""Client-side pacing of an outside API: how many requests at once, how many per second.

Jibble publishes no rate limits, so the limits are settings (a ceiling of requests per
second, if known, and a number of concurrent requests), and the pacer adapts to what the
server says: a 429 pauses every request of the process for the ``Retry-After`` the server
asked for and cuts the rate (multiplicative decrease, at most once a second); every second
without a 429 wins a little of it back (additive increase) up to the ceiling. One pacer per
API (``pacer_for``) is shared by every request of the process, whichever thread sends it.

When the answers state the limit (a fixed window: ``rate_limits``), the pacer learns it and
paces a little below it (``WINDOW_SAFETY``): the largest number of requests a window was seen
to admit, over the window's period. An answer that says the window is spent holds every
request until the window ends, so the next request opens a new one instead of meeting a 429.

When several runs call the same API at once (a backfill and the 10-minute tick), each
process paces itself at its share of the limits: ``share`` says how many runs are sharing
the API right now (Dagster's concurrency pool of the API counts them).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from jibble_pipeline.transport.rate_limits import Quota, Window

DECREASE = 0.8  # a 429 cuts the rate to this fraction of what was being sent
DECREASE_INTERVAL_SECONDS = 1.0  # 429s arriving together (in flight at once) cut once
RECOVERY_PER_SECOND = 0.02  # of the reference rate, won back per second without a 429
MIN_RATE = 1.0  # requests per second: a 429 storm never stops a run altogether
UNLIMITED_AGAIN = 1.5  # no ceiling: past this multiple of the rate that got a 429, stop pacing
MEASURE_SECONDS = 2.0  # the window over which the rate actually sent is measured
SHARE_REFRESH_SECONDS = 5.0
# Of a stated limit: paced at this fraction, a window of N requests meets at most N of them
# even when a few requests leave late and the next ones catch up.
WINDOW_SAFETY = 0.95


@dataclass(frozen=True)
class Pacing:
    """The limits of one API for this deployment (settings).

    ``max_requests_per_second``: a ceiling when the API's limit is known (None: adapt to the
    429s only). ``concurrency``: requests in flight at once. ``default_retry_after_seconds``:
    the pause after a 429 that says nothing about when to come back."""

    max_requests_per_second: float | None = None
    concurrency: int = 8
    default_retry_after_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.max_requests_per_second is not None and self.max_requests_per_second <= 0:
            raise ValueError("max_requests_per_second must be positive (or None for no ceiling)")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")


class PacingTimeout(TimeoutError):
    """A request could not get a slot before its deadline."""


class Pacer:
    """Concurrency slots and send times for one API, shared by every thread of a process."""

    def __init__(self, pacing: Pacing, share: Callable[[], int] | None = None):
        self._changed = threading.Condition()
        self._pacing = pacing
        self._share_source = share
        self._share = 1
        self._share_read_at = -SHARE_REFRESH_SECONDS
        self._in_flight = 0
        self._next_send = 0.0  # time.monotonic() before which the next request may not start
        self._paused_until = 0.0
        self._rate: float | None = None  # the adapted rate; None: the ceiling (or no pacing)
        self._reference: float | None = None  # the rate that met the last 429
        self._last_update = time.monotonic()
        self._last_decrease = -DECREASE_INTERVAL_SECONDS
        self._sent: deque[float] = deque()
        self._quota: Quota | None = None  # the limit the answers state, once learned
        self._window_ends = 0.0  # time.monotonic() at which the last window seen ends

    # ----------------------------------------------------------------------- settings

    def configure(self, pacing: Pacing, share: Callable[[], int] | None) -> None:
        """New limits (the settings of the session opened last win)."""
        with self._changed:
            self._pacing = pacing
            self._share_source = share
            self._share_read_at = -SHARE_REFRESH_SECONDS
            self._changed.notify_all()

    @property
    def pacing(self) -> Pacing:
        return self._pacing

    def current_rate(self) -> float | None:
        """Requests per second this process may send now (None: no pacing)."""
        with self._changed:
            return self._rate_now(time.monotonic())

    @property
    def quota(self) -> Quota | None:
        """The limit the API's answers stated, once learned."""
        return self._quota

    # ---------------------------------------------------------------- stated limits

    def observe(self, window: Window) -> Quota | None:
        """An answer's window: the limit it implies is learned (the most requests a window
        was seen to admit: those left after this one, plus this one), and a spent window
        holds every request until it ends. Returns the limit when it changed."""
        with self._changed:
            now = time.monotonic()
            if window.ends_in is not None:
                ends = now + min(max(0.0, window.ends_in), window.period_seconds)
                self._window_ends = ends
                if window.remaining == 0:
                    self._paused_until = max(self._paused_until, ends)
            if window.remaining is None:
                return None
            admitted = window.remaining + 1
            known = self._quota
            if (
                known is not None
                and known.period_seconds == window.period_seconds
                and known.requests >= admitted
            ):
                return None
            return self._learn(Quota(admitted, window.period_seconds))

    def stated(self, quota: Quota) -> Quota | None:
        """A limit stated outright (a 429's text, or one remembered): taken as it is.
        Returns it when it changed."""
        with self._changed:
            return None if quota == self._quota else self._learn(quota)

    def _learn(self, quota: Quota) -> Quota:
        self._quota = quota
        self._rate = self._reference = None  # paced at the stated limit from now on
        self._changed.notify_all()
        return quota

    # ---------------------------------------------------------------------- requests

    @contextmanager
    def slot(self, deadline: float) -> Iterator[None]:
        """Holds one of the concurrent slots while a request is sent, starting it no earlier
        than the rate allows. Raises ``PacingTimeout`` if that would be after ``deadline``
        (a ``time.monotonic()``)."""
        start = self._acquire(deadline)
        try:
            delay = start - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify()

    def _acquire(self, deadline: float) -> float:
        with self._changed:
            while self._in_flight >= self._concurrency_now(time.monotonic()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PacingTimeout("no free request slot before the deadline")
                self._changed.wait(min(remaining, 1.0))
            now = time.monotonic()
            rate = self._rate_now(now)
            start = max(now, self._paused_until, self._next_send if rate else now)
            if start > deadline:
                raise PacingTimeout("the API asked to wait beyond the deadline")
            if rate:
                self._next_send = start + 1.0 / rate
            self._in_flight += 1
            self._sent.append(start)
            self._forget_before(now - MEASURE_SECONDS)
            return start

    def rate_limited(self, wait_seconds: float | None) -> float | None:
        """A 429: every request waits ``wait_seconds`` (the server's ``Retry-After``) and the
        rate is cut. Returns the new rate when it was cut (for the log), else None."""
        with self._changed:
            now = time.monotonic()
            pause = wait_seconds if wait_seconds is not None else self._unsaid_wait(now)
            self._paused_until = max(self._paused_until, now + max(0.0, pause))
            if now - self._last_decrease < DECREASE_INTERVAL_SECONDS:
                return None
            sending = self._rate_now(now) or self._measured_rate(now)
            self._reference = sending
            self._rate = max(MIN_RATE, sending * DECREASE)
            self._last_decrease = self._last_update = now
            return self._rate

    # ---------------------------------------------------------------------- internals

    def _shared_by(self, now: float) -> int:
        if self._share_source is not None and now - self._share_read_at >= SHARE_REFRESH_SECONDS:
            self._share_read_at = now
            try:
                self._share = max(1, int(self._share_source()))
            except Exception:  # an unreadable count must not stop requests: assume alone
                self._share = 1
        return self._share

    def _concurrency_now(self, now: float) -> int:
        return max(1, self._pacing.concurrency // self._shared_by(now))

    def _unsaid_wait(self, now: float) -> float:
        """After a 429 that says nothing about when to come back: until the window last seen
        ends, else a window's period, else the configured default."""
        if self._window_ends > now:
            return self._window_ends - now
        if self._quota is not None:
            return self._quota.period_seconds
        return self._pacing.default_retry_after_seconds

    def _ceiling(self, now: float) -> float | None:
        ceilings = [self._pacing.max_requests_per_second]
        if self._quota is not None:
            ceilings.append(self._quota.per_second * WINDOW_SAFETY)
        known = [c for c in ceilings if c is not None]
        return min(known) / self._shared_by(now) if known else None

    def _rate_now(self, now: float) -> float | None:
        """The adapted rate, won back gradually since the last 429, within the ceiling."""
        ceiling = self._ceiling(now)
        if self._rate is not None and self._reference is not None:
            reference = ceiling or self._reference
            self._rate += RECOVERY_PER_SECOND * reference * (now - self._last_update)
            self._last_update = now
            # Back at the ceiling, or (no ceiling) well past the rate that met the 429.
            recovered_to = ceiling if ceiling is not None else UNLIMITED_AGAIN * self._reference
            if self._rate >= recovered_to:
                self._rate = None
        return ceiling if self._rate is None else min(self._rate, ceiling or self._rate)

    def _forget_before(self, moment: float) -> None:
        while self._sent and self._sent[0] < moment:
            self._sent.popleft()

    def _measured_rate(self, now: float) -> float:
        self._forget_before(now - MEASURE_SECONDS)
        return max(MIN_RATE, len(self._sent) / MEASURE_SECONDS)


_pacers: dict[str, Pacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(key: str, pacing: Pacing, share: Callable[[], int] | None = None) -> Pacer:
    """The process's pacer of the API ``key`` (e.g. ``jibble:<client id>``), configured
    with ``pacing``: every session of the same API in this process shares it."""
    with _pacers_lock:
        pacer = _pacers.get(key)
        if pacer is None:
            pacer = _pacers[key] = Pacer(pacing, share)
        else:
            pacer.configure(pacing, share)
        return pacer

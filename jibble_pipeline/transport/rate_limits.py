"""What an API's answers say about its rate limit: when to come back after a 429, and the
window a fixed-window limiter (ASP.NET's AspNetCoreRateLimit, which Jibble's answers show)
admits.

AspNetCoreRateLimit sends on each answer ``X-Rate-Limit-Limit`` (the rule's period: ``1s``,
``15m``, ``1h``, ``1d``), ``X-Rate-Limit-Remaining`` (requests left in the window) and
``X-Rate-Limit-Reset`` (when the window ends, an ISO instant with seven fractional digits,
``2025-06-11T05:18:51.0588326Z``). Its 429 may carry ``Retry-After`` or nothing, with a body
like ``API calls quota exceeded! maximum admitted 3 per 1s.``. Other APIs send
``Retry-After`` (seconds or an HTTP date) or ``X-RateLimit-Reset`` (a Unix time).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_QUOTA = re.compile(r"maximum admitted (\d+) per (\d+(?:\.\d+)?\s*(?:ms|s|m|h|d))", re.IGNORECASE)


@dataclass(frozen=True)
class Window:
    """A fixed window as one answer tells it: its period, the requests it still admits and
    the seconds until it ends (on this machine's clock; None when not said)."""

    period_seconds: float
    remaining: int | None = None
    ends_in: float | None = None


@dataclass(frozen=True)
class Quota:
    """A limit as a server states it: ``requests`` per ``period_seconds``."""

    requests: int
    period_seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.period_seconds

    def __str__(self) -> str:
        return f"{self.requests} requests per {self.period_seconds:g} s"

    @property
    def short(self) -> str:
        """``3/1s``, as a tenant profile keeps a stated limit (``parse_short`` reads it)."""
        return f"{self.requests}/{self.period_seconds:g}s"

    @classmethod
    def parse_short(cls, text: str | None) -> Quota | None:
        requests, _, period = (text or "").partition("/")
        seconds = period_seconds(period) if period else None
        return cls(int(requests), seconds) if requests.isdigit() and seconds else None


def period_seconds(text: str) -> float | None:
    """``1s`` -> 1.0, ``15m`` -> 900.0, ``1h`` -> 3600.0; None for anything else.

    >>> period_seconds("1s"), period_seconds("15m"), period_seconds("2d"), period_seconds("x")
    (1.0, 900.0, 172800.0, None)
    """
    match = _PERIOD.match(text)
    if match is None:
        return None
    seconds = float(match[1]) * _UNIT_SECONDS[match[2].lower()]
    return seconds if seconds > 0 else None


def instant_in(text: str, now: float | None = None) -> float | None:
    """Seconds from ``now`` (a Unix time; default: the clock) until an ISO 8601 instant, which
    may carry seven fractional digits; None when it is not one."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp() - (time.time() if now is None else now)


def window_of(headers: Mapping[str, str]) -> Window | None:
    """The fixed window an answer's AspNetCoreRateLimit headers describe, or None."""
    period_text = headers.get("X-Rate-Limit-Limit")
    period = period_seconds(period_text) if period_text else None
    if period is None:
        return None
    remaining_text = (headers.get("X-Rate-Limit-Remaining") or "").strip()
    remaining = int(remaining_text) if remaining_text.lstrip("-").isdigit() else None
    reset = headers.get("X-Rate-Limit-Reset")
    ends_in = instant_in(reset) if reset else None
    return Window(period, None if remaining is None else max(0, remaining), ends_in)


def quota_of(body: str) -> Quota | None:
    """The limit a 429's text states (``maximum admitted 3 per 1s``), or None."""
    match = _QUOTA.search(body[:500])
    if match is None:
        return None
    period = period_seconds(match[2].replace(" ", ""))
    requests = int(match[1])
    return Quota(requests, period) if period and requests > 0 else None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait as a 429 says: ``Retry-After`` (seconds or an HTTP date), else
    ``X-Rate-Limit-Reset`` (an ISO instant), else ``X-RateLimit-Reset`` (a Unix time, or
    seconds when small); None when it says nothing."""
    header = headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    iso_reset = headers.get("X-Rate-Limit-Reset")
    if iso_reset:
        seconds = instant_in(iso_reset)
        if seconds is not None:
            return max(0.0, seconds)
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            value = float(reset)
        except ValueError:
            return None
        return max(0.0, value - time.time()) if value > 1_000_000_000 else max(0.0, value)
    return None

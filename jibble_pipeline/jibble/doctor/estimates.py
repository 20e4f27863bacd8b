"""The pace a run would keep (the tenant's rate limit, as its answers state it, or the
configured one) and what a run would cost: requests per work date under the page cap, and the
time a backfill of the configured range would take."""

from __future__ import annotations

import math

from jibble_pipeline.jibble.client import Probe
from jibble_pipeline.jibble.doctor.findings import Finding, Plan
from jibble_pipeline.transport.pacing import WINDOW_SAFETY
from jibble_pipeline.transport.rate_limits import Quota, quota_of, window_of

RATE_LIMIT_HEADERS = (
    "X-Rate-Limit-Limit",
    "X-Rate-Limit-Remaining",
    "X-Rate-Limit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
)


def pace(
    probes: list[Probe], stated_quota: Quota | None, configured: float | None
) -> tuple[Finding, Quota | None]:
    """The rate limit the ``probes``' answers show (headers, a 429's stated quota, else the
    client's ``stated_quota``), the pace the pipeline would keep, and the quota found."""
    seen = {
        name: probe.headers[name]
        for probe in probes
        for name in RATE_LIMIT_HEADERS
        if name in probe.headers
    }
    windows = [w for p in probes if (w := window_of(p.headers)) is not None]
    stated = [q for p in probes if p.status == 429 and (q := quota_of(str(p.body)))]
    limited = sum(1 for p in probes if p.status == 429)
    quota = stated[-1] if stated else stated_quota
    if windows or quota:
        implied = f"; implies {quota}" if quota else ""
        rate = quota.per_second * WINDOW_SAFETY if quota else None
        finding = Finding(
            "rate limit",
            ", ".join(f"{k}: {v}" for k, v in seen.items()) + implied,
            f"paces at {rate:.1f} requests/s" if rate else "learns the limit as it goes",
        )
    else:
        finding = Finding(
            "rate limit",
            "no rate-limit headers" + (f"; {limited} answers were 429" if limited else ""),
            f"paces at JIBBLE_MAX_REQUESTS_PER_SECOND={configured:g}"
            if configured
            else "adapts to 429s; set JIBBLE_MAX_REQUESTS_PER_SECOND if you know the limit",
        )
    return finding, quota


def pages_per_date(entries: float, cap: int | None) -> float:
    """Requests to read a date of ``entries`` with a page cap (None: all in one page)."""
    if cap is None or entries <= cap or cap < 2:
        return 1.0
    return 1 + math.ceil((entries - cap) / (cap - 1))


def backfill(
    plan: Plan, latencies: list[float], per_date: float, cap: int | None, quota: Quota | None
) -> Finding:
    """The backfill of ``plan``'s range, paced by the fastest round trip seen (the one with
    no wait for the rate limit in it), the tenant's quota and the configured limit."""
    latency = min(latencies) if latencies else 0.0
    dates = (plan.last_date - plan.first_date).days + 1
    requests = math.ceil(dates * pages_per_date(per_date, cap))
    rates = [plan.concurrency / max(latency, 0.001)]
    if quota is not None:
        rates.append(quota.per_second * WINDOW_SAFETY)
    if plan.max_requests_per_second:
        rates.append(plan.max_requests_per_second)
    rate = min(rates)
    minutes = requests / rate / 60
    return Finding(
        "backfill estimate",
        f"round trip {latency * 1000:.0f} ms (the fastest of {len(latencies)} answers)",
        f"{plan.first_date}..{plan.last_date} ({dates} work dates, about "
        f"{per_date:.0f} entries each): about {requests:,} requests, "
        f"{_duration(minutes)} at {rate:.1f} requests/s",
    )


def _duration(minutes: float) -> str:
    if minutes < 1:
        return "under a minute"
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    return f"{minutes / 60:.1f} hours"

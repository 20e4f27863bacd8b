"""Daily operations alert configuration from the environment, read in one place.

Emails go through the digests' email backend (``JIBBLE_EMAIL_BACKEND`` and its SMTP or
Resend settings, from ``JIBBLE_DIGEST_FROM``). The webhook URL is a secret (a Slack or
Teams incoming webhook URL carries its own token): only its presence and its kind are read
here; its value reaches Dagster through ``dg.EnvVar`` and is never printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Literal
from urllib.parse import urlsplit

from jibble_pipeline.settings import (
    ConfigurationError,
    choice_setting,
    clock_setting,
    flag_setting,
    load_settings,
    number_setting,
    zone_setting,
)

WebhookFormat = Literal["slack", "teams"]

DEFAULT_SEND_AT = time(8, 0)
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WORKING_DAYS = "mon,tue,wed,thu,fri"
DEFAULT_PACE_DAY = "wed"  # the alert sent on Wednesday (Monday and Tuesday's hours)
# Hosts of Microsoft Teams incoming webhooks (connectors and Power Automate workflows).
TEAMS_HOSTS = ("webhook.office.com", "logic.azure.com", "powerplatform.com")
# The demo's operations team: an address that cannot receive mail (its alert is a dry run).
DEMO_EMAILS = ("operations@staffing.example",)


@dataclass(frozen=True)
class AlertSettings:
    emails: tuple[str, ...]
    webhook_url_set: bool
    webhook_format: WebhookFormat
    timezone: str
    send_at: time
    working_days: tuple[int, ...]  # ISO weekday numbers, Monday = 1
    holidays: tuple[date, ...]
    send_empty: bool
    dry_run: bool
    pace_day: int | None  # ISO weekday of the alert that checks contracts' pace; None: never
    pace_margin_percent: float


def _emails(text: str) -> tuple[str, ...]:
    emails = tuple(e.strip().lower() for e in text.replace(";", ",").split(",") if e.strip())
    bad = [e for e in emails if e.count("@") != 1 or " " in e]
    if bad:
        raise ConfigurationError(
            f"JIBBLE_ALERT_EMAILS must be email addresses separated by commas, got {bad[0]!r}."
        )
    return emails


def _working_days(text: str) -> tuple[int, ...]:
    days = [d.strip().lower()[:3] for d in text.split(",") if d.strip()]
    unknown = [d for d in days if d not in DAY_NAMES]
    if unknown or not days:
        raise ConfigurationError(
            "JIBBLE_ALERT_WORKING_DAYS must be day names separated by commas like "
            f"mon,tue,wed,thu,fri, got {text!r}."
        )
    return tuple(sorted({DAY_NAMES.index(d) + 1 for d in days}))


def _pace_day(text: str) -> int | None:
    day = text.strip().lower()[:3]
    if day in ("non", "off"):
        return None
    if day not in DAY_NAMES:
        raise ConfigurationError(
            f"JIBBLE_ALERT_PACE_DAY must be a day name like wed (or none), got {text!r}."
        )
    return DAY_NAMES.index(day) + 1


def _holidays(text: str) -> tuple[date, ...]:
    try:
        return tuple(sorted({date.fromisoformat(d.strip()) for d in text.split(",") if d.strip()}))
    except ValueError:
        raise ConfigurationError(
            "JIBBLE_ALERT_HOLIDAYS must be dates like 2025-12-25 separated by commas, got "
            f"{text!r}."
        ) from None


def _webhook_format(env: Mapping[str, str], url: str) -> WebhookFormat:
    host = (urlsplit(url).hostname or "").lower()
    inferred = "teams" if host.endswith(TEAMS_HOSTS) else "slack"
    return choice_setting(env, "JIBBLE_ALERT_WEBHOOK_FORMAT", ("slack", "teams"), inferred)  # type: ignore[return-value]


def load_alert_settings(environ: Mapping[str, str] | None = None) -> AlertSettings:
    env = os.environ if environ is None else environ
    base = load_settings(env)
    url = env.get("JIBBLE_ALERT_WEBHOOK_URL") or ""
    if url and urlsplit(url).scheme not in ("https", "http"):
        raise ConfigurationError(
            "JIBBLE_ALERT_WEBHOOK_URL must be the https://... URL of a Slack or Teams incoming "
            "webhook (the value is not shown)."
        )
    dry_run = flag_setting(env, "JIBBLE_ALERT_DRY_RUN")
    return AlertSettings(
        emails=_emails(env.get("JIBBLE_ALERT_EMAILS") or "")
        or (DEMO_EMAILS if base.demo_mode else ()),
        webhook_url_set=bool(url),
        webhook_format=_webhook_format(env, url),
        timezone=zone_setting(
            env, "JIBBLE_ALERT_TIMEZONE", env.get("JIBBLE_DIGEST_TIMEZONE") or "UTC"
        ),
        send_at=clock_setting(env, "JIBBLE_ALERT_SEND_AT", DEFAULT_SEND_AT),
        working_days=_working_days(env.get("JIBBLE_ALERT_WORKING_DAYS") or DEFAULT_WORKING_DAYS),
        holidays=_holidays(env.get("JIBBLE_ALERT_HOLIDAYS") or ""),
        send_empty=bool(flag_setting(env, "JIBBLE_ALERT_SEND_EMPTY")),
        # The demo's alerts are a dry run unless asked otherwise: its agents are synthetic.
        dry_run=base.demo_mode if dry_run is None else dry_run,
        pace_day=_pace_day(env.get("JIBBLE_ALERT_PACE_DAY") or DEFAULT_PACE_DAY),
        pace_margin_percent=number_setting(env, "JIBBLE_ALERT_PACE_MARGIN", 10.0, float, minimum=0),
    )

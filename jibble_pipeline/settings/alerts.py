"""Settings of the daily operations alert.

Emails go through the digests' email backend (``JIBBLE_EMAIL_BACKEND`` and its SMTP or
Resend settings, from ``JIBBLE_DIGEST_FROM``). The webhook URL is a secret (a Slack or
Teams incoming webhook URL carries its own token): only its presence and its kind are kept
here; its value reaches Dagster through ``dg.EnvVar`` and is never printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, time
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from jibble_pipeline.settings.catalog import (
    ALERT_DRY_RUN,
    ALERT_EMAILS,
    ALERT_HOLIDAYS,
    ALERT_PACE_DAY,
    ALERT_PACE_MARGIN,
    ALERT_SEND_AT,
    ALERT_SEND_EMPTY,
    ALERT_TIMEZONE,
    ALERT_WEBHOOK_FORMAT,
    ALERT_WEBHOOK_URL,
    ALERT_WORKING_DAYS,
    DIGEST_TIMEZONE,
)
from jibble_pipeline.settings.pipeline import load_settings

WebhookFormat = Literal["slack", "teams"]

# Hosts of Microsoft Teams incoming webhooks (connectors and Power Automate workflows).
TEAMS_HOSTS = ("webhook.office.com", "logic.azure.com", "powerplatform.com")
# The demo's operations team: an address that cannot receive mail (its alert is a dry run).
DEMO_EMAILS = ("operations@staffing.example",)


class AlertSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

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


def load_alert_settings(environ: Mapping[str, str] | None = None) -> AlertSettings:
    env = os.environ if environ is None else environ
    base = load_settings(env)
    url = ALERT_WEBHOOK_URL.read(env) or ""
    host = (urlsplit(url).hostname or "").lower()
    dry_run = ALERT_DRY_RUN.read(env)
    return AlertSettings(
        emails=ALERT_EMAILS.read(env) or (DEMO_EMAILS if base.demo_mode else ()),
        webhook_url_set=bool(url),
        webhook_format=ALERT_WEBHOOK_FORMAT.read(
            env, "teams" if host.endswith(TEAMS_HOSTS) else "slack"
        ),
        timezone=ALERT_TIMEZONE.read(env, env.get(DIGEST_TIMEZONE.env)),
        send_at=ALERT_SEND_AT.read(env),
        working_days=ALERT_WORKING_DAYS.read(env),
        holidays=ALERT_HOLIDAYS.read(env) or (),
        send_empty=bool(ALERT_SEND_EMPTY.read(env)),
        # The demo's alerts are a dry run unless asked otherwise: its agents are synthetic.
        dry_run=base.demo_mode if dry_run is None else dry_run,
        pace_day=ALERT_PACE_DAY.read(env),
        pace_margin_percent=ALERT_PACE_MARGIN.read(env),
    )

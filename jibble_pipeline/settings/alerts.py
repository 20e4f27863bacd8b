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

from jibble_pipeline.settings.digests import DIGEST_TIMEZONE
from jibble_pipeline.settings.fields import (
    Choice,
    Clock,
    ConfigurationError,
    Flag,
    Group,
    Kind,
    Number,
    Setting,
    Zone,
)
from jibble_pipeline.settings.pipeline import load_settings

WebhookFormat = Literal["slack", "teams"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Hosts of Microsoft Teams incoming webhooks (connectors and Power Automate workflows).
TEAMS_HOSTS = ("webhook.office.com", "logic.azure.com", "powerplatform.com")
# The demo's operations team: an address that cannot receive mail (its alert is a dry run).
DEMO_EMAILS = ("operations@staffing.example",)


class Emails(Kind):
    takes = "addresses, comma-separated"

    def parse(self, name: str, text: str) -> tuple[str, ...]:
        emails = tuple(e.strip().lower() for e in text.replace(";", ",").split(",") if e.strip())
        bad = [e for e in emails if e.count("@") != 1 or " " in e]
        if bad:
            raise ConfigurationError(
                f"{name} must be email addresses separated by commas, got {bad[0]!r}."
            )
        return emails


class WeekDays(Kind):
    """ISO weekday numbers (Monday = 1) of day names."""

    takes = "day names, comma-separated"

    def parse(self, name: str, text: str) -> tuple[int, ...]:
        days = [d.strip().lower()[:3] for d in text.split(",") if d.strip()]
        if not days or any(d not in DAY_NAMES for d in days):
            raise ConfigurationError(
                f"{name} must be day names separated by commas like mon,tue,wed,thu,fri, "
                f"got {text!r}."
            )
        return tuple(sorted({DAY_NAMES.index(d) + 1 for d in days}))


class WeekDayOrNone(Kind):
    """An ISO weekday number of a day name; ``none`` (or ``off``): None."""

    takes = "a day name, or `none`"

    def parse(self, name: str, text: str) -> int | None:
        day = text.strip().lower()[:3]
        if day in ("non", "off"):
            return None
        if day not in DAY_NAMES:
            raise ConfigurationError(f"{name} must be a day name like wed (or none), got {text!r}.")
        return DAY_NAMES.index(day) + 1


class Dates(Kind):
    takes = "dates, comma-separated"

    def parse(self, name: str, text: str) -> tuple[date, ...]:
        try:
            days = {date.fromisoformat(d.strip()) for d in text.split(",") if d.strip()}
        except ValueError:
            raise ConfigurationError(
                f"{name} must be dates like 2025-12-25 separated by commas, got {text!r}."
            ) from None
        return tuple(sorted(days))


class WebhookUrl(Kind):
    takes = "`https://...` URL"

    def parse(self, name: str, text: str) -> str:
        if urlsplit(text).scheme not in ("https", "http"):
            raise ConfigurationError(
                f"{name} must be the https://... URL of a Slack or Teams incoming webhook "
                "(the value is not shown)."
            )
        return text


_ALERTS = Group.ALERTS
ALERT_EMAILS = Setting(
    env="JIBBLE_ALERT_EMAILS", group=_ALERTS, kind=Emails(),
    description="operations addresses", default_doc="demo mode: a demo address; else no email",
)  # fmt: skip
ALERT_WEBHOOK_URL = Setting(
    env="JIBBLE_ALERT_WEBHOOK_URL", group=_ALERTS, kind=WebhookUrl(), secret=True,
    description="a Slack or Teams incoming webhook URL", default_doc="unset: no post",
)  # fmt: skip
ALERT_WEBHOOK_FORMAT = Setting(
    env="JIBBLE_ALERT_WEBHOOK_FORMAT", group=_ALERTS, kind=Choice("slack", "teams"),
    description="`slack` (`{\"text\": ...}`) or `teams` (an Adaptive Card)",
    default_doc="`teams` for `*.webhook.office.com`, `*.logic.azure.com` and Power Platform "
    "hosts, else `slack`",
)  # fmt: skip
ALERT_TIMEZONE = Setting(
    env="JIBBLE_ALERT_TIMEZONE", group=_ALERTS, kind=Zone(), default="UTC",
    description="the schedule's time zone, whose \"yesterday\" is reported",
    default_doc="`JIBBLE_DIGEST_TIMEZONE`, else `UTC`",
)  # fmt: skip
ALERT_SEND_AT = Setting(
    env="JIBBLE_ALERT_SEND_AT", group=_ALERTS, kind=Clock(), default="08:00",
    description="time of the first daily tick",
)  # fmt: skip
ALERT_WORKING_DAYS = Setting(
    env="JIBBLE_ALERT_WORKING_DAYS", group=_ALERTS, kind=WeekDays(),
    default="mon,tue,wed,thu,fri",
    description="days on which an agent who tracked nothing is listed",
)  # fmt: skip
ALERT_HOLIDAYS = Setting(
    env="JIBBLE_ALERT_HOLIDAYS", group=_ALERTS, kind=Dates(), default_doc="none",
    description="dates on which nobody is listed for tracking nothing, e.g. "
    "`2025-12-25,2026-01-01`",
)  # fmt: skip
ALERT_SEND_EMPTY = Setting(
    env="JIBBLE_ALERT_SEND_EMPTY", group=_ALERTS, kind=Flag(), default="false",
    description="`true`: send \"no problems\" on a quiet day",
)  # fmt: skip
ALERT_DRY_RUN = Setting(
    env="JIBBLE_ALERT_DRY_RUN", group=_ALERTS, kind=Flag(),
    description="`true`: build and report the alert, send nothing",
    default_doc="`true` in demo mode, else `false`",
)  # fmt: skip
ALERT_PACE_DAY = Setting(
    env="JIBBLE_ALERT_PACE_DAY", group=_ALERTS, kind=WeekDayOrNone(), default="wed",
    description="the day whose alert (Monday to yesterday) names clients behind their "
    "contract's pace; `none`: never",
)  # fmt: skip
ALERT_PACE_MARGIN = Setting(
    env="JIBBLE_ALERT_PACE_MARGIN", group=_ALERTS, kind=Number(0), default="10",
    description="percent of the contract a week's projected hours may fall short before "
    "the client is named",
)  # fmt: skip

ALERT_SETTINGS = (
    ALERT_EMAILS, ALERT_WEBHOOK_URL, ALERT_WEBHOOK_FORMAT, ALERT_TIMEZONE, ALERT_SEND_AT,
    ALERT_WORKING_DAYS, ALERT_HOLIDAYS, ALERT_SEND_EMPTY, ALERT_DRY_RUN, ALERT_PACE_DAY,
    ALERT_PACE_MARGIN,
)  # fmt: skip


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

"""The alert's Dagster resource: who gets it (emails, a webhook), when a day counts as a
working day, and whether empty days or anything at all is sent. Emails go through the
``EmailResource`` the digests use too; the webhook URL arrives as ``dg.EnvVar`` (a secret)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import dagster as dg

from jibble_pipeline.delivery.resources import EmailResource
from jibble_pipeline.delivery.sending import Channel
from jibble_pipeline.delivery.webhook import WebhookChannel
from jibble_pipeline.settings.alerts import AlertSettings
from jibble_pipeline.transport import RetryPolicy

DRY_RUN_REASON = "JIBBLE_ALERT_DRY_RUN (on by default in demo mode)"


@dataclass(frozen=True)
class Route:
    """Where the alert goes through one channel, or why it does not (``dry_run_reason``)."""

    channel: Channel
    recipients: list[str]
    dry_run_reason: str | None


class AlertResource(dg.ConfigurableResource):
    """The daily operations alert's recipients and rules (``settings.alerts``)."""

    emails: list[str] = []
    webhook_url: str | None = None
    webhook_format: Literal["slack", "teams"] = "slack"
    working_days: list[int] = [1, 2, 3, 4, 5]
    holidays: list[str] = []  # ISO dates on which nobody is expected to track
    send_empty: bool = False
    dry_run: bool = True
    pace_day: int | None = 3  # ISO weekday of the alert that checks contracts' pace
    pace_margin_percent: float = 10.0
    webhook_timeout_seconds: float = 30.0
    webhook_max_attempts: int = 4

    @property
    def holiday_dates(self) -> set[date]:
        return {date.fromisoformat(day) for day in self.holidays}

    @property
    def webhook_recipient(self) -> str:
        return f"webhook:{self.webhook_format}"

    def routes(self, email: EmailResource) -> list[Route]:
        """Each configured channel with its recipients: none configured, no route."""
        dry = DRY_RUN_REASON if self.dry_run else None
        routes = []
        if self.emails:
            no_backend = None if email.backend != "none" else email.dry_run_reason
            routes.append(Route(email, list(self.emails), dry or no_backend))
        if self.webhook_url:
            retry = RetryPolicy(max_attempts=self.webhook_max_attempts, initial_wait_seconds=1.0)
            webhook = WebhookChannel(
                self.webhook_url,
                self.webhook_format,
                timeout_seconds=self.webhook_timeout_seconds,
                retry=retry,
            )
            routes.append(Route(webhook, [self.webhook_recipient], dry))
        return routes


def build_alert_resources(settings: AlertSettings) -> dict[str, object]:
    return {
        "alerts": AlertResource(
            emails=list(settings.emails),
            webhook_url=dg.EnvVar("JIBBLE_ALERT_WEBHOOK_URL") if settings.webhook_url_set else None,
            webhook_format=settings.webhook_format,
            working_days=list(settings.working_days),
            holidays=[day.isoformat() for day in settings.holidays],
            send_empty=settings.send_empty,
            dry_run=settings.dry_run,
            pace_day=settings.pace_day,
            pace_margin_percent=settings.pace_margin_percent,
        )
    }

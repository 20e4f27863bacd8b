"""Sending a day's alert once to each recipient through the ``sent_alerts`` log."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from jibble_pipeline.alerts.message import DailyAlert
from jibble_pipeline.alerts.resources import Route
from jibble_pipeline.delivery.message import OutgoingEmail
from jibble_pipeline.delivery.policy import SendPolicy
from jibble_pipeline.delivery.sending import Delivery, send_logged
from jibble_pipeline.delivery.sent_log import Outcome, SentLog


def delivery(alert: DailyAlert, recipient: str, force_nonce: str | None) -> Delivery:
    """The alert for one recipient; its idempotency key is stable per (day, recipient)."""
    day = alert.day.isoformat()
    hashed = hashlib.sha256(recipient.encode()).hexdigest()[:16]
    key = f"jibble-alert/{day}/{hashed}" + (f"/{force_nonce}" if force_nonce else "")
    message = OutgoingEmail(
        to=recipient,
        subject=alert.subject,
        text=alert.text,
        html=alert.html,
        idempotency_key=key,
        headers={"X-Jibble-Alert-Date": day},
    )
    return Delivery(alert.day, recipient, message, alert.sha256)


def unsent(log: SentLog, alert: DailyAlert, recipients: Sequence[str]) -> list[str]:
    """The recipients who have not had this day's alert yet."""
    before = log.rows(alert.day, alert.day)
    sent = set(before.loc[before["status"] == "sent", log.recipient_column])
    return [r for r in recipients if r not in sent]


def send_alert(
    alert: DailyAlert,
    routes: Sequence[Route],
    log: SentLog,
    policy: SendPolicy,
    info: Callable[[str], None] = lambda message: None,
) -> list[Outcome]:
    """Sends through every route that is not a dry run; one outcome per recipient held."""
    outcomes: list[Outcome] = []
    for route in routes:
        if route.dry_run_reason:
            continue
        deliveries = [delivery(alert, r, policy.force_nonce) for r in route.recipients]
        outcomes += send_logged(
            deliveries, log, route.channel, policy.run_id, force=policy.force, info=info
        )
    return outcomes

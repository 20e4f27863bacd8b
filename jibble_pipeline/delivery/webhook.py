"""Posting the alert to a Slack or Microsoft Teams incoming webhook.

The sender takes the same ``OutgoingEmail`` as the email senders and posts its text: to
Slack as ``{"text": ...}`` (with ``&``, ``<`` and ``>`` escaped, as Slack asks), to Teams as
an Adaptive Card of one text block per line. Requests go through the project's HTTP layer
(paced, faults and 429s retried). The URL is the webhook's secret: no log line or error
names it or its path. ``WebhookChannel`` is the webhook as a channel of a send log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jibble_pipeline.delivery.message import OutgoingEmail, Sender, SendError
from jibble_pipeline.settings.alerts import WebhookFormat
from jibble_pipeline.transport import Pacing, RetryPolicy, ServiceUnavailable, open_session

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def slack_payload(email: OutgoingEmail) -> dict[str, Any]:
    text = email.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {"text": text}


def teams_payload(email: OutgoingEmail) -> dict[str, Any]:
    lines = [line for line in email.text.splitlines() if line.strip()]
    body = [
        {
            "type": "TextBlock",
            "text": line.strip(),
            "wrap": True,
            # The subject and the group headings stand out; problems are indented.
            **({} if line.startswith(" ") else {"weight": "Bolder"}),
        }
        for line in lines
    ]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "content": card}]}


class WebhookSender:
    """One incoming webhook (Slack or Teams) for a batch."""

    PACING = Pacing(max_requests_per_second=1, concurrency=1)

    def __init__(
        self,
        url: str,
        kind: WebhookFormat,
        *,
        timeout_seconds: float = 30.0,
        retry: RetryPolicy | None = None,
    ):
        if not url:
            raise SendError("the alert webhook needs JIBBLE_ALERT_WEBHOOK_URL", retryable=False)
        self.name: str = kind
        self._url = url
        self._payload = teams_payload if kind == "teams" else slack_payload
        self._session = open_session(
            f"webhook:{kind}",
            pacing=self.PACING,
            retry=retry or RetryPolicy(max_attempts=4, initial_wait_seconds=1.0),
            timeout_seconds=timeout_seconds,
            label=f"the {kind} webhook",
        )

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, email: OutgoingEmail) -> str:
        try:
            response = self._session.http.post(self._url, json=self._payload(email))
        except ServiceUnavailable as error:
            raise SendError(f"{self.name} webhook: {error}", retryable=False) from None
        if 200 <= response.status_code < 300:
            return f"{self.name}:{email.idempotency_key}"
        reply = " ".join(response.text.split())[:200]
        raise SendError(
            f"the {self.name} webhook answered {response.status_code} {reply}; check "
            "JIBBLE_ALERT_WEBHOOK_URL (the value is not shown)",
            retryable=False,
            fatal=True,
        )

    def close(self) -> None:
        self._session.close()


@dataclass(frozen=True)
class WebhookChannel:
    """The webhook as a ``Channel`` of the send log."""

    url: str
    kind: WebhookFormat
    max_attempts: int = 1  # the transport retries faults itself
    retry_delay_seconds: float = 1.0
    timeout_seconds: float = 30.0
    retry: RetryPolicy | None = None

    @property
    def backend(self) -> str:
        return self.kind

    @property
    def secrets(self) -> list[str | None]:
        return [self.url]

    @contextmanager
    def open_sender(self) -> Iterator[Sender]:
        with WebhookSender(
            self.url, self.kind, timeout_seconds=self.timeout_seconds, retry=self.retry
        ) as sender:
            yield sender

"""The email channel as a Dagster resource: SMTP or Resend, or nothing at all (a dry run).

Its secrets (``SMTP_PASSWORD``, ``RESEND_API_KEY``) arrive as ``dg.EnvVar`` so the UI and run
configuration show the variable's name, never its value; errors and logs are scrubbed of
them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import dagster as dg

from jibble_pipeline.delivery.email import ResendSender, SmtpSender
from jibble_pipeline.delivery.message import Sender, SendError
from jibble_pipeline.settings.catalog import DEFAULT_FROM, DEFAULT_RESEND_URL
from jibble_pipeline.transport import RetryPolicy


class EmailResource(dg.ConfigurableResource):
    """Sends email (digests, corrections, the alert) through SMTP or Resend;
    ``backend="none"`` or ``dry_run`` sends nothing.
    ``attachments``: attach the week's exports (workbook and CSVs) to each digest."""

    backend: Literal["none", "smtp", "resend"] = "none"
    dry_run: bool = True
    attachments: bool = True
    from_address: str = DEFAULT_FROM
    reply_to: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    resend_api_key: str | None = None
    resend_api_url: str = DEFAULT_RESEND_URL
    timeout_seconds: float = 30.0
    max_attempts: int = 3
    retry_delay_seconds: float = 2.0

    @property
    def dry_run_reason(self) -> str | None:
        """Why nothing is sent (no backend, or ``JIBBLE_DIGEST_DRY_RUN``); None: digests go."""
        if self.backend == "none":
            return "no email backend is configured (JIBBLE_EMAIL_BACKEND)"
        if self.dry_run:
            return "JIBBLE_DIGEST_DRY_RUN"
        return None

    @property
    def secrets(self) -> list[str | None]:
        return [self.smtp_password, self.resend_api_key]

    @contextmanager
    def open_sender(self) -> Iterator[Sender]:
        if self.backend == "smtp":
            if not self.smtp_host:
                raise SendError("the SMTP backend needs SMTP_HOST", retryable=False)
            sender: Sender = SmtpSender(
                self.smtp_host,
                self.smtp_port,
                from_address=self.from_address,
                security=self.smtp_security,
                username=self.smtp_username,
                password=self.smtp_password,
                reply_to=self.reply_to,
                timeout_seconds=self.timeout_seconds,
            )
        elif self.backend == "resend":
            sender = ResendSender(
                self.resend_api_key or "",
                from_address=self.from_address,
                api_url=self.resend_api_url,
                reply_to=self.reply_to,
                timeout_seconds=self.timeout_seconds,
                retry=RetryPolicy(
                    max_attempts=self.max_attempts,
                    initial_wait_seconds=self.retry_delay_seconds,
                    max_wait_seconds=max(self.retry_delay_seconds * 8, 0.001),
                ),
            )
        else:
            raise SendError(
                "no email backend is configured (JIBBLE_EMAIL_BACKEND)", retryable=False
            )
        try:
            yield sender
        finally:
            sender.close()

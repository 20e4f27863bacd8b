"""What every channel sends: an ``OutgoingEmail`` (subject, text, HTML, attachments), handed
to a ``Sender`` (SMTP, Resend, a webhook) that returns the provider's message id or raises a
``SendError`` saying whether trying again can help.

Error texts never hold a password, API key or webhook URL: they are built from status codes
and the server's own words, and ``scrub`` removes every configured secret besides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol


class SendError(Exception):
    """A send that failed; ``retryable`` when the same request may succeed later; ``fatal``
    when no other email of the batch can go either (no connection, credentials refused)."""

    def __init__(self, message: str, *, retryable: bool, fatal: bool = False):
        super().__init__(message)
        self.retryable = retryable
        self.fatal = fatal


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str  # e.g. ``text/csv``

    @property
    def maintype(self) -> str:
        return self.content_type.partition("/")[0]

    @property
    def subtype(self) -> str:
        return self.content_type.partition("/")[2]


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str
    # Stable per (week, client) so a provider that deduplicates (Resend) never sends twice.
    idempotency_key: str
    headers: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()


class Sender(Protocol):
    """An email backend or a webhook, open for a batch."""

    name: str

    def send(self, email: OutgoingEmail) -> str: ...

    def close(self) -> None: ...


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text

"""The email backends: a multipart message (plain text and HTML, and any attachments) sent
through SMTP or the Resend API.

Both senders take an ``OutgoingEmail`` and return the provider's message id, or raise a
``SendError`` that says whether trying again can help (``delivery/message.py``).
"""

from __future__ import annotations

import base64
import contextlib
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Literal

import httpx

from jibble_pipeline.delivery.message import OutgoingEmail, SendError
from jibble_pipeline.transport import Pacing, RetryPolicy, ServiceUnavailable, open_session

SmtpSecurity = Literal["starttls", "ssl", "none"]


def _domain(address: str) -> str:
    _, addr = parseaddr(address)
    return addr.rpartition("@")[2] or "localhost"


def build_message(
    email: OutgoingEmail, from_address: str, reply_to: str | None = None
) -> EmailMessage:
    """A ``multipart/alternative`` message (the text part first, the HTML part preferred);
    with attachments, a ``multipart/mixed`` of that alternative and the files."""
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = Address(addr_spec=email.to)
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=_domain(from_address))
    if reply_to:
        message["Reply-To"] = reply_to
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    for name, value in email.headers.items():
        message[name] = value
    message.set_content(email.text, subtype="plain", charset="utf-8")
    message.add_alternative(email.html, subtype="html", charset="utf-8")
    for attachment in email.attachments:  # the first one turns the message multipart/mixed
        message.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
            # Text files are UTF-8 (the exports' CSVs); said so, a mail client decodes them right.
            params={"charset": "utf-8"} if attachment.maintype == "text" else None,
        )
    return message


class SmtpSender:
    """One SMTP connection (opened on first use, re-opened after a drop) for a batch."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        from_address: str,
        security: SmtpSecurity = "starttls",
        username: str | None = None,
        password: str | None = None,
        reply_to: str | None = None,
        timeout_seconds: float = 30.0,
    ):
        self.host = host
        self.port = port
        self.from_address = from_address
        self.security = security
        self.username = username
        self._password = password
        self.reply_to = reply_to
        self.timeout_seconds = timeout_seconds
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _where(self) -> str:
        return f"SMTP {self.host}:{self.port}"

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        context = ssl.create_default_context()
        try:
            if self.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout_seconds, context=context
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
                if self.security == "starttls":
                    smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self._password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(
                f"{self._where()} refused the login of {self.username!r} ({exc.smtp_code}); "
                "check SMTP_USERNAME and SMTP_PASSWORD",
                retryable=False,
                fatal=True,
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise SendError(
                f"{self._where()} does not support {self.security}/AUTH; check SMTP_SECURITY",
                retryable=False,
                fatal=True,
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(
                f"cannot connect to {self._where()}: {type(exc).__name__}",
                retryable=True,
                fatal=True,
            ) from None
        self._smtp = smtp
        return smtp

    def send(self, email: OutgoingEmail) -> str:
        message = build_message(email, self.from_address, self.reply_to)
        smtp = self._connect()
        try:
            smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b""))
            raise SendError(
                f"{self._where()} refused the recipient: {code} {_reply(reply)}",
                retryable=400 <= code < 500,
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise SendError(
                f"{self._where()} answered {exc.smtp_code} {_reply(exc.smtp_error)}",
                retryable=400 <= exc.smtp_code < 500,
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise SendError(
                f"{self._where()} connection lost: {type(exc).__name__}", retryable=True
            ) from None
        return str(message["Message-ID"])

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(OSError):
                smtp.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _reply(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:200]


class ResendSender:
    """The Resend HTTP API (``POST /emails``) with an ``Idempotency-Key`` per digest.

    Requests go through the project's one HTTP layer: paced to Resend's default team limit
    (2 requests a second), 429s waited out, faults retried; the key makes a retried request
    deliver once. What is still refused after that is a ``SendError``."""

    name = "resend"
    PACING = Pacing(max_requests_per_second=2, concurrency=1)

    def __init__(
        self,
        api_key: str,
        *,
        from_address: str,
        api_url: str = "https://api.resend.com",
        reply_to: str | None = None,
        timeout_seconds: float = 30.0,
        retry: RetryPolicy | None = None,
    ):
        if not api_key:
            raise SendError("the Resend backend needs RESEND_API_KEY", retryable=False)
        self.from_address = from_address
        self.reply_to = reply_to
        self.api_url = api_url.rstrip("/")
        self._session = open_session(
            f"resend:{self.api_url}",
            pacing=self.PACING,
            retry=retry or RetryPolicy(max_attempts=3, initial_wait_seconds=2.0),
            timeout_seconds=timeout_seconds,
            headers={"Authorization": f"Bearer {api_key}"},
        )

    def __enter__(self) -> ResendSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, email: OutgoingEmail) -> str:
        body: dict[str, object] = {
            "from": self.from_address,
            "to": [email.to],
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
            "headers": {"Auto-Submitted": "auto-generated", **email.headers},
        }
        if self.reply_to:
            body["reply_to"] = self.reply_to
        if email.attachments:
            body["attachments"] = [
                {
                    "filename": a.filename,
                    "content": base64.b64encode(a.content).decode("ascii"),
                    "content_type": a.content_type,
                }
                for a in email.attachments
            ]
        try:
            response = self._session.http.post(
                f"{self.api_url}/emails",
                json=body,
                headers={"Idempotency-Key": email.idempotency_key[:256]},
            )
        except ServiceUnavailable as error:
            raise SendError(f"Resend: {error}", retryable=False) from None
        if response.status_code in (200, 201, 202):
            try:
                return str(response.json()["id"])
            except (ValueError, KeyError, TypeError):
                raise SendError(
                    "Resend accepted the email without an id", retryable=False
                ) from None
        detail = _resend_error(response)
        hint = {401: "; check RESEND_API_KEY", 403: "; check the sending domain and key"}
        raise SendError(
            f"Resend answered {response.status_code} {detail}{hint.get(response.status_code, '')}",
            retryable=False,
            fatal=response.status_code in hint,
        )

    def close(self) -> None:
        self._session.close()


def _resend_error(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    name, message = data.get("name"), data.get("message")
    return " ".join(f"{v}" for v in (f"({name})" if name else None, message) if v)[:300]

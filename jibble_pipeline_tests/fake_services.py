"""Local stand-ins for the services the digests talk to, over real sockets on 127.0.0.1:

- ``FakeAirtable``: Airtable's list-records endpoint (``GET /v0/{base}/{table}``): bearer
  token, at most 100 records a page (``pageSize``), opaque ``offset`` tokens, ``fields[]``
  projection (unknown field: 422), empty cells left out of ``fields``, 429 on demand.
- ``FakeResend``: Resend's ``POST /emails``: bearer token, JSON validation (``attachments``:
  a list of ``{filename, content}`` with base64 content, optional ``content_type``), the
  ``Idempotency-Key`` replay (same key: same id, no second email), failures on demand.
- ``FakeWebhook``: a Slack or Teams incoming webhook: accepts JSON posted to its one secret
  path, answers a chosen status on demand.
- ``SmtpServer``: a real SMTP server (aiosmtpd) that keeps every message it receives, with
  optional AUTH LOGIN/PLAIN, and recipients it refuses.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import socket
import threading
import uuid
from abc import ABC, abstractmethod
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class _JsonServer(ABC):
    """A threaded HTTP server on a free local port; subclasses answer ``handle``."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload, headers = owner.handle(self.command, self.path, self.headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @abstractmethod
    def handle(self, method, path, headers, body) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body, extra headers) of one request."""


def _error(status: int, kind: str, message: str = "") -> tuple[int, Any, dict[str, str]]:
    return status, {"error": {"type": kind, "message": message}}, {}


class FakeAirtable(_JsonServer):
    """``records``: the table's rows as ``fields`` dicts, in table order."""

    MAX_PAGE = 100

    def __init__(self, api_key: str, base_id: str, table: str, records: list[dict[str, Any]]):
        super().__init__()
        self.api_key = api_key
        self.base_id = base_id
        self.table = table
        self.records = [
            {"id": f"rec{n:014d}", "createdTime": "2025-01-01T00:00:00.000Z", "fields": fields}
            for n, fields in enumerate(records)
        ]
        self.known_fields = {name for r in records for name in r} | {"Email", "Jibble Group ID"}
        self._offsets: dict[str, int] = {}
        self.rate_limit_next = 0  # answer this many next requests with 429

    def handle(self, method, path, headers, body):
        with self._lock:
            parts = urlsplit(path)
            query = parse_qs(parts.query)
            self.requests.append({"path": parts.path, "query": query})
            if headers.get("Authorization") != f"Bearer {self.api_key}":
                return _error(401, "AUTHENTICATION_REQUIRED", "Authentication required")
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                return 429, {"errors": [{"error": "RATE_LIMIT_REACHED"}]}, {"Retry-After": "0"}
            segments = [unquote(s) for s in parts.path.split("/") if s]
            if method != "GET" or segments != ["v0", self.base_id, self.table]:
                return _error(404, "NOT_FOUND", "Could not find what you are looking for")
            page_size = int(query.get("pageSize", ["100"])[0])
            if not 1 <= page_size <= self.MAX_PAGE:
                return _error(422, "INVALID_REQUEST_UNKNOWN", "pageSize must be 1..100")
            fields = query.get("fields[]")
            unknown = [f for f in fields or [] if f not in self.known_fields]
            if unknown:
                return _error(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{unknown[0]}"')
            start = 0
            if "offset" in query:
                token = query["offset"][0]
                if token not in self._offsets:
                    return _error(422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE")
                start = self._offsets[token]
            page = []
            for record in self.records[start : start + page_size]:
                values = {
                    k: v
                    for k, v in record["fields"].items()
                    if (fields is None or k in fields) and v not in (None, "", [])
                }
                page.append({**record, "fields": values})
            answer: dict[str, Any] = {"records": page}
            if start + page_size < len(self.records):
                token = f"itr{secrets.token_hex(6)}/{page[-1]['id']}"
                self._offsets[token] = start + page_size
                answer["offset"] = token
            return 200, answer, {}


class FakeResend(_JsonServer):
    def __init__(self, api_key: str):
        super().__init__()
        self.api_key = api_key
        self.emails: list[dict[str, Any]] = []  # accepted, one per email actually "sent"
        self.fail_for: dict[str, int] = {}  # recipient -> status to answer with
        self._by_key: dict[str, str] = {}

    def handle(self, method, path, headers, body):
        with self._lock:
            self.requests.append(
                {"path": path, "headers": dict(headers.items()), "body": body.decode()}
            )
            if headers.get("Authorization") != f"Bearer {self.api_key}":
                return 401, {"statusCode": 401, "name": "missing_api_key", "message": "No key"}, {}
            if method != "POST" or path != "/emails":
                return 404, {"statusCode": 404, "name": "not_found", "message": "Not found"}, {}
            try:
                email = json.loads(body)
            except ValueError:
                return 400, {"statusCode": 400, "name": "invalid_json", "message": "Bad JSON"}, {}
            missing = [k for k in ("from", "to", "subject") if not email.get(k)]
            if missing or not (email.get("html") or email.get("text")):
                message = f"Missing `{(missing or ['html'])[0]}` field."
                return 422, {"statusCode": 422, "name": "validation_error", "message": message}, {}
            problem = _attachments_problem(email.get("attachments"))
            if problem:
                return 422, {"statusCode": 422, "name": "validation_error", "message": problem}, {}
            recipients = email["to"] if isinstance(email["to"], list) else [email["to"]]
            for recipient in recipients:
                if recipient in self.fail_for:
                    status = self.fail_for[recipient]
                    return (
                        status,
                        {"statusCode": status, "name": "application_error", "message": "Oops"},
                        {},
                    )
            key = headers.get("Idempotency-Key")
            if key and key in self._by_key:
                return 200, {"id": self._by_key[key]}, {}
            email_id = str(uuid.uuid4())
            if key:
                self._by_key[key] = email_id
            self.emails.append({"id": email_id, "idempotency_key": key, **email})
            return 200, {"id": email_id}, {}


class FakeWebhook(_JsonServer):
    """Posts to ``path`` are kept in ``posts`` (parsed JSON); any other path is 404, as
    Slack answers an unknown webhook. ``status``: what to answer (2xx: accepted)."""

    def __init__(self, path: str = "/services/T0000/B0000/webhook-secret-token"):
        super().__init__()
        self.path = path
        self.status = 200
        self.posts: list[Any] = []

    @property
    def webhook_url(self) -> str:
        return self.url + self.path

    def handle(self, method, path, headers, body):
        with self._lock:
            self.requests.append({"path": path, "body": body.decode()})
            if method != "POST" or path != self.path:
                return 404, "no_service", {}
            if self.status >= 300:
                return self.status, "invalid_token", {}
            self.posts.append(json.loads(body))
            return self.status, "ok", {}


ATTACHMENT_FIELDS = {"filename", "content", "path", "content_type", "content_id"}


def _attachments_problem(attachments: Any) -> str | None:
    """What Resend would refuse in an ``attachments`` field (None: nothing, or absent)."""
    if attachments is None:
        return None
    if not isinstance(attachments, list):
        return "`attachments` must be an array."
    for item in attachments:
        if not isinstance(item, dict) or set(item) - ATTACHMENT_FIELDS:
            return f"Invalid attachment {item!r}."
        if not isinstance(item.get("filename"), str) or not item["filename"]:
            return "Attachment `filename` is required."
        if not isinstance(item.get("content"), str):
            return "Attachment `content` must be a base64 string."
        try:
            base64.b64decode(item["content"], validate=True)
        except (binascii.Error, ValueError):
            return "Attachment `content` is not valid base64."
    return None


def decoded_attachments(email: dict[str, Any]) -> dict[str, bytes]:
    """An accepted Resend email's attachments: file name -> bytes."""
    return {a["filename"]: base64.b64decode(a["content"]) for a in email.get("attachments", [])}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Collector:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.server.username and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.server.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.server.lock:
            self.server.messages.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "message": message,
                    "authenticated": session.authenticated,
                }
            )
        return "250 Message accepted for delivery"


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1; ``username``/``password`` require AUTH."""

    def __init__(self, username: str | None = None, password: str | None = None):
        self.username = username
        self.password = password
        self.messages: list[dict[str, Any]] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()
        self.logins: list[str] = []
        options: dict[str, Any] = {}
        if username:
            # AUTH offered without TLS (a local test server); a client that logs in with the
            # wrong password is refused with 535, one that sends without AUTH is refused at
            # MAIL FROM by the handler below.
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        self.port = free_port()
        self._controller = Controller(
            _Collector(self), hostname="127.0.0.1", port=self.port, **options
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        if ok:
            self.logins.append(self.username or "")
        return AuthResult(success=ok, handled=False)  # handled=False: answer 535

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._controller.stop()

    def received(self) -> list[EmailMessage]:
        with self.lock:
            return [m["message"] for m in self.messages]

"""Sending messages each once per key of a send log: a run's digests (``sent_digests``, each
week and client once), their corrections (``sent_corrections``, each week, client and
version once) and the daily operations alert (``sent_alerts``).

The deliveries are first claimed in the log: one already sent is left out unless the send
is forced, one another run is sending is left to that run, one whose sending a dead run
began is left for a person to check (``warehouse/sent_log.py``). The claimed deliveries go
``RECORD_BATCH`` at a time: the batch is marked as being sent, each delivery is sent with
retries (``deliver``), and the batch's outcomes are recorded. When the batch cannot go on (no
connection, credentials refused), the deliveries not tried yet are recorded failed with no
attempt, so the next run retries them.

A digest's attachments are the week's exports that ``client_digests`` wrote beside the
digest files (the same reports folder; sending runs later, often in another run). They are
read only for the digests this run sends. A file missing then does not hold the digest
back: it goes without that file, and the run warns and lists it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from jibble_pipeline.digest.corrections import Correction
from jibble_pipeline.digest.email import (
    Attachment,
    EmailSender,
    OutgoingEmail,
    SendError,
    deliver,
    scrub,
)
from jibble_pipeline.digest.exports import ATTACHMENTS, attachment_name
from jibble_pipeline.digest.render import (
    correction_subject,
    render_correction_html,
    render_correction_text,
)
from jibble_pipeline.digest.site import export_file
from jibble_pipeline.warehouse.sent_log import Claim, OnSent, Outcome, SentLog

RECORD_BATCH = 20  # outcomes recorded per statement while sending


UNKNOWN_ADVICE = (
    "a run stopped between sending and recording, so nothing is sent again by itself; check "
    "the mail server's log, and force it (config force: true) to send it again"
)


def unknown_deliveries(
    log: SentLog, first: date, last: date, warn: Callable[[str], None]
) -> pd.DataFrame:
    """The log's rows of periods ``first``..``last`` whose delivery is unknown, each warned
    of once (``warehouse/sent_log.py``)."""
    unknown = log.unknown(log.rows(first, last), datetime.now(UTC))
    if not unknown.empty:
        keys = [
            ", ".join(str(v) for v in key) for key in unknown[list(log.table.primary_key)].values
        ]
        warn(
            f"{len(unknown)} message(s) of unknown delivery ({'; '.join(keys)}): {UNKNOWN_ADVICE}."
        )
    return unknown


def of_clients(digests: pd.DataFrame, clients: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The digests of ``clients`` (emails, any case; none: every client's), and the emails
    asked for that have no digest."""
    wanted = {c.strip().lower() for c in clients if c.strip()}
    if not wanted:
        return digests, []
    chosen = digests[digests["client_email"].isin(wanted)]
    return chosen, sorted(wanted - set(chosen["client_email"]))


def _key(row: Mapping) -> tuple[date, str]:
    return row["week_start"], row["client_email"]


def unsent(
    digests: Sequence[Mapping], log: SentLog, weeks: Sequence[date], *, force: bool = False
) -> list[Mapping]:
    """The digests a send would go to now: those not sent yet (all of them when forced)."""
    before = log.rows(min(weeks), max(weeks))
    sent = before[before["status"] == "sent"]
    already = set(zip(sent[log.period_column], sent[log.recipient_column], strict=True))
    return [row for row in digests if force or _key(row) not in already]


class Channel(Protocol):
    """Where deliveries go: the email resource, or the alert webhook."""

    @property
    def backend(self) -> str: ...

    @property
    def max_attempts(self) -> int: ...

    @property
    def retry_delay_seconds(self) -> float: ...

    @property
    def secrets(self) -> list[str | None]: ...

    def open_sender(self) -> AbstractContextManager[EmailSender]: ...


@dataclass(frozen=True)
class Delivery:
    """One message to one recipient, sent at most once per (period, recipient[, version])."""

    period: date
    recipient: str
    message: OutgoingEmail
    sha256: str
    version: int | None = None  # a correction's


class ExportAttachments:
    """The exports of a digest's client-week, read from the reports folder as attachments;
    ``missing`` collects the files that were not there ({week, to, file})."""

    def __init__(self, root: Path):
        self.root = root
        self.missing: list[dict[str, str]] = []

    def __call__(self, row: Mapping) -> tuple[Attachment, ...]:
        week, email = row["week_start"], row["client_email"]
        found = []
        for kind, (_, content_type) in ATTACHMENTS.items():
            path = self.root / export_file(week, email, kind)
            try:
                content = path.read_bytes()
            except FileNotFoundError:
                self.missing.append({"week": week.isoformat(), "to": email, "file": str(path)})
                continue
            found.append(Attachment(attachment_name(kind, week), content, content_type))
        return tuple(found)


def no_attachments(row: Mapping) -> tuple[Attachment, ...]:
    return ()


def outgoing(row: Mapping, force_nonce: str | None) -> OutgoingEmail:
    """The email of a digest. Its idempotency key is stable per (week, client), so a provider
    that deduplicates never delivers it twice; a forced send adds ``force_nonce``."""
    week = row["week_start"].isoformat()
    recipient = hashlib.sha256(row["client_email"].encode()).hexdigest()[:16]
    key = f"jibble-digest/{week}/{recipient}" + (f"/{force_nonce}" if force_nonce else "")
    return OutgoingEmail(
        to=row["client_email"],
        subject=row["subject"],
        text=row["text"],
        html=row["html"],
        idempotency_key=key,
        headers={"X-Jibble-Digest-Week": week},
    )


class _Outcomes:
    """The outcomes of a run, each batch's recorded in one statement (with ``on_sent``)."""

    def __init__(self, log: SentLog, run_id: str, backend: str, on_sent: OnSent | None):
        self.log, self.run_id, self.backend, self.on_sent = log, run_id, backend, on_sent
        self.all: list[Outcome] = []
        self._pending: list[Outcome] = []

    def note(
        self, delivery: Delivery, message_id: str | None, error: str | None, attempts: int
    ) -> None:
        outcome = Outcome(
            period=delivery.period,
            recipient=delivery.recipient,
            status="sent" if error is None else "failed",
            attempts=attempts,
            message_id=message_id,
            error=error,
            at=datetime.now(UTC),
            version=delivery.version,
        )
        self.all.append(outcome)
        self._pending.append(outcome)

    def give_up(self, deliveries: Iterable[Delivery], error: str) -> None:
        """The rest cannot go: each recorded failed, not attempted."""
        done = {self.log.key(o) for o in self.all}
        for delivery in deliveries:
            if self.log.key(delivery) not in done:
                self.note(delivery, None, error, 0)

    def flush(self) -> None:
        self.log.record(self._pending, self.run_id, self.backend, self.on_sent)
        self._pending.clear()


def send_logged(
    deliveries: Sequence[Delivery],
    log: SentLog,
    channel: Channel,
    run_id: str,
    *,
    force: bool = False,
    info: Callable[[str], None] = lambda message: None,
    complete: Callable[[Delivery], OutgoingEmail] = lambda delivery: delivery.message,
    on_sent: OnSent | None = None,
) -> list[Outcome]:
    """Sends the deliveries this run can claim; returns one outcome per delivery it held
    (sent or failed, all recorded in the log). ``info`` hears what is about to go;
    ``complete`` gives the message of a delivery about to go (e.g. with its attachments);
    ``on_sent`` writes what goes with a sent delivery, in the transaction that logs it."""
    claims = [
        Claim(d.period, d.recipient, d.message.subject, d.sha256, d.version) for d in deliveries
    ]
    held = log.claim(claims, run_id, datetime.now(UTC), force=force)
    to_send = [d for d in deliveries if log.key(d) in held]
    info(
        f"Sending {len(to_send)} message(s) via {channel.backend}; "
        f"{len(deliveries) - len(to_send)} already sent, being sent by another run, or left "
        "for a person to check."
    )
    outcomes = _Outcomes(log, run_id, channel.backend, on_sent)
    try:
        if to_send:
            with channel.open_sender() as sender:
                for first in range(0, len(to_send), RECORD_BATCH):
                    batch = to_send[first : first + RECORD_BATCH]
                    log.attempting(batch, run_id, datetime.now(UTC))
                    stopped = _send_batch(sender, batch, channel, complete, outcomes)
                    outcomes.flush()
                    if stopped:
                        outcomes.give_up(to_send, stopped)
                        break
    except SendError as exc:
        outcomes.give_up(to_send, scrub(str(exc), channel.secrets))
    finally:
        outcomes.flush()
    return outcomes.all


def _send_batch(
    sender: EmailSender,
    batch: Sequence[Delivery],
    channel: Channel,
    complete: Callable[[Delivery], OutgoingEmail],
    outcomes: _Outcomes,
) -> str | None:
    """Sends a batch, noting each outcome; returns why the rest cannot go, if it cannot."""
    for delivery in batch:
        result = deliver(
            sender,
            complete(delivery),
            max_attempts=channel.max_attempts,
            retry_delay_seconds=channel.retry_delay_seconds,
            secrets=channel.secrets,
        )
        outcomes.note(delivery, result.message_id, result.error, result.attempts)
        if result.fatal:
            return result.error or "the batch stopped"
    return None


def send_digests(
    digests: Sequence[Mapping],
    log: SentLog,
    email: Channel,
    run_id: str,
    *,
    force: bool = False,
    info: Callable[[str], None] = lambda message: None,
    attach: Callable[[Mapping], tuple[Attachment, ...]] = no_attachments,
    on_sent: OnSent | None = None,
) -> list[Outcome]:
    """Emails the digests (rows of ``client_digests``) this run can claim, each with the
    attachments ``attach`` gives it; ``on_sent``: see ``send_logged``."""
    rows = {_key(row): row for row in digests}

    def with_attachments(delivery: Delivery) -> OutgoingEmail:
        row = rows[(delivery.period, delivery.recipient)]
        return replace(delivery.message, attachments=attach(row))

    deliveries = [
        Delivery(
            row["week_start"],
            row["client_email"],
            outgoing(row, run_id if force else None),
            row["digest_sha256"],
        )
        for row in digests
    ]
    return send_logged(
        deliveries,
        log,
        email,
        run_id,
        force=force,
        info=info,
        complete=with_attachments,
        on_sent=on_sent,
    )


def correction_delivery(correction: Correction, force_nonce: str | None) -> Delivery:
    """The email of a correction. Its idempotency key is stable per (week, client,
    version), so a provider that deduplicates never delivers it twice."""
    week = correction.week_start.isoformat()
    recipient = hashlib.sha256(correction.client_email.encode()).hexdigest()[:16]
    key = f"jibble-correction/{week}/{recipient}/v{correction.version}"
    message = OutgoingEmail(
        to=correction.client_email,
        subject=correction_subject(correction),
        text=render_correction_text(correction),
        html=render_correction_html(correction),
        idempotency_key=key + (f"/{force_nonce}" if force_nonce else ""),
        headers={"X-Jibble-Digest-Week": week, "X-Jibble-Correction": str(correction.number)},
    )
    return Delivery(
        correction.week_start,
        correction.client_email,
        message,
        correction.sha256,
        correction.version,
    )

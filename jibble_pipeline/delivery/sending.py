"""Sending messages each once per key of a send log: a run's digests (``sent_digests``, each
week and client once), their corrections (``sent_corrections``, each week, client and
version once) and the daily operations alert (``sent_alerts``).

The deliveries are first claimed in the log: one already sent is left out unless the send
is forced, one another run is sending is left to that run, one whose sending a dead run
began is left for a person to check (``delivery/sent_log.py``). The claimed deliveries go
``RECORD_BATCH`` at a time: the batch is marked as being sent, each delivery is sent with
retries (``deliver``), and the batch's outcomes are recorded. When the batch cannot go on (no
connection, credentials refused), the deliveries not tried yet are recorded failed with no
attempt, so the next run retries them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

import pandas as pd

from jibble_pipeline.delivery.message import OutgoingEmail, Sender, SendError, scrub
from jibble_pipeline.delivery.sent_log import Claim, OnSent, Outcome, SentLog

RECORD_BATCH = 20  # outcomes recorded per statement while sending


UNKNOWN_ADVICE = (
    "a run stopped between sending and recording, so nothing is sent again by itself; check "
    "the mail server's log, and force it (config force: true) to send it again"
)


def unknown_deliveries(
    log: SentLog, first: date, last: date, warn: Callable[[str], None]
) -> pd.DataFrame:
    """The log's rows of periods ``first``..``last`` whose delivery is unknown, each warned
    of once (``delivery/sent_log.py``)."""
    unknown = log.unknown(log.rows(first, last), datetime.now(UTC))
    if not unknown.empty:
        keys = [
            ", ".join(str(v) for v in key) for key in unknown[list(log.table.primary_key)].values
        ]
        warn(
            f"{len(unknown)} message(s) of unknown delivery ({'; '.join(keys)}): {UNKNOWN_ADVICE}."
        )
    return unknown


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

    def open_sender(self) -> AbstractContextManager[Sender]: ...


@dataclass(frozen=True)
class Delivery:
    """One message to one recipient, sent at most once per (period, recipient[, version])."""

    period: date
    recipient: str
    message: OutgoingEmail
    sha256: str
    version: int | None = None  # a correction's


@dataclass(frozen=True)
class DeliveryResult:
    message_id: str | None
    error: str | None
    attempts: int
    fatal: bool = False  # the rest of the batch cannot be sent either


def deliver(
    sender: Sender,
    email: OutgoingEmail,
    *,
    max_attempts: int = 3,
    retry_delay_seconds: float = 2.0,
    secrets: Iterable[str | None] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryResult:
    """Sends ``email``, retrying what the sender says may succeed later (an SMTP 4xx, a
    dropped SMTP connection) with a growing delay. HTTP senders retry in their transport."""
    secrets = list(secrets)
    attempts = max(1, max_attempts)
    for attempt in range(1, attempts + 1):
        try:
            return DeliveryResult(sender.send(email), None, attempt)
        except SendError as exc:
            if not exc.retryable or attempt == attempts:
                return DeliveryResult(None, scrub(str(exc), secrets), attempt, exc.fatal)
            sleep(retry_delay_seconds * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


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
    sender: Sender,
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

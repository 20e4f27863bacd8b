"""What a run sends of the digests: the digests of the clients asked for and not sent yet,
each as a ``Delivery`` of the ``sent_digests`` log, and each correction as one of
``sent_corrections`` (``delivery/sending.py`` sends them).

A digest's attachments are the week's exports that ``client_digests`` wrote beside the
digest files (the same reports folder; sending runs later, often in another run). They are
read only for the digests this run sends. A file missing then does not hold the digest
back: it goes without that file, and the run warns and lists it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd

from jibble_pipeline.delivery.message import Attachment, OutgoingEmail
from jibble_pipeline.delivery.sending import Delivery
from jibble_pipeline.delivery.sent_log import SentLog
from jibble_pipeline.digest.corrections import Correction
from jibble_pipeline.digest.exports import ATTACHMENTS, attachment_name
from jibble_pipeline.digest.render import (
    correction_subject,
    render_correction_html,
    render_correction_text,
)
from jibble_pipeline.digest.site.paths import export_file


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


def digest_deliveries(digests: Sequence[Mapping], force_nonce: str | None) -> list[Delivery]:
    """The deliveries of the digests (rows of ``client_digests``) in the ``sent_digests``
    log."""
    return [
        Delivery(
            row["week_start"],
            row["client_email"],
            outgoing(row, force_nonce),
            row["digest_sha256"],
        )
        for row in digests
    ]


def with_attachments(
    digests: Sequence[Mapping], attach: Callable[[Mapping], tuple[Attachment, ...]]
) -> Callable[[Delivery], OutgoingEmail]:
    """The email of a digest's delivery about to go, with the attachments ``attach`` gives
    its row."""
    rows = {_key(row): row for row in digests}

    def complete(delivery: Delivery) -> OutgoingEmail:
        row = rows[(delivery.period, delivery.recipient)]
        return replace(delivery.message, attachments=attach(row))

    return complete


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

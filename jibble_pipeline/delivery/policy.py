"""What a sending asset does with its run, the digests, corrections and alert alike.

A dry run (asked in the run's config, or because the channel sends nothing) sends nothing and
says what would go. A forced run sends again what went before, each message under a new
idempotency key so a provider that deduplicates delivers it. A message that failed fails the
run once every other message went; it is recorded in the send log, and the next run sends
only those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from jibble_pipeline.delivery.sent_log import Outcome

RUN_CONFIG_DRY_RUN = "run config dry_run"


class SendConfig(dg.Config):
    """``force``: send again even to recipients who already got it.
    ``dry_run``: report what would be sent, send nothing."""

    force: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class SendPolicy:
    """A run's sending: its id, whether it is forced, and why it sends nothing (None: it
    sends)."""

    run_id: str
    force: bool
    dry_run_reason: str | None

    @classmethod
    def of_run(
        cls, run_id: str, config: SendConfig, channel_reason: str | None = None
    ) -> SendPolicy:
        """The run's config decides; a run not asked for a dry run sends unless the channel
        sends nothing (``channel_reason``)."""
        reason = RUN_CONFIG_DRY_RUN if config.dry_run else channel_reason
        return cls(run_id, config.force, reason)

    @property
    def force_nonce(self) -> str | None:
        """What a forced message adds to its idempotency key."""
        return self.run_id if self.force else None

    def would_send(self, count: int, what: str) -> str:
        """The log line of a dry run."""
        return f"Dry run ({self.dry_run_reason}): would send {count} {what}, sent none."


def outcome_rows(outcomes: Sequence[Outcome]) -> list[dict[str, object]]:
    """The outcomes as rows of a metadata table."""
    return [
        {"to": o.recipient, "status": o.status, "attempts": o.attempts, "error": o.error}
        for o in outcomes
    ]


def fail_if_any_failed(
    outcomes: Sequence[Outcome],
    what: str,
    retried: str,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Fails the run when a message of ``outcomes`` failed to send, saying when the failed ones
    are sent again (``retried``)."""
    failed = [o for o in outcomes if o.status == "failed"]
    if not failed:
        return
    first = failed[0]
    raise dg.Failure(
        description=(
            f"{len(failed)} of {len(outcomes)} {what} failed to send (first: {first.recipient}: "
            f"{first.error}). {retried}"
        ),
        metadata={"sent": len(outcomes) - len(failed), "failed": len(failed), **(metadata or {})},
    )

"""A client's week as it was reported, version by version, next to the week now: what the
report site's client page shows of the as-reported ledger (``digest/ledger.py``), and the
weeks it marks corrected. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd

from jibble_pipeline.digest.content import ClientDigest
from jibble_pipeline.digest.corrections import Correction, DayChange, RowChange, changed_rows

KIND_LABELS = {
    "digest": "Digest",
    "correction": "Correction {number}",
    "past_cutoff": "Changed after the cut-off: in the operations alert, not emailed",
}


@dataclass(frozen=True)
class ReportedVersion:
    """One version of a client's week in the ledger."""

    version: int
    kind: str
    reported_at: datetime
    dry_run: bool
    digest: ClientDigest  # the figures reported
    correction: Correction | None

    @property
    def what(self) -> str:
        """``Correction 1``; a rehearsal (a deployment that sends nothing) says so."""
        label = KIND_LABELS[self.kind].format(number=self.version - 1)
        return label + (" (dry run: not sent)" if self.dry_run else "")

    @property
    def when(self) -> str:
        """``Mon 13 Jan 2025 07:02 UTC``."""
        at = self.reported_at.astimezone(UTC)
        return f"{at:%a} {at.day} {at:%b %Y %H:%M} UTC"


@dataclass(frozen=True)
class Comparison:
    """A version next to the week now: the agent-activity rows and the days that differ
    (every other one is as it was reported), and the totals."""

    version: ReportedVersion
    rows: list[RowChange]
    days: list[DayChange]
    total_before: int
    total_after: int
    unchanged: int  # agent-activity rows and days the same in both

    @property
    def changed(self) -> bool:
        return bool(self.rows or self.days) or self.total_before != self.total_after


def versions_by_client(history: pd.DataFrame) -> dict[tuple[date, str], list[ReportedVersion]]:
    """The ledger's rows (``Ledger.history``) by (week, client), oldest version first."""
    found: dict[tuple[date, str], list[ReportedVersion]] = {}
    for row in history.to_dict(orient="records"):
        correction = row.get("correction")
        found.setdefault((row["week_start"], row["client_email"]), []).append(
            ReportedVersion(
                version=int(row["version"]),
                kind=str(row["kind"]),
                reported_at=pd.Timestamp(row["reported_at"]).to_pydatetime(),
                dry_run=bool(row["dry_run"]),
                digest=ClientDigest.model_validate(row["content"]),
                correction=Correction.model_validate(correction) if correction else None,
            )
        )
    return found


def compare(version: ReportedVersion, now: ClientDigest) -> Comparison:
    """``version``'s figures and the week's now, side by side where they differ (to the
    second: ``changed_rows`` with no tolerance)."""
    every = changed_rows(version.digest, now, tolerance_seconds=-1)
    rows = [r for r in every if r.before_seconds != r.after_seconds]
    before = {d.day: d.seconds for d in version.digest.days}
    days = [
        DayChange(day=d.day, before_seconds=before.get(d.day, 0), after_seconds=d.seconds)
        for d in now.days
    ]
    differ = [d for d in days if d.before_seconds != d.after_seconds]
    return Comparison(
        version=version,
        rows=rows,
        days=differ,
        total_before=version.digest.total_seconds,
        total_after=now.total_seconds,
        unchanged=len(every) - len(rows) + len(days) - len(differ),
    )


def first_changed(comparisons: list[Comparison]) -> int:
    """Which comparison (newest first) a page opens: the newest that differs from now."""
    return next((n for n, c in enumerate(comparisons) if c.changed), 0)


def is_corrected(versions: list[ReportedVersion]) -> bool:
    """Whether the week changed after it was first reported (a correction, or a change past
    the cut-off)."""
    return any(v.kind != "digest" for v in versions)


def corrected_weeks(
    history: Mapping[tuple[date, str], list[ReportedVersion]],
) -> set[tuple[date, str]]:
    return {key for key, versions in history.items() if is_corrected(versions)}

"""A week's corrections as ``sent_corrections`` works them out: each client's latest reported
version against its digest now (``digest/corrections.py``), read from the ledger and the
warehouse, rendered and written under the reports folder, and summed up for the UI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from jibble_pipeline.digest.content import ClientDigest
from jibble_pipeline.digest.corrections import (
    CHANGE_COLUMNS,
    Correction,
    Decision,
    Policy,
    decide,
    landed_after,
)
from jibble_pipeline.digest.ledger import Kind, Ledger, Version
from jibble_pipeline.digest.render import (
    correction_subject,
    render_correction_html,
    render_correction_text,
)
from jibble_pipeline.digest.site.paths import correction_file
from jibble_pipeline.digest.site.publish import write_file
from jibble_pipeline.rules.formatting import format_hours


def _last_change(changes: pd.DataFrame, after: datetime) -> datetime | None:
    """The last moment an entry of ``changes`` landed changed (or was found gone) after
    ``after``."""
    landed = landed_after(changes, after)
    moments = pd.concat([pd.to_datetime(landed[c], utc=True) for c in ("fetched_at", "removed_at")])
    return None if moments.dropna().empty else moments.max().to_pydatetime()


@dataclass(frozen=True)
class CorrectionWeek:
    """The decisions of a week, one per client reported before."""

    week: date
    decisions: list[Decision]

    def of(self, verdict: str) -> list[Correction]:
        return [d.correction for d in self.decisions if d.verdict == verdict and d.correction]

    def versions(self, verdict: str) -> list[Version]:
        """The ledger versions the corrections of ``verdict`` (``send``, ``past_cutoff``)
        record: each with the digest now."""
        kind: Kind = "correction" if verdict == "send" else "past_cutoff"
        return [
            Version(
                kind, d.digest, correction_subject(d.correction), d.correction, d.correction.version
            )
            for d in self.decisions
            if d.verdict == verdict and d.correction and d.digest
        ]

    def publish(self, root: Path) -> list[str]:
        """Writes each correction (to send, or past the cut-off) as HTML and text; returns
        the HTML files' paths relative to ``root``."""
        written = []
        for correction in self.of("send") + self.of("past_cutoff"):
            week, email, number = self.week, correction.client_email, correction.number
            write_file(
                root, correction_file(week, email, number), render_correction_html(correction)
            )
            write_file(
                root,
                correction_file(week, email, number, ".txt"),
                render_correction_text(correction),
            )
            written.append(correction_file(week, email, number))
        return written

    def per_client(self) -> list[dict[str, object]]:
        """One row per client reported before, for the UI."""
        rows: list[dict[str, object]] = []
        for decision in self.decisions:
            c = decision.correction
            rows.append(
                {
                    "week": self.week.isoformat(),
                    "client": decision.client_email,
                    "verdict": decision.verdict,
                    "correction": c.number if c else None,
                    "rows_changed": len(c.rows) if c else 0,
                    "total": f"{format_hours(c.total_before)} -> {format_hours(c.total_after)}"
                    if c
                    else None,
                    "causes": ", ".join(c.causes) if c else None,
                    "quiet_until": decision.wait_until.isoformat() if decision.wait_until else None,
                    "file": correction_file(self.week, c.client_email, c.number) if c else None,
                }
            )
        return rows


def correction_week(
    week: date,
    current: Sequence[ClientDigest],
    ledger: Ledger,
    policy: Policy,
    now: datetime,
    rehearsal: bool,
) -> CorrectionWeek:
    """Each client of ``current`` (the week's digests now) that was reported the week before,
    decided: unchanged, waiting for quiet, past the cut-off, or a correction to send."""
    latest, following = ledger.latest([week], rehearsal)
    reported = {email: latest[(w, email)] for (w, email) in latest if w == week}
    mine = [d for d in current if d.client_email in reported]
    persons = sorted(
        {a.person_id for d in mine for a in d.agents}
        | {a.person_id for r in reported.values() for a in r.digest.agents}
    )
    since = min((r.reported_at for r in reported.values()), default=None)
    changes = (
        ledger.entry_changes(week, persons, since)
        if since is not None
        else pd.DataFrame(columns=CHANGE_COLUMNS)
    )
    decisions = []
    for digest in mine:
        was = reported[digest.client_email]
        people = {a.person_id for a in digest.agents} | {a.person_id for a in was.digest.agents}
        own = changes[changes["person_id"].isin(people)]
        last = _last_change(own, was.reported_at)
        version = following[(week, digest.client_email)]
        decisions.append(decide(was, digest, own, last, now, policy, version))
    return CorrectionWeek(week, decisions)

"""What one Jibble tenant accepts and how it answers, as the client learned it.

Public evidence leaves parts of the API unproven (docs/jibble-api.md): which properties
``$orderby`` accepts, whether ``$filter`` takes ``updatedAt``, the report's shape, the rate
limit. The client does not assume them: where a request shape is refused (400), it tries the
next one that yields the same rows, and records what the tenant accepted here. The warehouse
keeps the profile per tenant (``warehouse.tenant``), so the next run starts from it; a
remembered shape the tenant refuses later is learned again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime

# Time-entry sort orders the paging can use, most stable first: with ``createdAt`` new entries
# sort last, beyond the count taken first; with ``time`` an entry added mid-order shifts the
# rows after it, which the paging's overlap check notices (it reads the date again). The
# empty order (the server's own) is the last resort.
ENTRY_ORDERS = (
    "createdAt asc,id asc",
    "time asc,id asc",
    "personId asc,time asc,id asc",
    "time asc",
    "personId asc,time asc",
    "",
)
WORKSPACE_ORDERS = ("id asc", "")
# TrackedTimeReport: OData paging as the simulator first read it, or as public callers send
# it (``subGroupBy``, no paging options).
REPORT_SHAPES = ("paged", "subGroupBy=None", "subGroupBy=Date")
# HourEntries: a ``belongsToDate`` range, a ``date`` range, or everything filtered here.
HOUR_ENTRY_FILTERS = ("belongsToDate", "date", "")

ENTRY_ORDER = "entry_order"
WORKSPACE_ORDER = "workspace_order"
UPDATED_AT_FILTER = "updated_at_filter"
REPORT_SHAPE = "report_shape"
REPORT_DURATIONS = "report_durations"
RATE_LIMIT = "rate_limit"
ORGANIZATION = "organization"
HOUR_ENTRIES = "hour_entries_filter"

# What each capability means, for logs, the UI and ``doctor``.
DESCRIPTIONS = {
    ENTRY_ORDER: "TimeEntries sorted by",
    WORKSPACE_ORDER: "People, Groups, Activities sorted by",
    UPDATED_AT_FILTER: "$filter on updatedAt",
    REPORT_SHAPE: "TrackedTimeReport asked as",
    REPORT_DURATIONS: "TrackedTimeReport durations",
    RATE_LIMIT: "rate limit the answers state",
    ORGANIZATION: "organisation read",
    HOUR_ENTRIES: "HourEntries filtered on",
}


@dataclass(frozen=True)
class Learned:
    """One capability: its ``value`` and what the tenant answered to learn it."""

    capability: str
    value: str
    evidence: str
    learned_at: datetime

    def describe(self) -> str:
        shown = self.value if self.value else "(none)"
        return f"{DESCRIPTIONS.get(self.capability, self.capability)}: {shown} ({self.evidence})"


class TenantProfile:
    """The capabilities known of one tenant; ``changes`` holds what this session learned
    that differs from what it started with (to be saved and told once)."""

    def __init__(self, known: dict[str, Learned] | None = None):
        self._known = dict(known or {})
        self._lock = threading.Lock()
        self.changes: list[Learned] = []

    def get(self, capability: str) -> str | None:
        with self._lock:
            learned = self._known.get(capability)
            return None if learned is None else learned.value

    def learned(self) -> list[Learned]:
        with self._lock:
            return sorted(self._known.values(), key=lambda item: item.capability)

    def learn(self, capability: str, value: str, evidence: str) -> Learned | None:
        """Records a capability; returns it when it is new or changed (else None)."""
        with self._lock:
            known = self._known.get(capability)
            if known is not None and known.value == value:
                return None
            learned = Learned(capability, value, evidence, datetime.now(UTC))
            self._known[capability] = learned
            self.changes = [c for c in self.changes if c.capability != capability] + [learned]
            return learned

    def forget(self, capability: str) -> None:
        """A remembered value the tenant now refuses: it is learned again."""
        with self._lock:
            self._known.pop(capability, None)

    def with_evidence(self, capability: str, evidence: str) -> None:
        """Replaces the evidence of a known capability (e.g. the refusals met before it)."""
        with self._lock:
            if capability in self._known:
                self._known[capability] = replace(self._known[capability], evidence=evidence)

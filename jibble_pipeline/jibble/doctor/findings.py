"""What the doctor found, and the run it was asked about.

Each finding is a capability, what the tenant answered and what the pipeline will do; a
finding that would stop a run is blocking. The first page each endpoint answered is kept
(``samples``) so that ``--sample`` can write it out, redacted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True)
class Finding:
    capability: str
    answered: str
    will_do: str
    blocking: bool = False


@dataclass
class Diagnosis:
    findings: list[Finding] = field(default_factory=list)
    samples: dict[str, Any] = field(default_factory=dict)  # endpoint -> first page answered
    requests: int = 0
    seconds: float = 0.0

    @property
    def blocked(self) -> bool:
        return any(f.blocking for f in self.findings)

    def add(self, capability: str, answered: str, will_do: str, blocking: bool = False) -> None:
        self.findings.append(Finding(capability, answered, will_do, blocking))


@dataclass(frozen=True)
class Plan:
    """What the run would be asked to do: the configured range and request limits."""

    first_date: date
    last_date: date
    concurrency: int
    max_requests_per_second: float | None
    organization_id: str | None  # JIBBLE_ORGANIZATION_ID

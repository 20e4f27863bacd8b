"""How one Jibble tenant's API differs from the simulator's default reading of Jibble.

Public integrations of the real API confirm the hosts, paths, token, ``belongsToDate``
filters and ``$skip``/``$count`` paging, and leave other things unproven or contradicted
(docs/jibble-api.md). Each option of a ``Dialect`` plays one variant that evidence allows, so
the pipeline can be shown exact against each of them and against all of them together. The
default dialect is the simulator as it always was.
"""

from __future__ import annotations

from dataclasses import dataclass

# Where a person's time zone is: the top-level field, the flat key of an OData open type as
# Airbyte's schema shows it, or a nested settings object.
TIME_ZONE_FIELDS = ("timeZone", "ICultureSettings/TimeZone", "cultureSettings")


@dataclass(frozen=True)
class Dialect:
    """``orderable``: the only properties ``$orderby`` accepts, for every collection (None:
    every field), others are answered 400 as ASP.NET OData words it.
    ``updated_at_filterable``: False answers a ``$filter`` on ``updatedAt`` with 400.
    ``public_reports``: ``TrackedTimeReport`` as its public callers use it: ``subGroupBy``
    required, ``$top``/``$skip``/``$count`` refused, rows ``{id, entityType, trackedTime}``
    with .NET TimeSpan durations (``1.02:03:04``).
    ``time_zone``: one of ``TIME_ZONE_FIELDS``; with ``cultureSettings`` a person's zone is
    only in ``{"cultureSettings": {"timeZone": ...}}``.
    ``other_organisation_agents``: people of a second organisation that the same credentials
    see, with their groups, activities and entries (0: none).
    ``hour_entries``: ``/v1/HourEntries`` holds hours logged as durations (without it, the
    path does not exist: 404)."""

    orderable: tuple[str, ...] | None = None
    updated_at_filterable: bool = True
    public_reports: bool = False
    time_zone: str = "timeZone"
    other_organisation_agents: int = 0
    hour_entries: bool = False

    def __post_init__(self) -> None:
        if self.time_zone not in TIME_ZONE_FIELDS:
            raise ValueError(f"time_zone must be one of {', '.join(TIME_ZONE_FIELDS)}")
        if self.other_organisation_agents < 0:
            raise ValueError("other_organisation_agents must be 0 or more")
        if self.orderable is not None and not self.orderable:
            raise ValueError("orderable must name at least one property (or be None: all)")

    @classmethod
    def as_public_evidence_allows(cls) -> Dialect:
        """Every variant at once: the hardest tenant the evidence allows."""
        return cls(
            orderable=("time", "personId"),
            updated_at_filterable=False,
            public_reports=True,
            time_zone="cultureSettings",
            other_organisation_agents=5,
            hour_entries=True,
        )

    def refused_filter_fields(self) -> frozenset[str]:
        return frozenset() if self.updated_at_filterable else frozenset({"updatedAt"})

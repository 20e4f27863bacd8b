"""``$filter`` expressions in Jibble's dialect: unquoted date and instant literals."""

from __future__ import annotations

from datetime import UTC, date, datetime


def instant_literal(moment: datetime) -> str:
    """``2025-11-03T10:00:00Z`` (whole seconds, UTC); naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("filter instants must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def between_dates(field: str, first: date, last: date) -> str:
    """``field`` in [first, last], inclusive (one condition when first == last)."""
    if first == last:
        return f"{field} eq {first.isoformat()}"
    return f"{field} ge {first.isoformat()} and {field} le {last.isoformat()}"


def at_or_after(field: str, moment: datetime) -> str:
    return f"{field} ge {instant_literal(moment)}"


def after(field: str, moment: datetime) -> str:
    return f"{field} gt {instant_literal(moment)}"


def before(field: str, moment: datetime) -> str:
    return f"{field} lt {instant_literal(moment)}"


def all_of(*conditions: str) -> str:
    """Conditions joined by ``and``, each parenthesised when it has its own ``or``."""
    return " and ".join(f"({c})" if " or " in c else c for c in conditions)


def any_of(*conditions: str) -> str:
    """Conditions joined by ``or``, each parenthesised when it has its own ``and``.

    >>> any_of("a eq 1 and b eq 2", "a eq 3")
    '(a eq 1 and b eq 2) or a eq 3'
    """
    return " or ".join(f"({c})" if " and " in c else c for c in conditions)


def on_work_date(day: date) -> str:
    """Entries of the work date ``day``."""
    return between_dates("belongsToDate", day, day)


def query_options(condition: str, order: str) -> dict[str, str]:
    """``$filter`` and ``$orderby`` options, each left out when empty."""
    query = {"$filter": condition} if condition else {}
    return {**query, "$orderby": order} if order else query

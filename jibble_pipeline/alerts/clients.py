"""What the alert tells of clients rather than agents, read from the warehouse: the clients
behind their contract's pace (``pace``), and the reported weeks that changed after the
correction cut-off, noted on the alert's day (``digest/ledger.py``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, time, timedelta

from jibble_pipeline.alerts.message import Problem
from jibble_pipeline.alerts.pace import behind_pace
from jibble_pipeline.alerts.problems import load_delivered
from jibble_pipeline.digest.content import client_name, week_label
from jibble_pipeline.digest.corrections import Correction
from jibble_pipeline.digest.directory.clients import clients_from_frame
from jibble_pipeline.digest.ledger import Ledger
from jibble_pipeline.rules.formatting import format_hours
from jibble_pipeline.warehouse.display_names import Names
from jibble_pipeline.warehouse.store import Warehouse


def pace_problems(
    store: Warehouse,
    day: date,
    names: Names,
    working_days: Sequence[int],
    holidays: Collection[date],
    margin_percent: float,
) -> list[Problem]:
    """The clients whose week to ``day`` is behind their contract's pace."""
    clients = [c for c in clients_from_frame(store.read("client_directory")) if c.contract]
    monday = day - timedelta(days=day.weekday())
    behind = behind_pace(
        day,
        load_delivered(store, monday, day),
        {c.email: c.contract.seconds for c in clients if c.contract},
        {c.email: client_name(c, names) for c in clients},
        working_days,
        holidays,
        margin_percent,
    )
    return [Problem("pace_short", pace.client, pace.text) for pace in behind]


def past_cutoff_line(change: Correction) -> str:
    """``week of 6 Jan – 12 Jan 2025: 9:15 -> 10:00; Carla Diaz, Inbound Calls 8:30 -> 9:15
    (entries edited after the report)``."""
    rows = [
        f"{r.agent}, {r.activity} {format_hours(r.before_seconds)} -> "
        f"{format_hours(r.after_seconds)} ({r.cause_text})"
        for r in change.rows
    ]
    totals = f"{format_hours(change.total_before)} -> {format_hours(change.total_after)}"
    return "; ".join([f"week of {week_label(change.week_start)}: {totals}", *rows])


def past_cutoff_problems(store: Warehouse, day: date) -> list[Problem]:
    """The changes past the cut-off noted on ``day`` (UTC): each once, on its day's alert."""
    first = datetime.combine(day, time(), tzinfo=UTC)
    changes = Ledger(store).past_cutoff(first, first + timedelta(days=1))
    return [Problem("past_cutoff", c.client_name, past_cutoff_line(c)) for c in changes]

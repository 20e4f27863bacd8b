"""The view models of the site's pages: an agent's week, day by day, from the sessions and
attendance frames, and where its timeline's bars go."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import pandas as pd
from pydantic import BaseModel, ConfigDict

from jibble_pipeline.digest.content import local_start
from jibble_pipeline.warehouse.display_names import Names


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class TimelineSession(_Model):
    start_local: datetime
    end_local: datetime | None
    offset_minutes: int | None
    activity: str
    kind: str
    status: str
    auto_out: bool
    seconds: int | None


class AgentDay(_Model):
    day: date
    clock_in: datetime | None
    clock_out: datetime | None
    work_seconds: int
    break_seconds: int
    sessions: list[TimelineSession]


class AgentWeek(_Model):
    person_id: str
    agent: str
    groups: list[str]
    week_start: date
    days: list[AgentDay]
    work_seconds: int
    break_seconds: int
    open_sessions: int
    incomplete_sessions: int
    auto_outs: int

    @property
    def days_worked(self) -> int:
        return sum(1 for d in self.days if d.sessions)


def _time(value: object) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


def agent_weeks(
    week_start: date, sessions: pd.DataFrame, attendance: pd.DataFrame, names: Names
) -> list[AgentWeek]:
    """Every agent with a session or attendance row in the week, day by day."""
    last = week_start + timedelta(days=6)
    sessions = sessions[
        (sessions["belongs_to_date"] >= week_start) & (sessions["belongs_to_date"] <= last)
    ]
    attendance = attendance[
        (attendance["belongs_to_date"] >= week_start) & (attendance["belongs_to_date"] <= last)
    ]
    by_person_sessions = dict(list(sessions.groupby("person_id")))
    by_person_days = dict(list(attendance.groupby("person_id")))
    weeks = []
    for person_id in sorted(set(by_person_sessions) | set(by_person_days)):
        own = by_person_sessions.get(person_id, sessions.iloc[0:0]).sort_values("start_utc")
        present = by_person_days.get(person_id, attendance.iloc[0:0])
        day_rows = {row["belongs_to_date"]: row for row in present.to_dict(orient="records")}
        days = []
        for n in range(7):
            day = week_start + timedelta(days=n)
            timeline = []
            for row in own[own["belongs_to_date"] == day].to_dict(orient="records"):
                start, offset = local_start(row)
                seconds = row["duration_seconds"]
                timeline.append(
                    TimelineSession(
                        start_local=start,
                        end_local=_time(row.get("end_local")),
                        offset_minutes=offset,
                        activity=names.activity(
                            None if pd.isna(row["activity_id"]) else row["activity_id"],
                            row["kind"],
                        ),
                        kind=row["kind"],
                        status=row["status"],
                        auto_out=bool(row["auto_out"]),
                        seconds=None if pd.isna(seconds) else int(seconds),
                    )
                )
            attended = day_rows.get(day)
            complete = [s for s in timeline if s.status == "complete" and s.seconds is not None]
            days.append(
                AgentDay(
                    day=day,
                    clock_in=_time(attended["clock_in_local"]) if attended else None,
                    clock_out=_time(attended["clock_out_local"]) if attended else None,
                    work_seconds=sum(s.seconds or 0 for s in complete if s.kind == "work"),
                    break_seconds=sum(s.seconds or 0 for s in complete if s.kind == "break"),
                    sessions=timeline,
                )
            )
        groups = sorted({names.group(g) for g in own["group_id"]} if len(own) else set())
        all_sessions = [s for d in days for s in d.sessions]
        weeks.append(
            AgentWeek(
                person_id=str(person_id),
                agent=names.agent(str(person_id)),
                groups=groups,
                week_start=week_start,
                days=days,
                work_seconds=sum(d.work_seconds for d in days),
                break_seconds=sum(d.break_seconds for d in days),
                open_sessions=sum(s.status == "open" for s in all_sessions),
                incomplete_sessions=sum(s.status == "incomplete" for s in all_sessions),
                auto_outs=sum(s.auto_out for s in all_sessions),
            )
        )
    weeks.sort(key=lambda a: (a.agent.lower(), a.person_id))
    return weeks


def timeline_hours(agent: AgentWeek) -> tuple[int, int]:
    """The hours (after each work date's local midnight) the timeline bars span."""
    points: list[float] = []
    for day in agent.days:
        midnight = datetime.combine(day.day, datetime.min.time())
        for s in day.sessions:
            points.append((s.start_local - midnight).total_seconds() / 3600)
            if s.end_local is not None:
                points.append((s.end_local - midnight).total_seconds() / 3600)
    if not points:
        return 0, 24
    low, high = int(min(points) // 1), int(-(-max(points) // 1))
    if high - low < 8:
        high = low + 8
    return low, high


def bar_position(scale: tuple[int, int]) -> Callable[[TimelineSession, date], tuple[float, float]]:
    """Where a session's bar starts and how wide it is, in percent of the timeline."""
    low, high = scale

    def position(session: TimelineSession, day: date) -> tuple[float, float]:
        midnight = datetime.combine(day, datetime.min.time())
        start = (session.start_local - midnight).total_seconds() / 3600
        end = (
            (session.end_local - midnight).total_seconds() / 3600
            if session.end_local is not None
            else start + 0.25  # no end: a short hatched marker at the start
        )
        span = high - low
        left = max(0.0, (start - low) / span * 100)
        width = max(0.4, (end - start) / span * 100)
        return round(left, 2), round(min(width, 100 - left), 2)

    return position


def hours_label(scale: tuple[int, int]) -> str:
    def hour(h: int) -> str:
        return f"{h % 24:02d}:00" + (" (+1 day)" if h >= 24 else "")

    return f"{hour(scale[0])} to {hour(scale[1])}"

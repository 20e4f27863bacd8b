"""The internal report site: static HTML pages, one folder per week, relative links only, so
it opens from disk or behind any static file server.

::

    index.html                               clients -> their weeks (totals)
    weeks/<monday>/index.html                the week: every client and every agent
    weeks/<monday>/clients/<client>.html     a client's week (the digest, agents linked)
    weeks/<monday>/agents/<agent>.html       an agent's week: daily clock-in/out and sessions
    weeks/<monday>/reported/<client>-version-<n>.html  each version the client was told
    digests/<monday>/<client>.html|.txt      the digest exactly as emailed
    digests/<monday>/<client>-hours.xlsx     its exports: a workbook, and the same two tables
    digests/<monday>/<client>-hours.csv|-sessions.csv  as CSV (``digest/exports.py``)
    corrections/<monday>/<client>-correction-<n>.html|.txt  each correction as emailed

Rendering is pure (``render_week``, ``render_index``, ``digest_files`` return
``{relative path: text}``); ``publish`` writes a folder of them (text, or bytes for the
exports) and swaps it in whole.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path, PurePosixPath

import pandas as pd
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict

from jibble_pipeline.digest.charts import Bar, bar_chart
from jibble_pipeline.digest.content import ClientDigest, local_start, utc_offset, week_label
from jibble_pipeline.digest.history import (
    ReportedVersion,
    compare,
    first_changed,
    is_corrected,
)
from jibble_pipeline.digest.render import (
    environment,
    render_correction_html,
    render_html,
    render_text,
)
from jibble_pipeline.rules.formatting import format_hours
from jibble_pipeline.warehouse.display_names import Names

_UNSAFE = re.compile(r"[^a-z0-9]+")


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


# ------------------------------------------------------------------------------ paths


def slug(text: str) -> str:
    """A file name for any text: readable part plus a short hash (no collisions, no ``..``)."""
    readable = _UNSAFE.sub("-", text.lower()).strip("-")[:48] or "x"
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def week_dir(week: date) -> str:
    return f"weeks/{week.isoformat()}"


def client_page(week: date, email: str) -> str:
    return f"{week_dir(week)}/clients/{slug(email)}.html"


def agent_page(week: date, person_id: str) -> str:
    return f"{week_dir(week)}/agents/{slug(person_id)}.html"


def digest_dir(week: date) -> str:
    return f"digests/{week.isoformat()}"


def digest_file(week: date, email: str, suffix: str = ".html") -> str:
    return f"{digest_dir(week)}/{slug(email)}{suffix}"


def correction_file(week: date, email: str, number: int, suffix: str = ".html") -> str:
    """A correction of a client's week as emailed (number 1: the first after the digest)."""
    return f"corrections/{week.isoformat()}/{slug(email)}-correction-{number}{suffix}"


# The exports of a client's week, beside its digest (rendered by ``digest/exports.py``).
EXPORT_SUFFIXES = {
    "hours_xlsx": "-hours.xlsx",
    "hours_csv": "-hours.csv",
    "sessions_csv": "-sessions.csv",
}


def export_file(week: date, email: str, kind: str) -> str:
    return digest_file(week, email, EXPORT_SUFFIXES[kind])


def export_links(from_page: str, week: date, email: str) -> dict[str, str]:
    """The links from a page to a client's week of exports, by kind."""
    return {kind: relative(from_page, export_file(week, email, kind)) for kind in EXPORT_SUFFIXES}


def relative(from_page: str, to_page: str) -> str:
    """The link from one site page to another (both relative to the site root)."""
    start = PurePosixPath(from_page).parent
    return os.path.relpath(to_page, start.as_posix() if start.parts else ".")


# ------------------------------------------------------------------------ agent weeks


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


# -------------------------------------------------------------------------- rendering


def _clock(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%H:%M}"


def _flags(agent: AgentWeek) -> str:
    parts = [
        f"{count} {label}"
        for count, label in (
            (agent.open_sessions, "open"),
            (agent.incomplete_sessions, "incomplete"),
            (agent.auto_outs, "auto clock-out"),
        )
        if count
    ]
    return ", ".join(parts)


def _scale(agent: AgentWeek) -> tuple[int, int]:
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


def _position(scale: tuple[int, int]):
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


def _page(template: str, path: str, title: str, crumbs: list[tuple[str, str]], **values) -> str:
    links = [(label, relative(path, target)) for label, target in crumbs]
    return environment.get_template(template).render(
        title=title,
        crumbs=links,
        clock=_clock,
        offset=utc_offset,
        flags=_flags,
        **values,
    )


TREND_WEEKS = 12


def trend_chart(digest: ClientDigest, totals: Mapping[date, int]) -> Markup:
    """The client's hours per week over the ``TREND_WEEKS`` weeks to the digest's (those the
    warehouse has), against its contract's line when it has one."""
    weeks = [digest.week_start - timedelta(weeks=n) for n in range(TREND_WEEKS - 1, -1, -1)]
    first = min(totals, default=digest.week_start)
    bars = [
        Bar(f"{w.day} {w:%b}", totals.get(w, 0), f"Week of {week_label(w)}: "
            f"{format_hours(totals.get(w, 0))}")
        for w in weeks
        if w >= first
    ]  # fmt: skip
    contract = digest.delivery.contracted_seconds if digest.delivery else None
    caption = f"Hours per week of {digest.client_name}, the last {len(bars)} weeks" + (
        f", against the contract's {format_hours(contract)}" if contract else ""
    )
    return Markup(bar_chart(bars, caption, contract, "contract"))


def day_chart(agent: AgentWeek) -> Markup:
    """An agent's work hours per day of the week."""
    bars = [
        Bar(f"{d.day:%a} {d.day.day}", d.work_seconds, f"{d.day:%a} {d.day.day} {d.day:%b}: "
            f"{format_hours(d.work_seconds)}")
        for d in agent.days
    ]  # fmt: skip
    return Markup(bar_chart(bars, f"Work hours per day of {agent.agent}"))


def version_file(week: date, email: str, version: int) -> str:
    """A version of a client's week as it was sent, rendered from the ledger's figures."""
    return f"{week_dir(week)}/reported/{slug(email)}-version-{version}.html"


def version_email(version: ReportedVersion) -> str:
    """The email of a version, from what the ledger recorded it said: the digest, or the
    correction (a change past the cut-off renders as the correction it would have been)."""
    if version.correction is None:
        return render_html(version.digest)
    return render_correction_html(version.correction)


def digest_files(digests: Sequence[ClientDigest], html: Mapping[str, str]) -> dict[str, str]:
    """``digests/<week>/<client>.html`` (as emailed: ``html`` by client email) and ``.txt``."""
    files = {}
    for digest in digests:
        files[digest_file(digest.week_start, digest.client_email)] = html[digest.client_email]
        files[digest_file(digest.week_start, digest.client_email, ".txt")] = render_text(digest)
    return files


def render_week(
    week_start: date,
    digests: Sequence[ClientDigest],
    agents: Sequence[AgentWeek],
    generated_at: datetime,
    history: Mapping[tuple[date, str], list[ReportedVersion]] | None = None,
    trends: Mapping[str, Mapping[date, int]] | None = None,
) -> dict[str, str]:
    """The week's pages, by path relative to the site root. ``history``: the versions each
    client was told of the week (the as-reported ledger); ``trends``: each client's hours per
    week (for the client page's chart)."""
    history = history or {}
    trends = trends or {}
    stamp = f"{generated_at:%Y-%m-%d %H:%M}"
    label = week_label(week_start)
    week_index = f"{week_dir(week_start)}/index.html"
    files: dict[str, str] = {}
    agent_paths = {a.person_id: agent_page(week_start, a.person_id) for a in agents}
    below_week = [("All clients", "index.html"), (f"Week of {label}", week_index)]

    def week_page(template: str, path: str, title: str, **values: object) -> str:
        """A client's or an agent's page, its crumbs leading back to the week."""
        return _page(template, path, title, below_week, generated_at=stamp, **values)

    files[week_index] = _page(
        "site_week.html",
        week_index,
        f"Week of {label}",
        [("All clients", "index.html")],
        week_label=label,
        clients=[
            (
                d,
                relative(week_index, client_page(week_start, d.client_email)),
                relative(week_index, digest_file(week_start, d.client_email)),
                export_links(week_index, week_start, d.client_email),
            )
            for d in sorted(digests, key=lambda d: d.client_name.lower())
        ],
        corrected={
            d.client_email
            for d in digests
            if is_corrected(history.get((week_start, d.client_email), []))
        },
        agents=[(a, relative(week_index, agent_paths[a.person_id])) for a in agents],
        generated_at=stamp,
    )
    for digest in digests:
        path = client_page(week_start, digest.client_email)

        def agent_href(person_id: str, _from: str = path) -> str:
            target = agent_paths.get(person_id)
            return relative(_from, target) if target else "#"

        versions = history.get((week_start, digest.client_email), [])
        for version in versions:
            files[version_file(week_start, digest.client_email, version.version)] = version_email(
                version
            )
        comparisons = [compare(v, digest) for v in reversed(versions)]
        files[path] = week_page(
            "site_client.html",
            path,
            digest.client_name,
            d=digest,
            agent_href=agent_href,
            digest_href=relative(path, digest_file(week_start, digest.client_email)),
            exports=export_links(path, week_start, digest.client_email),
            chart=trend_chart(digest, trends.get(digest.client_email, {})),
            versions=[
                (v, relative(path, version_file(week_start, digest.client_email, v.version)))
                for v in versions
            ],
            comparisons=comparisons,
            opened=first_changed(comparisons),
            corrected=is_corrected(versions),
        )
    for agent in agents:
        path = agent_paths[agent.person_id]
        scale = _scale(agent)
        files[path] = week_page(
            "site_agent.html",
            path,
            agent.agent,
            a=agent,
            week_label=label,
            position=_position(scale),
            scale_label=_scale_label(scale),
            chart=day_chart(agent),
        )
    return files


def _scale_label(scale: tuple[int, int]) -> str:
    def hour(h: int) -> str:
        return f"{h % 24:02d}:00" + (" (+1 day)" if h >= 24 else "")

    return f"{hour(scale[0])} to {hour(scale[1])}"


def render_index(
    summary: pd.DataFrame,
    site_weeks: Sequence[date],
    generated_at: datetime,
    corrected: set[tuple[date, str]] | None = None,
) -> str:
    """``summary``: one row per (week_start, client_email) with ``client_name`` and
    ``total_work_seconds``; a week links to its client page when the site has that week,
    else to the digest file; ``corrected`` (week, client) are marked."""
    have = set(site_weeks)
    corrected = corrected or set()
    clients = []
    for email, rows in summary.groupby("client_email", sort=False):
        rows = rows.sort_values("week_start", ascending=False)
        weeks = []
        for row in rows.to_dict(orient="records"):
            week = row["week_start"]
            target = client_page(week, email) if week in have else digest_file(week, email)
            weeks.append(
                {
                    "href": relative("index.html", target),
                    "label": f"{week.day} {week:%b %Y}",
                    "hours": format_hours(row["total_work_seconds"]),
                    "corrected": (week, email) in corrected,
                }
            )
        clients.append({"email": email, "name": rows["client_name"].iloc[0], "weeks": weeks})
    clients.sort(key=lambda c: (str(c["name"]).lower(), c["email"]))
    weeks = [
        {"href": f"{week_dir(w)}/index.html", "label": f"{w.day} {w:%b %Y}"}
        for w in sorted(have, reverse=True)
    ]
    return _page(
        "site_index.html",
        "index.html",
        "Weekly hours",
        [],
        clients=clients,
        weeks=weeks,
        generated_at=f"{generated_at:%Y-%m-%d %H:%M}",
    )


# ----------------------------------------------------------------------------- files


def _safe(root: Path, relative_path: str) -> Path:
    path = PurePosixPath(relative_path)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"unsafe site path {relative_path!r}")
    return root.joinpath(*path.parts)


def write_file(root: Path, relative_path: str, content: str | bytes) -> Path:
    """Writes one file atomically (a reader never sees half a page); text as UTF-8."""
    target = _safe(root, relative_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    if isinstance(content, bytes):
        temporary.write_bytes(content)
    else:
        temporary.write_text(content, encoding="utf-8")
    os.replace(temporary, target)
    return target


def publish(root: Path, folder: str, files: Mapping[str, str | bytes]) -> int:
    """Replaces ``root/folder`` by exactly ``files`` (paths relative to ``root``, all inside
    ``folder``): pages of a client or agent gone from the data disappear too."""
    target = _safe(root, folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.new-{uuid.uuid4().hex}")
    prefix = PurePosixPath(folder)
    for relative_path, content in files.items():
        inner = PurePosixPath(relative_path).relative_to(prefix)
        write_file(staging, inner.as_posix(), content)
    staging.mkdir(parents=True, exist_ok=True)
    retired: list[Path] = []
    for attempt in range(5):  # another run may swap its own folder in at the same moment
        if target.exists():
            retired.append(target.with_name(f".{target.name}.old-{uuid.uuid4().hex}"))
            try:
                os.replace(target, retired[-1])
            except FileNotFoundError:
                retired.pop()
        try:
            os.replace(staging, target)
            break
        except OSError:
            if attempt == 4:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    for folder_gone in retired:
        shutil.rmtree(folder_gone, ignore_errors=True)
    return len(files)


def existing_weeks(root: Path) -> list[date]:
    """Weeks the site has pages for."""
    weeks = []
    folder = root / "weeks"
    if folder.is_dir():
        for child in folder.iterdir():
            try:
                weeks.append(date.fromisoformat(child.name))
            except ValueError:
                continue
    return sorted(weeks)

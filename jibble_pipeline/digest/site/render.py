"""The site's pages rendered from their templates: a week (its clients and agents, a
client's week with its chart and what it was told version by version, an agent's week with
its timeline), the index of every client's weeks, and the digests' files as emailed. Pure:
each returns text by path relative to the site root."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

import pandas as pd
from markupsafe import Markup

from jibble_pipeline.digest.charts import Bar, bar_chart
from jibble_pipeline.digest.content import ClientDigest, utc_offset, week_label
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
from jibble_pipeline.digest.site.pages import AgentWeek, bar_position, hours_label, timeline_hours
from jibble_pipeline.digest.site.paths import (
    agent_page,
    client_page,
    digest_file,
    export_links,
    relative,
    version_file,
    week_dir,
)
from jibble_pipeline.rules.formatting import format_hours


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
        scale = timeline_hours(agent)
        files[path] = week_page(
            "site_agent.html",
            path,
            agent.agent,
            a=agent,
            week_label=label,
            position=bar_position(scale),
            scale_label=hours_label(scale),
            chart=day_chart(agent),
        )
    return files


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

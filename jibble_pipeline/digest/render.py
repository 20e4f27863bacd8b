"""A client digest as email HTML and as plain text; hours always as ``h:mm``.

HTML goes through Jinja2 (installed with Dagster, which depends on it) with autoescaping
on for every template: each ``{{ value }}`` is escaped, attribute values included, so a
name like ``<script>`` or ``"><img onerror=…>`` arriving from Jibble or Airtable is shown as
text, and a template cannot forget an ``html.escape`` call. ``StrictUndefined`` turns a
misspelt field into an error instead of an empty cell. The markup is what mail clients read
well: nested tables, inline styles, no scripts, no external CSS or images.
"""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from jibble_pipeline.digest.content import ClientDigest, week_label
from jibble_pipeline.digest.corrections import Correction
from jibble_pipeline.rules.formatting import format_hours

FOOTNOTE = (
    "Hours are h:mm of completed work sessions. Sessions still open or never clocked out "
    "count no hours until they are closed in Jibble; they are listed under Notes."
)
CORRECTION_FOOTNOTE = (
    "Agents and activities not listed are as reported. Hours are h:mm of completed work "
    "sessions; a change of a minute or less is not sent."
)
ATTACHED = (
    "Attached, to open in a spreadsheet: the hours per agent, activity and day, and every session:"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

_STYLE = {
    "muted": "color:#57606a;",
    "cell": "padding:6px 8px;border-bottom:1px solid #eaeef2;",
    "num": "padding:6px 8px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap;",
    "head": "padding:6px 8px;border-bottom:2px solid #d0d7de;text-align:left;font-size:12px;"
    "color:#57606a;text-transform:uppercase;letter-spacing:.04em;",
    "h2": "margin:24px 0 8px;font-size:16px;",
}


def day_label(day) -> str:
    """``Mon 6 Jan``."""
    return f"{day:%a} {day.day} {day:%b}"


TEMPLATES = Path(__file__).with_name("templates")
environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def signed(seconds: int) -> str:
    """``+0:45``, ``-1:30``."""
    return ("+" if seconds >= 0 else "-") + format_hours(abs(seconds))


environment.globals.update(
    hours=format_hours,
    s=_STYLE,
    footnote=FOOTNOTE,
    correction_footnote=CORRECTION_FOOTNOTE,
    attached=ATTACHED,
    day_label=day_label,
    signed=signed,
)


def one_line(text: str, limit: int = 200) -> str:
    """Text fit for a mail header: no line breaks or control characters, bounded length."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def subject(digest: ClientDigest) -> str:
    return one_line(f"Weekly hours for {digest.client_name}: {digest.week_label}")


def render_html(digest: ClientDigest) -> str:
    return environment.get_template("email.html").render(d=digest, subject=subject(digest))


def render_text(digest: ClientDigest) -> str:
    lines = [
        f"Weekly hours: {one_line(digest.client_name)}",
        f"Week of {digest.week_label}",
        "",
        f"Total hours worked: {format_hours(digest.total_seconds)}"
        f" ({len(digest.agents)} agent{'' if len(digest.agents) == 1 else 's'};"
        f" {one_line(', '.join(digest.group_names))})",
    ]
    if digest.delivery:
        lines.append(f"Delivered against contract: {digest.delivery.text}")
    lines += [
        "",
        "HOURS PER AGENT",
    ]
    if not digest.agents:
        lines.append("  No hours were recorded this week.")
    width = max([len(a.agent) for a in digest.agents] + [24])
    for agent in digest.agents:
        label = one_line(agent.agent)
        if len(digest.group_names) > 1:
            label += f" ({', '.join(agent.groups)})"
        lines.append(f"  {label:<{width}}  {format_hours(agent.seconds):>7}")
        for activity in agent.activities:
            name = one_line(activity.activity)
            lines.append(f"    {name:<{width - 2}}  {format_hours(activity.seconds):>7}")
    lines += ["", "HOURS PER DAY"]
    for day in digest.days:
        lines.append(f"  {day_label(day.day):<12}{format_hours(day.seconds):>7}")
    lines += ["", "NOTES"]
    if not digest.notes:
        lines.append("  Nothing to note: every session was clocked in and out.")
    for note in digest.notes:
        lines.append(
            f"  - {note.label}: {one_line(note.agent)} ({one_line(note.group)}), "
            f"{one_line(note.activity)}, "
            f"started {note.start_text}"
        )
    if digest.attachments:
        lines += ["", f"{ATTACHED} {', '.join(digest.attachments)}"]
    lines += ["", FOOTNOTE, ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------- corrections


def correction_subject(correction: Correction) -> str:
    return one_line(
        f"Corrected hours for {correction.client_name}: {week_label(correction.week_start)}"
        f" (correction {correction.number})"
    )


def correction_intro(correction: Correction) -> str:
    """``Correction 1 of the hours reported on Mon 13 Jan 2025 07:02 UTC``."""
    at = correction.previous_reported_at.astimezone(UTC)
    return (
        f"Correction {correction.number} of the hours reported on "
        f"{at:%a} {at.day} {at:%b %Y %H:%M} UTC"
    )


def render_correction_html(correction: Correction) -> str:
    return environment.get_template("correction.html").render(
        c=correction,
        subject=correction_subject(correction),
        week_label=week_label(correction.week_start),
        intro=correction_intro(correction),
    )


def render_correction_text(correction: Correction) -> str:
    change = correction.total_after - correction.total_before
    lines = [
        f"Corrected weekly hours: {one_line(correction.client_name)}",
        f"Week of {week_label(correction.week_start)}",
        f"{correction_intro(correction)}.",
        "",
        f"Total hours worked: {format_hours(correction.total_before)} as reported, "
        f"{format_hours(correction.total_after)} now ({signed(change)})",
    ]
    if correction.delivery:
        lines.append(f"Delivered against contract: {correction.delivery.text}")
    lines += ["", "WHAT CHANGED (as reported -> now)"]
    for row in correction.rows:
        lines.append(
            f"  {one_line(row.agent)}, {one_line(row.activity)}: "
            f"{format_hours(row.before_seconds)} -> {format_hours(row.after_seconds)}"
            f" ({signed(row.after_seconds - row.before_seconds)}); {row.cause_text}"
        )
    if correction.days:
        lines += ["", "HOURS PER DAY THAT CHANGED"]
        for day in correction.days:
            lines.append(
                f"  {day_label(day.day):<12}{format_hours(day.before_seconds):>7} ->"
                f"{format_hours(day.after_seconds):>7}"
            )
    lines += ["", CORRECTION_FOOTNOTE, ""]
    return "\n".join(lines)

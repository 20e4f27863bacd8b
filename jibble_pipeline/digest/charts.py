"""Bar charts of hours as static SVG, drawn with the page that holds them: pure, no I/O.

No JavaScript and no external file: the SVG is inline markup, so it shows from disk, behind
any static server and in a page saved for later. Each bar is a ``rect`` of class ``bar``
whose height is its hours on one scale, standing on the axis, with the figure it stands for
in ``data-seconds`` and in a ``title`` (what a pointer or a screen reader gets); a
contracted figure is a dashed ``line`` of class ``contract`` at that height. Text goes
through the page's autoescaping templates' rules: every label is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from jibble_pipeline.rules.formatting import format_hours

BAR = "#2da44e"
CONTRACT = "#cf222e"
GRID = "#d0d7de"
TEXT = "#57606a"
NICE_HOURS = (1, 2, 3, 4, 5, 10, 15, 20, 25, 40, 50, 75, 100, 150, 200, 250, 500, 1000)


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar: ``6 Jan``, ``Mon``
    seconds: int
    title: str  # the pointer's tooltip: ``Week of 6 Jan: 112:30``


@dataclass(frozen=True)
class Geometry:
    """Where things go: the plot's top and bottom (the axis) in pixels, and the hours of
    its full height."""

    width: int = 640
    height: int = 220
    left: int = 44  # room for the hour labels
    top: int = 22  # room for the figures above the bars
    bottom: int = 190  # the axis; labels below it

    @property
    def plot_height(self) -> int:
        return self.bottom - self.top


def scale_hours(peak_seconds: float, steps: int = 4) -> tuple[int, int]:
    """The hours the plot's full height stands for, and its grid step: the smallest
    ``steps`` × a round step that holds ``peak_seconds`` (at least one hour).

    >>> scale_hours(40 * 3600), scale_hours(41 * 3600), scale_hours(0), scale_hours(130 * 3600)
    ((40, 10), (60, 15), (4, 1), (160, 40))
    """
    needed = max(peak_seconds / 3600, 1) / steps
    step = next((n for n in NICE_HOURS if n >= needed), math.ceil(needed))
    return step * steps, step


def _figure(x: float, top: float, height: float, seconds: int) -> str:
    """A bar's figure: inside its top when the bar is tall enough (clear of a contract
    line above it), else just above it."""
    inside = height >= 18
    return (
        f'<text x="{x:.2f}" y="{top + 13 if inside else top - 4:.2f}" text-anchor="middle" '
        f'fill="{"#ffffff" if inside else "#1f2328"}">{format_hours(seconds)}</text>'
    )


def bar_chart(
    bars: Sequence[Bar],
    caption: str,
    line_seconds: int | None = None,
    line_label: str = "contract",
    geometry: Geometry = Geometry(),
) -> str:
    """An SVG bar chart of ``bars`` (hours), with a dashed line at ``line_seconds`` (None:
    none), described by ``caption`` (its accessible name)."""
    g = geometry
    peak = max([b.seconds for b in bars] + [line_seconds or 0])
    full_hours, step = scale_hours(peak)
    per_second = g.plot_height / (full_hours * 3600)
    slot = (g.width - g.left - 8) / max(len(bars), 1)
    bar_width = max(min(slot * 0.7, 48), 2)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{g.width}" height="{g.height}" viewBox="0 0 {g.width} {g.height}" '
        f'data-full-seconds="{full_hours * 3600}" data-axis-y="{g.bottom}" '
        f'data-top-y="{g.top}" font-family="Arial, Helvetica, sans-serif" font-size="11">',
        f"<title>{escape(caption)}</title>",
    ]
    for hours in range(0, full_hours + 1, step):
        y = g.bottom - hours * 3600 * per_second
        parts.append(
            f'<line x1="{g.left}" x2="{g.width - 8}" y1="{y:.2f}" y2="{y:.2f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{g.left - 6}" y="{y + 4:.2f}" text-anchor="end" fill="{TEXT}">'
            f"{hours}h</text>"
        )
    for n, bar in enumerate(bars):
        height = bar.seconds * per_second
        x = g.left + n * slot + (slot - bar_width) / 2
        middle = x + bar_width / 2
        parts.append(
            f'<rect class="bar" x="{x:.2f}" y="{g.bottom - height:.2f}" width="{bar_width:.2f}" '
            f'height="{height:.2f}" fill="{BAR}" data-seconds="{bar.seconds}" '
            f'data-label="{escape(bar.label)}"><title>{escape(bar.title)}</title></rect>'
            + _figure(middle, g.bottom - height, height, bar.seconds)
            + f'<text x="{middle:.2f}" y="{g.bottom + 16}" text-anchor="middle" fill="{TEXT}">'
            f"{escape(bar.label)}</text>"
        )
    if line_seconds is not None:
        y = g.bottom - line_seconds * per_second
        parts.append(
            f'<line class="contract" x1="{g.left}" x2="{g.width - 8}" y1="{y:.2f}" '
            f'y2="{y:.2f}" stroke="{CONTRACT}" stroke-width="2" stroke-dasharray="6 4" '
            f'data-seconds="{line_seconds}"><title>{escape(line_label)}: '
            f"{format_hours(line_seconds)}</title></line>"
            f'<text x="{g.width - 8}" y="{y - 5:.2f}" text-anchor="end" fill="{CONTRACT}">'
            f"{escape(line_label)} {format_hours(line_seconds)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)

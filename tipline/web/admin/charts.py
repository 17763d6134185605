"""Charts drawn on the server as inline SVG: no script, no third-party asset, no inline style.

The admin CSP allows neither scripts nor `style` attributes, so colours come from classes that
`static/admin.css` fills (`.chart .s-critical { fill: ... }`); the markup carries only geometry
and presentation-free attributes. Pure functions of their numbers: every label is escaped, and
a bar's height is its value over the scale's top, times the plot's height. Made to sit inside
HTML, so without an xmlns declaration (HTML puts an <svg> element in the SVG namespace itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

# A phone draws the 640 units about 360 px wide: 16 units of text read as 9 px there.
WIDTH, PLOT_H = 640, 200
LEFT, RIGHT, BOTTOM = 56, 8, 32  # room for the y labels and the x labels
FONT = 16
LEGEND_ROW = 24


@dataclass(frozen=True)
class Series:
    """One named row of values; `css` is the class that colours its bars."""

    name: str
    css: str
    values: Sequence[float | None]


def nice_top(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= value))


def _fmt(value: float) -> str:
    """3 significant digits for small numbers (0.05, 12.5), whole ones above (1234)."""
    return str(round(value)) if abs(value) >= 100 else f"{value:.3g}"


def _open(ident: str, title: str, desc: str, height: int) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}"'
        f' width="{WIDTH}" height="{height}" role="img"'
        f' aria-labelledby="{ident}-title {ident}-desc" font-size="{FONT}">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
    ]


def _legend(series: Sequence[Series]) -> tuple[list[str], int]:
    """A swatch and a name per series, in as many rows as the width needs; and its height."""
    parts, x, y = [], LEFT, 8
    for s in series:
        wide = 18 + int(len(s.name) * FONT * 0.6) + 14
        if x > LEFT and x + wide > WIDTH - RIGHT:
            x, y = LEFT, y + LEGEND_ROW
        parts.append(f'<rect class={quoteattr(s.css)} x="{x}" y="{y}" width="14" height="14"/>')
        parts.append(f'<text x="{x + 18}" y="{y + 13}">{escape(s.name)}</text>')
        x += wide
    return parts, y + LEGEND_ROW + 8


def bars(
    ident: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = True,
    unit: str = "",
    label_every: int = 1,
) -> Markup:
    """A bar chart: one slot per label, the series stacked in it (or side by side)."""
    legend, top_margin = _legend(series)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, PLOT_H
    base = top_margin + plot_h
    height = base + BOTTOM
    n = max(1, len(labels))

    def value(s: Series, i: int) -> float:
        v = s.values[i] if i < len(s.values) else None
        return float(v) if v is not None and v > 0 else 0.0

    per_slot = [
        sum(value(s, i) for s in series)
        if stacked
        else max((value(s, i) for s in series), default=0)
        for i in range(len(labels))
    ]
    top = nice_top(max(per_slot, default=0.0))
    total = sum(value(s, i) for s in series for i in range(len(labels)))
    desc = f"{len(labels)} bars, largest {_fmt(max(per_slot, default=0.0))}{unit}"
    desc += f", total {_fmt(total)}{unit}." if stacked else "."
    out = _open(ident, title, desc, height)
    out += legend
    for frac in (0.0, 0.5, 1.0):  # grid lines and their values
        y = base - frac * plot_h
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        out.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_fmt(top * frac)}{escape(unit)}</text>"
        )
    slot = plot_w / n
    width = slot * 0.8
    for i, label in enumerate(labels):
        x0 = LEFT + i * slot + (slot - width) / 2
        y = float(base)
        for k, s in enumerate(series):
            v = value(s, i)
            if v == 0:
                continue
            h = v / top * plot_h
            if stacked:
                y -= h
                x, w, ry = x0, width, y
            else:
                w = width / len(series)
                x, ry = x0 + k * w, base - h
            tip = f"{label} · {s.name}: {_fmt(v)}{unit}"
            out.append(
                f'<rect class={quoteattr(s.css)} x="{x:.2f}" y="{ry:.2f}" width="{w:.2f}"'
                f' height="{h:.2f}" data-series={quoteattr(s.name)} data-value="{_fmt(v)}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        if i % label_every == 0 or i == n - 1:
            cx = LEFT + (i + 0.5) * slot
            # Thinned labels put the last one flush right, so it stays inside the chart.
            anchor = "end" if i == n - 1 and label_every > 1 else "middle"
            if anchor == "end":
                cx = WIDTH - RIGHT
            out.append(
                f'<text class="axis" x="{cx:.1f}" y="{height - 10}" text-anchor="{anchor}">'
                f"{escape(label)}</text>"
            )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - built here, every label and name escaped


def hour_grid(ident: str, title: str, rows: Sequence[tuple[str, Sequence[bool | None]]]) -> Markup:
    """Days as rows of 24 hours: an hour flagged (nobody on duty) is filled, one not flagged
    is pale, and one outside the period looked at (None) is left out."""
    left, top, cell_h = 112, 24, 24
    cell_w = (WIDTH - left - RIGHT) / 24
    height = top + cell_h * len(rows) + 8
    flagged = sum(sum(1 for f in flags if f) for _label, flags in rows)
    looked = sum(sum(1 for f in flags if f is not None) for _label, flags in rows)
    out = _open(ident, title, f"{flagged} of {looked} hours flagged.", height)
    for hour in range(0, 24, 3):
        x = left + (hour + 0.5) * cell_w
        out.append(f'<text class="axis" x="{x:.1f}" y="16" text-anchor="middle">{hour:02d}</text>')
    for r, (label, flags) in enumerate(rows):
        y = top + r * cell_h
        out.append(
            f'<text class="axis" x="{left - 6}" y="{y + 17}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        for hour, flag in enumerate(flags[:24]):
            if flag is None:
                continue
            css = "gap" if flag else "covered"
            out.append(
                f'<rect class="{css}" x="{left + hour * cell_w:.2f}" y="{y + 1}"'
                f' width="{cell_w - 1:.2f}" height="{cell_h - 2}" data-hour="{hour}"/>'
            )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - built here, every label escaped

"""Decisions per policy over time as a server-side SVG line chart (no JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from mcpfence.console.decisions import Series

# Colour-blind-safe (Okabe-Ito), each at least 3:1 against the white background.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#8a6d00", "#56B4E9", "#000000", "#E69F00")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 760, 240, 48, 28, 12, 12


@dataclass(frozen=True)
class Line:
    policy: str
    colour: str
    total: int


def svg(series: Series, title: str) -> tuple[str, list[Line]]:
    """The chart as SVG markup, and its legend (the page renders the legend as a list)."""
    lines = [
        Line(policy, PALETTE[i % len(PALETTE)], sum(counts))
        for i, (policy, counts) in enumerate(sorted(series.counts.items()))
    ]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = max((max(c) for c in series.counts.values()), default=0) or 1
    steps = max(len(series.buckets) - 1, 1)

    def x(i: int) -> float:
        return LEFT + plot_w * (i / steps if len(series.buckets) > 1 else 0.5)

    def y(count: int) -> float:
        return TOP + plot_h * (1 - count / peak)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title" class="chart"><title id="chart-title">{escape(title)}</title>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#444"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#444"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    if series.buckets:
        fmt = "%Y-%m-%d %H:%M"
        parts.append(f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11">'
                     f'{series.buckets[0].strftime(fmt)} UTC</text>')
        parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end" font-size="11">'
                     f'{series.buckets[-1].strftime(fmt)} UTC</text>')
    for line in lines:
        counts = series.counts[line.policy]
        points = " ".join(f"{x(i):.1f},{y(c):.1f}" for i, c in enumerate(counts))
        parts.append(f'<polyline fill="none" stroke="{line.colour}" stroke-width="2" points="{points}">'
                     f"<title>{escape(line.policy)}: {line.total}</title></polyline>")
        if len(counts) == 1:
            parts.append(f'<circle cx="{x(0):.1f}" cy="{y(counts[0]):.1f}" r="4" fill="{line.colour}"/>')
    parts.append("</svg>")
    return "".join(parts), lines

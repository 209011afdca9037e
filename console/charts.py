"""Server-rendered SVG bar charts (no JavaScript): inline in the page, readable without colour.

Every chart is `<svg class="chart" data-chart="<id>" data-points="<n>" role="img" aria-label="...">` with a
<title>, one `<rect class="bar" data-label=".." data-value="..">` per bar and text labels with the values.
Labels are escaped here; the result is Markup for the templates.
"""

from __future__ import annotations

from html import escape
from typing import List, Sequence, Tuple

from markupsafe import Markup

WIDTH = 720
BAR = 22
GAP = 8
LABEL_WIDTH = 260
PALETTE = ("#0b5cad", "#1a7f37", "#9a6700", "#a40e26", "#6639ba", "#57606a")


def _svg(chart: str, title: str, points: int, width: int, height: int, body: List[str]) -> Markup:
    head = (
        f'<svg class="chart" data-chart="{escape(chart)}" data-points="{points}" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, int) or float(value).is_integer() else f"{value:.1f}"


def horizontal_bars(chart: str, title: str, items: Sequence[Tuple[str, float]], unit: str = "", shares: bool = False) -> Markup:
    """One bar per (label, value), longest scale = largest value; `shares` adds each bar's percentage."""
    total = sum(value for _, value in items) or 1
    largest = max((value for _, value in items), default=0) or 1
    span = WIDTH - LABEL_WIDTH - 120
    body: List[str] = []
    for row, (label, value) in enumerate(items):
        y = GAP + row * (BAR + GAP)
        length = span * value / largest
        caption = _number(value) + (f" {unit}" if unit else "") + (f" ({100 * value / total:.0f}%)" if shares else "")
        body.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR * 0.7:.1f}" text-anchor="end" font-size="13">{escape(_short(label))}</text>'
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR}" fill="{PALETTE[0]}" '
            f'data-label="{escape(label)}" data-value="{_number(value)}"><title>{escape(label)}: {escape(caption)}</title></rect>'
            f'<text class="value" x="{LABEL_WIDTH + length + 6:.1f}" y="{y + BAR * 0.7:.1f}" font-size="13">{escape(caption)}</text>'
        )
    height = GAP + max(1, len(items)) * (BAR + GAP)
    if not items:
        body.append(f'<text x="{LABEL_WIDTH}" y="{GAP + BAR * 0.7}" font-size="13">No data in this range</text>')
    return _svg(chart, title, len(items), WIDTH, height, body)


def stacked_columns(chart: str, title: str, categories: Sequence[str], series: Sequence[Tuple[str, Sequence[float]]]) -> Markup:
    """One column per category (an ISO date, labelled MM-DD), stacked by series (a channel), with a legend and
    each column's total."""
    top, bottom, left = 30, 40, 40
    plot_height = 200
    totals = [sum(values[i] for _, values in series) for i in range(len(categories))]
    largest = max(totals, default=0) or 1
    step = (WIDTH - left - 10) / max(1, len(categories))
    width = max(2.0, step * 0.7)
    body: List[str] = []
    for number, (name, _) in enumerate(series):
        legend_x = left + number * 110
        body.append(
            f'<rect x="{legend_x}" y="4" width="12" height="12" fill="{PALETTE[number % len(PALETTE)]}"/>'
            f'<text x="{legend_x + 16}" y="14" font-size="12">{escape(name)}</text>'
        )
    for index, category in enumerate(categories):
        x = left + index * step
        base: float = top + plot_height
        for number, (name, values) in enumerate(series):
            value = values[index]
            if not value:
                continue
            height = plot_height * value / largest
            base -= height
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{base:.1f}" width="{width:.1f}" height="{height:.1f}" '
                f'fill="{PALETTE[number % len(PALETTE)]}" data-label="{escape(category)} {escape(name)}" data-value="{_number(value)}">'
                f"<title>{escape(category)}, {escape(name)}: {_number(value)}</title></rect>"
            )
        if totals[index]:
            body.append(
                f'<text class="value" x="{x + width / 2:.1f}" y="{base - 3:.1f}" font-size="10" text-anchor="middle">{_number(totals[index])}</text>'
            )
        if len(categories) <= 16 or index % max(1, len(categories) // 8) == 0:
            body.append(
                f'<text x="{x + width / 2:.1f}" y="{top + plot_height + 16}" font-size="10" text-anchor="middle">{escape(category[5:])}</text>'
            )
    body.append(f'<line x1="{left}" y1="{top + plot_height}" x2="{WIDTH - 10}" y2="{top + plot_height}" stroke="#57606a"/>')
    points = sum(1 for _, values in series for value in values if value)
    return _svg(chart, title, points, WIDTH, top + plot_height + bottom, body)


def _short(label: str, limit: int = 36) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"

"""Server-rendered SVG charts: no JavaScript, no CDN, readable without any asset but the page."""

from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

GREEN = "#0b6e4f"
GREY = "#9aa9ad"


def _millions(value: Decimal) -> str:
    return f"{value / 1_000_000:,.2f}M" if value >= 100_000 else f"{value:,.0f}"


def bar_chart(
    *, labels: list[str], series: list[tuple[str, list[Decimal], str]], title: str
) -> SafeString:
    """Vertical bars, one group per label and one bar per series (name, values, colour)."""
    width, height, left, bottom, top = 900, 300, 70, 40, 20
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([v for _, values, _ in series for v in values] + [Decimal(1)])
    group_w = plot_w / max(len(labels), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for step in range(5):
        value = peak * step / 4
        y = top + plot_h - plot_h * step / 4
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d8e0e2"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5b6b70">{escape(_millions(value))}</text>'
        )
    for i, label in enumerate(labels):
        x0 = left + i * group_w + group_w * 0.1
        for j, (name, values, colour) in enumerate(series):
            value = values[i]
            h = plot_h * value / peak  # Decimal pixels, rounded when written
            parts.append(
                f'<rect x="{x0 + j * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(name)} {escape(label)}: '
                f"USD {value:,.2f}</title></rect>"
            )
        if len(labels) <= 14 or i % 2 == 0:
            parts.append(
                f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 16}" font-size="11" '
                f'text-anchor="middle" fill="#1d2a2f">{escape(label)}</text>'
            )
    for j, (name, _, colour) in enumerate(series):
        parts.append(
            f'<rect x="{left + j * 170}" y="{height - 14}" width="12" height="12" '
            f'fill="{colour}"/><text x="{left + j * 170 + 16}" y="{height - 4}" font-size="12">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def share_bars(*, rows: list[tuple[str, Decimal]], title: str) -> SafeString:
    """Horizontal bars for a breakdown (label, USD)."""
    width, line = 300, 26
    height = line * max(len(rows), 1) + 10
    peak = max([v for _, v in rows] + [Decimal(1)])
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value) in enumerate(rows):
        w = 150 * value / peak  # Decimal pixels, rounded when written
        y = 5 + i * line
        parts.append(
            f'<text x="0" y="{y + 17}" font-size="14">{escape(label)}</text>'
            f'<rect x="90" y="{y + 4}" width="{w:.1f}" height="18" fill="{GREEN}"/>'
            f'<text x="{94 + w:.1f}" y="{y + 17}" font-size="13" fill="#5b6b70">'
            f"{escape(_millions(value))}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above

"""Bar charts for the pool pages, server-rendered as inline SVG: `bar_chart` computes the
geometry (bars, group labels, y-axis ticks) that templates/pools/pool_chart.html draws.
Pure: no database.
"""

from __future__ import annotations

import msgspec


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    x: float
    y: float
    width: float
    height: float
    series: int
    value_fen: int
    href: str | None


class Group(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    short: str  # what fits under the bars
    x: float  # the label's centre
    bars: list[Bar]


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    y: float
    label: str


class Chart(msgspec.Struct, frozen=True, kw_only=True):
    width: int
    height: int
    left: int
    plot_top: int
    plot_bottom: int
    groups: list[Group]
    ticks: list[Tick]


CHART_W, CHART_H, LEFT, TOP, BOTTOM = 720, 240, 110, 12, 40


def _axis(fen: int) -> str:
    return "¥" + f"{fen // 100:,}"


def bar_chart(rows: list[tuple[str, list[int], list[str | None]]], *, short: int = 10) -> Chart:
    """Grouped vertical bars, one group per row (label, values per series, links per bar).
    Heights are proportional to the largest value; the y axis has 0, half and the top."""
    top = max((v for _, values, _ in rows for v in values), default=0) or 1
    plot_w = CHART_W - LEFT - 10
    plot_h = CHART_H - TOP - BOTTOM
    base = TOP + plot_h
    groups: list[Group] = []
    n = max(1, len(rows))
    group_w = plot_w / n
    for i, (label, values, hrefs) in enumerate(rows):
        k = max(1, len(values))
        bar_w = group_w * 0.8 / k
        x0 = LEFT + i * group_w + group_w * 0.1
        bars = []
        for j, (value, href) in enumerate(zip(values, hrefs, strict=True)):
            h = round(plot_h * value / top, 1)
            bars.append(
                Bar(
                    x=round(x0 + j * bar_w, 1),
                    y=round(base - h, 1),
                    width=round(max(bar_w - 1, 1), 1),
                    height=h,
                    series=j,
                    value_fen=value,
                    href=href,
                )
            )
        groups.append(
            Group(
                label=label,
                short=label if len(label) <= short else label[: short - 1] + "…",
                x=round(LEFT + i * group_w + group_w / 2, 1),
                bars=bars,
            )
        )
    ticks = [
        Tick(y=float(base), label=_axis(0)),
        Tick(y=round(base - plot_h / 2, 1), label=_axis(top // 2)),
        Tick(y=float(TOP), label=_axis(top)),
    ]
    return Chart(
        width=CHART_W,
        height=CHART_H,
        left=LEFT,
        plot_top=TOP,
        plot_bottom=base,
        groups=groups,
        ticks=ticks,
    )

"""Charts for the pool pages, server-rendered as inline SVG: `bar_chart` computes the
geometry (bars, group labels, y-axis ticks) and `step_chart` that of cumulative totals
over time (a pool's recoveries rising), which templates/pools/pool_chart.html draws.
Pure: no database.
"""

from __future__ import annotations

from datetime import date

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


class LinePoint(msgspec.Struct, frozen=True, kw_only=True):
    x: float
    y: float
    label: str  # the day
    value_fen: int


class Line(msgspec.Struct, frozen=True, kw_only=True):
    series: int
    path: str  # an SVG polyline's points, stepped: a total holds until the next day's
    points: list[LinePoint]  # one marker per day the total rose


class LineChart(msgspec.Struct, frozen=True, kw_only=True):
    width: int
    height: int
    left: int
    plot_top: int
    plot_bottom: int
    lines: list[Line]
    ticks: list[Tick]
    x_labels: list[Tick]  # `y` holds the label's x


def step_chart(days: list[str], series: list[list[int]], *, until: str | None = None) -> LineChart:
    """Cumulative totals as stepped lines over time: `days` in order (ISO dates), one list
    of running totals per series, each as long as `days`. The x axis runs from the first
    day to `until` (or the last day), spaced by date; the y axis from 0 to the largest."""
    top = max((v for values in series for v in values), default=0) or 1
    plot_w = CHART_W - LEFT - 10
    plot_h = CHART_H - TOP - BOTTOM
    base = TOP + plot_h
    right = LEFT + plot_w
    dates = [date.fromisoformat(d) for d in days]
    first = dates[0] if dates else None
    last = date.fromisoformat(until) if until else (dates[-1] if dates else None)
    span = max(1, (last - first).days) if first and last else 1

    def x_of(d: date) -> float:
        assert first is not None
        return round(LEFT + plot_w * (d - first).days / span, 1)

    def y_of(v: int) -> float:
        return round(base - plot_h * v / top, 1)

    lines: list[Line] = []
    for k, values in enumerate(series):
        coords = [(float(LEFT), float(base))]
        points: list[LinePoint] = []
        previous = 0
        for d, label, v in zip(dates, days, values, strict=True):
            x = x_of(d)
            coords += [(x, y_of(previous)), (x, y_of(v))]
            if v != previous:
                points.append(LinePoint(x=x, y=y_of(v), label=label, value_fen=v))
            previous = v
        coords.append((float(right) if dates else float(LEFT), y_of(previous)))
        lines.append(Line(series=k, path=" ".join(f"{x},{y}" for x, y in coords), points=points))
    ticks = [
        Tick(y=float(base), label=_axis(0)),
        Tick(y=round(base - plot_h / 2, 1), label=_axis(top // 2)),
        Tick(y=float(TOP), label=_axis(top)),
    ]
    x_labels = []
    if first is not None and last is not None:
        x_labels.append(Tick(y=float(LEFT), label=first.isoformat()))
        if last != first:
            x_labels.append(Tick(y=float(right), label=last.isoformat()))
    return LineChart(
        width=CHART_W,
        height=CHART_H,
        left=LEFT,
        plot_top=TOP,
        plot_bottom=base,
        lines=lines,
        ticks=ticks,
        x_labels=x_labels,
    )

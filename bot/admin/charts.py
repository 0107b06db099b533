"""Charts as inline SVG, drawn on the server by pygal: the page needs no script and no
network. Values are printed on the chart so they read on a phone without hovering."""

from __future__ import annotations

import re

import pygal
from pygal.style import Style

_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#222",
    foreground_strong="#111",
    foreground_subtle="#888",
    opacity=".85",
    opacity_hover=".95",
    colors=("#3a6ea5", "#7fb3d5", "#e39b3b", "#c0392b", "#27ae60", "#8e44ad"),
    value_font_size=13,
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    tooltip_font_size=13,
    title_font_size=15,
)
_SCRIPT = re.compile(r"<script.*?</script>", re.S)


def _config(**extra: object) -> dict:
    return {
        **dict(
            js=[],
            disable_xml_declaration=True,
            style=_STYLE,
            width=540,
            height=300,
            print_values=True,
            print_zeroes=False,
            x_label_rotation=30,
            show_y_guides=True,
            margin=8,
        ),
        **extra,
    }


def _formatter(fmt: str):  # noqa: ANN202
    """``fmt`` for values; axis ticks between whole numbers keep a decimal ("0.5", not "0")."""

    def format_value(v: float | None) -> str:
        if v is None:
            return ""
        if fmt == "{:,.0f}" and v != int(v):
            return f"{v:,.1f}"
        return fmt.format(v)

    return format_value


def _svg(chart: pygal.graph.graph.Graph) -> str:
    # pygal embeds its config for its own (unloaded) tooltip script; drop that too.
    return _SCRIPT.sub("", chart.render(is_unicode=True))


def _short(day: str) -> str:
    return day[5:]  # "12-01": the year is in the range shown above the charts


def bars(
    days: list[str], series: dict[str, list[float | None]], *, title: str, fmt: str = "{:,.0f}", stacked: bool = False
) -> str:
    kind = pygal.StackedBar if stacked else pygal.Bar
    chart = kind(
        **_config(title=title, show_legend=len(series) > 1, legend_at_bottom=True, value_formatter=_formatter(fmt))
    )
    chart.x_labels = [_short(d) for d in days]
    for name, values in series.items():
        chart.add(name, values)
    return _svg(chart)


def lines(days: list[str], series: dict[str, list[float | None]], *, title: str, fmt: str = "{:,.0f}") -> str:
    chart = pygal.Line(
        **_config(
            title=title,
            show_legend=len(series) > 1,
            legend_at_bottom=True,
            allow_interruptions=True,
            dots_size=3,
            value_formatter=_formatter(fmt),
        )
    )
    chart.x_labels = [_short(d) for d in days]
    for name, values in series.items():
        chart.add(name, values)
    return _svg(chart)


def horizontal(counts: list[tuple[str, int]], *, title: str) -> str:
    chart = pygal.HorizontalBar(
        **_config(
            title=title,
            show_legend=True,
            legend_at_bottom=True,
            height=max(160, 60 + 34 * len(counts)),
            x_label_rotation=0,
            value_formatter=_formatter("{:,.0f}"),
        )
    )
    for name, count in counts:
        chart.add(name, [count])
    return _svg(chart)

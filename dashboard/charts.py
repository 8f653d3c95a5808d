"""The patient page's pain chart: server-side SVG drawn by pygal. No Django in here.

The SVG goes inline into the page, so it needs no JavaScript to show: every data point is
a `<circle>` carrying `data-series`, `data-date` and `data-value`, with a `<title>` that
browsers show on hover and screen readers read. pygal's tooltip script (from the pygaljs
package, served by our static files) is an enhancement on top.

Program phases and procedures are drawn as bands and markers on the same date axis; the
chart knows nothing of programs or interventions, only of `Band` and `Marker`, which the
patient page's section providers hand it (see dashboard/sections.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pygal
from pygal.graph.time import date_to_datetime, datetime_to_timestamp
from pygal.style import Style

from rehab import progress

# A break in the line rather than a straight segment across days without a log: a week
# without logs should look like one.
GAP_DAYS = 3


@dataclass(frozen=True)
class Band:
    """A date range shaded behind the lines, e.g. a program phase."""

    start: date
    end: date  # inclusive
    label: str
    kind: str = "phase"


@dataclass(frozen=True)
class Marker:
    """A vertical line on one date, e.g. an injection or a provocative test."""

    on: date
    label: str
    kind: str = "intervention"


@dataclass(frozen=True)
class Reference:
    """A horizontal line across the chart: the baseline, the meaningful-change line."""

    key: str
    label: str
    short: str
    value: float


@dataclass(frozen=True)
class SeriesSpec:
    key: str  # the column of the daily log
    title: str
    unit: str
    width: float


SERIES: tuple[SeriesSpec, ...] = (
    SeriesSpec("pain", "Pain", "/10", 2.5),
    SeriesSpec("leg_pain", "Leg pain", "/10", 1.5),
    SeriesSpec("function", "Function (10 = as before)", "/10", 1.5),
)

# Colours readable on white (contrast >= 4.5:1) and told apart by more than hue: the
# 7-day mean is thick, the reference lines (drawn in `_plot`) dashed and labelled.
_COLOURS = ("#111111", "#1f4e99", "#a64b00", "#1b7837")
_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#222222",
    foreground_strong="#111111",
    foreground_subtle="#d0d0d0",
    opacity="1",
    opacity_hover="1",
    colors=_COLOURS,
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=14,
    major_label_font_size=14,
    legend_font_size=15,
    title_font_size=16,
    tooltip_font_size=14,
    guide_stroke_color="#c8c8c8",
    major_guide_stroke_color="#b0b0b0",
    guide_stroke_dasharray="2,3",
    major_guide_stroke_dasharray="2,3",
)


class _AnnotatedDateLine(pygal.DateLine):
    """pygal's date line with bands and markers drawn under the series."""

    bands: Sequence[Band] = ()
    markers: Sequence[Marker] = ()
    references: Sequence[Reference] = ()

    def _x(self, day: date) -> float | None:
        x: float | None = self.view.x(self._x_adapt(day))
        return x

    def _plot(self) -> None:
        layer = self.svg.node(self.nodes["plot"], class_="annotations")
        width, height = self.view.width, self.view.height
        for band in self.bands:
            start, end = self._x(band.start), self._x(band.end + timedelta(days=1))
            if start is None or end is None or end <= 0 or start >= width:
                continue
            start, end = max(0.0, start), min(float(width), end)
            group = self.svg.node(
                layer,
                class_=f"band band-{band.kind}",
                **{"data-kind": band.kind, "data-start": band.start, "data-end": band.end},
            )
            self.svg.node(
                group, "title"
            ).text = f"{band.label}: {band.start:%d %b} to {band.end:%d %b %Y}"
            self.svg.node(
                group, "rect", x=start, y=0, width=end - start, height=height, class_="band-area"
            )
            self.svg.node(group, "text", x=start + 4, y=14, class_="band-label").text = band.label
        for marker in self.markers:
            x = self._x(marker.on)
            if x is None or not 0 <= x <= width:
                continue
            group = self.svg.node(
                layer,
                class_=f"marker marker-{marker.kind}",
                **{"data-kind": marker.kind, "data-date": marker.on},
            )
            self.svg.node(group, "title").text = f"{marker.on:%d %b %Y}: {marker.label}"
            self.svg.node(group, "path", d=f"M{x} 0 L{x} {height}", class_="marker-line")
            self.svg.node(
                group, "text", x=x + 3, y=height - 6, class_="marker-label"
            ).text = marker.label
        for ref in self.references:
            y = self.view.y(ref.value)
            if y is None:
                continue
            group = self.svg.node(
                layer,
                class_=f"reference reference-{ref.key}",
                **{"data-series": ref.key, "data-value": f"{ref.value:g}"},
            )
            self.svg.node(group, "title").text = ref.label
            self.svg.node(group, "path", d=f"M0 {y} L{width} {y}", class_="reference-line")
            # In the right margin, clear of the data: a label inside the plot hides points.
            label = self.svg.node(group, "text", x=width + 6, y=y + 4, class_="reference-label")
            label.text = ref.short
        super()._plot()


# Scoped by the chart's id like pygal's own styles: an inline SVG's styles reach the page.
_CHART_CSS = """
{id}.annotations .band-area {{ fill: #e8eef7; }}
{id}.annotations .band:nth-child(even) .band-area {{ fill: #f3efe2; }}
{id}.annotations .band-label {{ font-size: 12px; fill: #333333; }}
{id}.annotations .marker-line {{ stroke: #b00020; stroke-width: 2; stroke-dasharray: 2, 3; }}
{id}.annotations .marker-label {{ font-size: 12px; fill: #b00020; }}
{id}.annotations .reference-line {{ stroke: #444444; stroke-width: 2; stroke-dasharray: 8, 4; }}
{id}.annotations .reference-mcid .reference-line {{ stroke: #762a83; stroke-dasharray: 3, 3; }}
{id}.annotations .reference-label {{ font-size: 14px; fill: #333333; }}
{id}.annotations .reference-mcid .reference-label {{ fill: #762a83; }}
"""


def _timestamp(day: date) -> float:
    value: float = datetime_to_timestamp(date_to_datetime(day))
    return value


def _points(
    rows: Iterable[tuple[date, float | None]], *, key: str, title: str, unit: str
) -> list[Any]:
    """pygal values with their metadata; a None where the line must break."""
    points: list[Any] = []
    previous: date | None = None
    for day, value in rows:
        if value is None:
            continue
        if previous is not None and (day - previous).days > GAP_DAYS:
            points.append((previous + timedelta(days=1), None))
        previous = day
        shown = f"{value:g}"
        points.append(
            {
                "value": (day, value),
                "tooltip": f"{day:%a %d %b %Y}: {title.lower()} {shown}{unit}",
                "node": {
                    "data-series": key,
                    "data-date": day.isoformat(),
                    "data-value": shown,
                },
            }
        )
    return points


# "30 Nov" at 14 px is ~46 px wide; the plot is ~700 of the chart's 840 px: 8 labels leave
# ~85 px between neighbours, so they never touch, whatever the period or the log count.
MAX_DATE_LABELS = 8
_LABEL_STEPS_DAYS = (1, 2, 7, 14, 28, 56, 91, 182, 364)


def date_labels(start: date, end: date) -> list[date]:
    """The days labelled under the chart: evenly spaced, at most MAX_DATE_LABELS, on
    Mondays once a label stands for a week or more (pygal's own choice crowded a 5-week
    window with 16 labels 45 px apart, and spaced them unevenly)."""
    span = (end - start).days + 1
    step = next((s for s in _LABEL_STEPS_DAYS if -(-span // s) <= MAX_DATE_LABELS), 364)
    first = start + timedelta(days=(-start.weekday()) % 7) if step >= 7 else start
    return [first + timedelta(days=n) for n in range(0, (end - first).days + 1, step)]


def pain_chart_svg(
    *,
    logs: Sequence[Mapping[str, Any]],
    rolling: Sequence[tuple[date, float | None]],
    baseline: float | None,
    start: date,
    end: date,
    bands: Sequence[Band] = (),
    markers: Sequence[Marker] = (),
    script_urls: Sequence[str] = (),
    script_nonce: str | None = None,
    title: str = "Daily pain and function",
) -> str:
    """The SVG (no XML declaration, ready to inline) of the logs dated start..end.

    `script_nonce` is the page's Content-Security-Policy nonce: pygal writes its tooltip
    configuration as an inline script, which the policy runs only with it.
    """
    chart = _AnnotatedDateLine(
        style=_STYLE,
        title=title,
        width=840,
        height=380,
        margin_right=96,  # room for the reference lines' labels
        explicit_size=False,  # viewBox only: the chart scales to its container
        range=(0, 10),
        y_labels=list(range(0, 11)),
        xrange=(_timestamp(start), _timestamp(end)),
        x_value_formatter=lambda day: f"{day:%d %b}",
        x_labels=date_labels(start, end),
        x_label_rotation=0,
        truncate_label=-1,
        truncate_legend=-1,
        show_minor_x_labels=True,
        legend_at_bottom=True,
        legend_at_bottom_columns=3,
        dots_size=3.5,
        allow_interruptions=True,
        print_values=False,
        disable_xml_declaration=True,
        no_data_text="No logs in this period",
        js=list(script_urls),
    )
    # pygal's `.reactive` rule (id + class) beats a series' own stroke width: restate the
    # widths per series index, in the order the series are added below.
    scope = f"#chart-{chart.uuid} "
    widths = [4.0] + [spec.width for spec in SERIES]
    css = _CHART_CSS.format(id=scope) + "".join(
        f"{scope}.serie-{i} .line.reactive {{ stroke-width: {w}; }}\n" for i, w in enumerate(widths)
    )
    chart.css = ["file://style.css", "file://graph.css", "inline:" + css]
    chart.bands = [b for b in bands if b.end >= start and b.start <= end]
    chart.markers = [m for m in markers if start <= m.on <= end]
    shown = [row for row in logs if start <= row["date"] <= end]
    # The mean first, so that the day's own values are drawn over it.
    chart.add(
        "7-day mean pain",
        _points(
            ((day, mean) for day, mean in rolling if start <= day <= end),
            key="mean_7d",
            title="7-day mean pain",
            unit="/10",
        ),
        # Small dots under the thick line: hardly visible, but each day's mean can be hovered.
        dots_size=2,
    )
    for spec in SERIES:
        chart.add(
            spec.title,
            _points(
                ((row["date"], row.get(spec.key)) for row in shown),
                key=spec.key,
                title=spec.title,
                unit=spec.unit,
            ),
            dots_size=3.5 if spec.key == "pain" else 2.5,
        )
    if baseline is not None:
        threshold = progress.mcid_threshold(baseline)
        chart.references = [
            Reference("baseline", f"Baseline {baseline:g}", f"Baseline {baseline:g}", baseline),
            Reference(
                "mcid",
                f"Meaningful change reached at or below {threshold:g} (2 points and 30 %)",
                f"MCID ≤ {threshold:g}",
                threshold,
            ),
        ]
    svg: str = chart.render(is_unicode=True)
    if script_nonce is not None:
        # A nonce is base64 (no quote can end the attribute early); pygal writes every
        # script element with this exact opening.
        svg = svg.replace("<script ", f'<script nonce="{script_nonce}" ')
    return svg

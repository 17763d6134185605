"""The dashboard's charts (inline SVG from `charts`) and the CSV of their numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Response
from markupsafe import Markup

from tipline.db import utcnow
from tipline.extensions import dbsession
from tipline.staff import trends
from tipline.triage import CATEGORIES, SEVERITIES
from tipline.web.admin import charts
from tipline.web.admin.blueprint import bp, staff_user

# A cell starting with one of these is a formula to a spreadsheet; school names come from the
# configuration file, but a download must never run anything where it is opened.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Coverage:
    school: str
    chart: Markup
    spans: list[str]


@dataclass(frozen=True)
class Charts:
    severity: Markup
    category: Markup
    failed: Markup
    failed_total: int
    ack: list[tuple[str, Markup, int, int]]  # school, chart, alerts acked, not acked
    coverage: list[Coverage]


def _summed(per_school: dict[str, trends.Daily], names: Sequence[str]) -> list[list[int]]:
    """Each name's counts per day, added up over the schools."""
    days = len(next(iter(per_school.values())).days) if per_school else 0
    totals = {name: [0] * days for name in names}
    for daily in per_school.values():
        for name in names:
            for i, n in enumerate(daily.counts.get(name, ())):
                totals[name][i] += n
    return [totals[name] for name in names]


def _day_labels(per_school: dict[str, trends.Daily]) -> list[str]:
    days = next(iter(per_school.values())).days if per_school else []
    return [f"{day:%m-%d}" for day in days]


def spans(hours: Sequence[datetime]) -> list[str]:
    """Consecutive hours joined: `Sat 12-07 16:00 – Mon 12-09 07:00`."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in hours:
        if runs and hour - runs[-1][1] <= timedelta(hours=1):
            runs[-1] = (runs[-1][0], hour)
        else:
            runs.append((hour, hour))
    return [
        f"{start:%a %m-%d %H:%M} – {last + timedelta(hours=1):%a %m-%d %H:%M}"
        for start, last in runs
    ]


def build_charts(t: trends.Trends) -> Charts:
    days = _day_labels(t.tips_by_severity)
    severity = _summed(t.tips_by_severity, SEVERITIES)
    category = _summed(t.tips_by_category, CATEGORIES)
    failed = _summed(t.failed, trends.CHANNELS)
    ack = []
    for i, weeks in enumerate(t.ack):
        chart = charts.bars(
            f"chart-ack-{i}",
            f"Minutes to acknowledge at {weeks.school}, by week",
            [f"{week:%m-%d}" for week in weeks.weeks],
            [
                charts.Series("p50", "p50", weeks.p50),
                charts.Series("p90", "p90", weeks.p90),
            ],
            stacked=False,
            unit="m",
        )
        ack.append((weeks.school, chart, sum(weeks.acked), sum(weeks.unacked)))
    coverage = [
        Coverage(
            gap.school,
            charts.hour_grid(
                f"chart-duty-{i}",
                f"Hours with nobody on duty at {gap.school}, next 7 days ({gap.timezone})",
                [(f"{day:%a %m-%d}", flags) for day, flags in gap.grid()],
            ),
            spans(gap.hours),
        )
        for i, gap in enumerate(t.uncovered)
    ]
    return Charts(
        severity=charts.bars(
            "chart-severity",
            "Tips per day by severity, last 30 days",
            days,
            [charts.Series(s, f"s-{s}", v) for s, v in zip(SEVERITIES, severity, strict=True)],
            label_every=5,
        ),
        category=charts.bars(
            "chart-category",
            "Tips per day by category, last 30 days",
            days,
            [charts.Series(c, f"c-{c}", v) for c, v in zip(CATEGORIES, category, strict=True)],
            label_every=5,
        ),
        failed=charts.bars(
            "chart-failed",
            "Failed deliveries per day, last 30 days",
            days,
            [charts.Series(c, f"ch-{c}", v) for c, v in zip(trends.CHANNELS, failed, strict=True)],
            label_every=5,
        ),
        failed_total=sum(map(sum, failed)),
        ack=ack,
        coverage=coverage,
    )


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA) else value


@bp.get("/dashboard.csv")
def dashboard_csv() -> Response:
    """The numbers behind the dashboard's charts, for the schools this login sees."""
    now = utcnow()
    figures = trends.trends(dbsession(), staff_user(), now)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([[_cell(v) for v in row] for row in trends.csv_rows(figures)])
    response = Response(out.getvalue(), mimetype="text/csv")
    name = f"tipline-dashboard-{now:%Y%m%d}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response

"""The console overview's usage chart: credits used per app and day, as inline SVG.

Drawn server-side with pygal (a stacked bar per day, one series per app). The page
needs nothing from outside and runs no script: pygal's script link is turned off and
its inline config script and comments (which name its web site) are dropped, leaving
no address but the SVG namespace. Without pygal's script, each bar carries a `<title>`
(app, day, credits) that browsers show as a tooltip.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any
from xml.etree import ElementTree

import pygal
from pygal.style import DefaultStyle

from mana_credits_core.ledger import UsageStat

# pygal appends to `sys.meta_path` a finder for its map plugins (`pygal.maps.*`, not
# used here) that has no `find_spec`: on Python 3.11 every import that fails anywhere
# in the process then also raises an ImportWarning about it (an error under warnings
# as errors). Without map plugins the finder never finds anything: take it out.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__module__ != "pygal"]

TITLE = "Credits used per app and day"
SVG = "{http://www.w3.org/2000/svg}"


def usage_chart_svg(stats: Sequence[UsageStat], days: int, today: date) -> str:
    """An SVG document (str, no XML declaration) charting the credits used per app on
    each of the `days` UTC days up to `today` (today included): one stacked bar per
    day, one series per app (sorted by app id), 0 for a day an app was not used.
    `stats` are usage rows (`UsageStat`, credits); rows outside the window are left
    out, rows of one app and day are added up. With no usage in the window the SVG
    says so in words. Its `<title>` and `<desc>` (a summary with the totals) label it
    for screen readers. Raises `ValueError` if `days` < 1."""
    if days < 1:
        raise ValueError("days must be at least 1")
    first = today - timedelta(days=days - 1)
    window = [first + timedelta(days=n) for n in range(days)]
    used: dict[str, dict[date, int]] = defaultdict(lambda: dict.fromkeys(window, 0))
    for stat in stats:
        if first <= stat.day <= today:
            used[stat.app_id][stat.day] += stat.credits_used
    apps = sorted(used)
    chart = pygal.StackedBar(
        js=[],  # no script from a CDN: the console works offline
        disable_xml_declaration=True,
        title=TITLE,
        style=DefaultStyle,
        x_title="day (UTC)",
        y_title="credits",
        x_label_rotation=-45,
        show_minor_x_labels=days <= 14,
        x_labels_major_every=max(1, days // 7),
        truncate_legend=-1,
        no_data_text=f"No credits used in the last {days} days",
    )
    chart.x_labels = [d.isoformat() for d in window]
    for app in apps:
        chart.add(app, [used[app][d] for d in window])
    described = _description(used, first, today)
    chart.add_xml_filter(lambda root: _self_contained(root, described, apps))
    svg: str = chart.render(is_unicode=True)
    return svg


def _description(used: dict[str, dict[date, int]], first: date, last: date) -> str:
    period = f"{first.isoformat()} to {last.isoformat()}"
    if not used:
        return f"No credits used from {period}."
    totals = {app: sum(per_day.values()) for app, per_day in used.items()}
    apps = ", ".join(f"{app} {totals[app]}" for app in sorted(totals))
    return f"Credits used from {period}: {sum(totals.values())} in all; per app: {apps}."


def _self_contained(root: Any, described: str, apps: list[str]) -> Any:
    """Drop pygal's comments (they carry its web addresses) and scripts; label the
    chart as an image by its title and description (ids from the chart's own, so two
    charts on one page do not clash); give each bar a tooltip."""
    for parent in list(root.iter()):
        for child in list(parent):
            if not isinstance(child.tag, str) or child.tag in ("script", f"{SVG}script"):
                parent.remove(child)
    chart_id = root.get("id") or "usage-chart"
    title = root.find("title")
    position = 0
    if title is not None:
        title.set("id", f"{chart_id}-title")
        position = list(root).index(title) + 1
    desc = ElementTree.Element("desc", id=f"{chart_id}-desc")
    desc.text = described
    root.insert(position, desc)
    root.set("role", "img")
    root.set("aria-labelledby", f"{chart_id}-title {chart_id}-desc")
    for n, app in enumerate(apps):
        for bar in _bars(root, n):
            value = bar.find("desc[@class='value']")
            day = bar.find("desc[@class='x_label']")
            tooltip = ElementTree.SubElement(bar, "title")
            credits = "?" if value is None else value.text
            tooltip.text = f"{app}, {'' if day is None else day.text}: {credits} credits"
    return root


def _bars(root: Any, serie: int) -> list[Any]:
    """The bar groups (`<g class="bar">`, one per day) of series number `serie`."""
    found: list[Any] = []
    for group in root.iter("g"):
        if f"serie-{serie}" in (group.get("class") or "").split():
            found.extend(g for g in group.iter("g") if g.get("class") == "bar")
    return found

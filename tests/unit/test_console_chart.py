"""The console's usage chart: one series per app, one bar per day, self-contained SVG."""

from __future__ import annotations

import re
from datetime import date
from xml.etree import ElementTree

import pytest

from mana_credits_core.ledger import UsageStat
from mana_credits_http.console_chart import usage_chart_svg

SVG = "{http://www.w3.org/2000/svg}"
TODAY = date(2026, 3, 15)
STATS = [
    UsageStat("", "chat", date(2026, 3, 13), 20, 2),
    UsageStat("", "images", date(2026, 3, 15), 5, 1),
    UsageStat("", "chat", date(2026, 3, 15), 7, 1),
    UsageStat("", "voice", date(2026, 3, 14), 3, 1),
    UsageStat("", "chat", date(2026, 3, 8), 1000, 9),  # before the 7-day window
    UsageStat("", "old", date(2026, 1, 1), 50, 1),  # an app seen only before it
]


def series(root: ElementTree.Element) -> dict[str, list[tuple[str, int]]]:
    """(day, credits) of each bar, per series number, read back from the SVG."""
    found: dict[str, list[tuple[str, int]]] = {}
    for group in root.iter(f"{SVG}g"):
        classes = (group.get("class") or "").split()
        names = [c for c in classes if c.startswith("serie-")]
        if "series" not in classes or not names:
            continue
        for bar in group.iter(f"{SVG}g"):
            if bar.get("class") != "bar":
                continue
            day = bar.find(f"{SVG}desc[@class='x_label']")
            value = bar.find(f"{SVG}desc[@class='value']")
            assert day is not None
            assert value is not None
            assert day.text is not None
            assert value.text is not None
            found.setdefault(names[0], []).append((day.text, int(value.text)))
    return found


def test_one_series_per_app_one_bar_per_day_zero_when_unused() -> None:
    svg = usage_chart_svg(STATS, 7, TODAY)
    root = ElementTree.fromstring(svg)  # well-formed XML
    assert root.tag == f"{SVG}svg"
    days = [f"2026-03-{d:02}" for d in range(9, 16)]
    # Series in app order: chat, images, voice ("old" had no usage in the window).
    assert series(root) == {
        "serie-0": list(zip(days, [0, 0, 0, 0, 20, 0, 7], strict=True)),
        "serie-1": list(zip(days, [0, 0, 0, 0, 0, 0, 5], strict=True)),
        "serie-2": list(zip(days, [0, 0, 0, 0, 0, 3, 0], strict=True)),
    }
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"chat", "images", "voice"} <= texts  # the legend names every app
    assert "old" not in texts
    tooltips = [t.text for t in root.iter(f"{SVG}title") if t.text and "credits" in t.text]
    assert "chat, 2026-03-13: 20 credits" in tooltips
    assert len(tooltips) == 3 * 7


def test_accessible_title_and_description() -> None:
    root = ElementTree.fromstring(usage_chart_svg(STATS, 7, TODAY))
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title is not None
    assert desc is not None
    assert title.text == "Credits used per app and day"
    assert desc.text == (
        "Credits used from 2026-03-09 to 2026-03-15: 35 in all; "
        "per app: chat 27, images 5, voice 3."
    )
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


def test_no_external_references_and_no_script() -> None:
    for svg in (usage_chart_svg(STATS, 30, TODAY), usage_chart_svg([], 30, TODAY)):
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", svg))
        assert urls == {"http://www.w3.org/2000/svg"}
        assert "<script" not in svg
        assert "<!--" not in svg
        assert "<?xml" not in svg  # to be inlined in a page
        assert "url(" not in svg.replace("url(#", "")  # no stylesheet or font fetched


def test_no_usage_says_so() -> None:
    root = ElementTree.fromstring(usage_chart_svg(STATS[-1:], 30, TODAY))
    assert series(root) == {}
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "No credits used in the last 30 days" in texts
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert desc.text == "No credits used from 2026-02-14 to 2026-03-15."


def test_two_charts_have_distinct_ids() -> None:
    first = ElementTree.fromstring(usage_chart_svg(STATS, 7, TODAY))
    second = ElementTree.fromstring(usage_chart_svg(STATS, 7, TODAY))
    assert first.get("aria-labelledby") != second.get("aria-labelledby")


def test_refuses_an_empty_window() -> None:
    with pytest.raises(ValueError, match="days"):
        usage_chart_svg(STATS, 0, TODAY)

"""The dashboard's SVG charts: well-formed XML, bars in proportion to their values, labels
escaped, nothing the CSP forbids (no script, no style attribute, no outside reference)."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from tipline.web.admin.charts import Series, bars, hour_grid, nice_top


def parse(markup: str) -> ElementTree.Element:
    return ElementTree.fromstring(str(markup))  # noqa: S314 - our own output under test


def data_bars(root: ElementTree.Element) -> list[ElementTree.Element]:
    return [r for r in root.iter("rect") if r.get("data-value") is not None]


def test_bars_are_in_proportion_to_their_values() -> None:
    root = parse(bars("t", "Tips", ["a", "b", "c", "d"], [Series("n", "s-low", [1, 2, 4, 0])]))
    assert root.tag == "svg"
    found = data_bars(root)
    assert [r.get("data-value") for r in found] == ["1", "2", "4"]  # a zero draws no bar
    heights = [float(r.get("height", "0")) for r in found]
    assert heights[1] == pytest.approx(2 * heights[0])
    assert heights[2] == pytest.approx(4 * heights[0])
    # Bars stand on one baseline.
    bottoms = {round(float(r.get("y", "0")) + float(r.get("height", "0")), 2) for r in found}
    assert len(bottoms) == 1


def test_stacked_bars_add_up_and_the_scale_is_a_round_number() -> None:
    series = [Series("critical", "s-critical", [3, 0]), Series("low", "s-low", [1, 2])]
    root = parse(bars("t", "Tips", ["mon", "tue"], series))
    by_series = {(r.get("data-series"), r.get("data-value")): r for r in data_bars(root)}
    crit, low = by_series[("critical", "3")], by_series[("low", "1")]
    # Stacked: the second sits on the first, and 3 + 1 fills 4/5 of the plot (top is 5).
    assert float(low.get("y", "0")) + float(low.get("height", "0")) == pytest.approx(
        float(crit.get("y", "0"))
    )
    total = float(crit.get("height", "0")) + float(low.get("height", "0"))
    assert total / float(crit.get("height", "0")) == pytest.approx(4 / 3)
    assert [t.text for t in root.iter("text") if t.get("class") == "axis"][:3] == [
        "0",
        "2.5",
        "5",
    ]


def test_grouped_bars_stand_side_by_side() -> None:
    series = [Series("p50", "p50", [2.0, None]), Series("p90", "p90", [8.0, 4.0])]
    root = parse(bars("t", "Ack", ["w1", "w2"], series, stacked=False, unit="m"))
    found = {(r.get("data-series"), r.get("data-value")): r for r in data_bars(root)}
    assert set(found) == {("p50", "2"), ("p90", "8"), ("p90", "4")}  # None: no bar
    p50, p90 = found[("p50", "2")], found[("p90", "8")]
    assert float(p90.get("height", "0")) == pytest.approx(4 * float(p50.get("height", "0")))
    assert float(p50.get("x", "0")) < float(p90.get("x", "0"))


def test_labels_are_escaped_and_nothing_the_csp_forbids_is_drawn() -> None:
    hostile = "<script>alert(1)</script>"
    markup = str(
        bars("t", hostile, [hostile, "x"], [Series('"><svg onload=alert(1)>', "s-low", [1, 1])])
    )
    root = parse(markup)  # still well-formed
    assert "<script" not in markup
    assert "<svg onload" not in markup
    for element in root.iter():
        assert "style" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib)
        assert "href" not in "".join(element.attrib)
    assert root.find("title") is not None  # named for screen readers
    assert root.get("role") == "img"


def test_nothing_to_draw_draws_no_bars() -> None:
    root = parse(bars("t", "Tips", ["a", "b"], [Series("n", "s-low", [0, 0])]))
    assert data_bars(root) == []
    assert nice_top(0) == 1.0
    assert [nice_top(v) for v in (0.3, 1, 3, 7, 12, 51)] == [0.5, 1, 5, 10, 20, 100]


def test_the_hour_grid_fills_flagged_hours_and_leaves_out_the_unlooked() -> None:
    rows = [("Mon", [None] * 12 + [True] * 2 + [False] * 10), ("Tue", [False] * 24)]
    root = parse(hour_grid("g", "Nobody on duty", rows))
    cells = list(root.iter("rect"))
    assert len(cells) == 12 + 24
    gaps = [c for c in cells if c.get("class") == "gap"]
    assert [c.get("data-hour") for c in gaps] == ["12", "13"]
    desc = root.find("desc")
    assert desc is not None
    assert desc.text == "2 of 36 hours flagged."

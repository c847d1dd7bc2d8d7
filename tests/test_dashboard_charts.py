"""Legibility of the charts that show error kinds: one colour per kind whatever the data, axis titles that say
what they count, and model names never cut short (the 120b and the 20b must be told apart)."""

from __future__ import annotations

import json

import pandas as pd
from test_dashboard import BIG, SMALL, run_page

from app.store.target import Target
from dashboard import charts, words


def _colours(chart: object) -> dict[str, str]:
    scale = chart.to_dict()["encoding"]["color"]["scale"]  # type: ignore[attr-defined]
    return dict(zip(scale["domain"], scale["range"], strict=True))


def test_an_error_kind_keeps_its_colour_across_datasets() -> None:
    one = _colours(charts.kinds_bar({"timeout": 40, "rate_limited": 3}))
    other = _colours(charts.kinds_bar({"rate_limited": 90, "server_error": 2, "timeout": 1, "a_new_kind": 5}))
    # Shown in words (the legend and the axis), coloured by the code name.
    assert one["timed out"] == other["timed out"] == charts.KIND_COLOURS["timeout"]
    assert one["rate limited"] == other["rate limited"]
    assert other["a_new_kind"] == charts.kind_colour("a_new_kind")  # unknown kinds: stable too, shown as coded
    by_model = _colours(charts.kinds_by_model({BIG: {"timeout": 2}, SMALL: {"server_error": 1, "timeout": 1}}))
    assert by_model == {"timed out": one["timed out"], "provider error": other["provider error"]}


def test_a_kind_reads_in_words_with_its_code_name_in_the_tooltip() -> None:
    spec = charts.kinds_bar({"hedge_lost": 2, "rate_limited": 1}).to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert [(r["Error kind"], r["Code name"]) for r in rows] == [
        ("cut short (the hedge's other call answered)", "hedge_lost"),
        ("rate limited", "rate_limited"),
    ]
    assert any(t.get("field") == "Code name" for t in spec["encoding"]["tooltip"])
    assert words.kind_with_code("server_error") == "provider error (server_error)"
    assert words.kind("brand_new") == "brand_new" and words.kind(None) == "unknown"


def test_axes_are_titled_and_model_names_are_not_cut() -> None:
    spec = charts.kinds_by_model({BIG: {"timeout": 2}, SMALL: {"timeout": 1}}).to_dict()
    assert spec["encoding"]["y"]["axis"]["labelLimit"] == 0
    assert spec["encoding"]["x"]["title"] == "Failed calls (count)"
    assert spec["encoding"]["y"]["sort"] == [BIG, SMALL]  # most failed calls first
    assert charts.kinds_bar({"timeout": 1}).to_dict()["encoding"]["x"]["title"] == "Attempts (count)"


def test_the_pages_draw_them(seeded: Target) -> None:
    for page in ("Failures", "Models"):
        at = run_page(page)
        specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
        colour_scales = [s["encoding"]["color"]["scale"] for s in specs if "color" in s.get("encoding", {})]
        assert any("timed out" in scale["domain"] for scale in colour_scales), page


def test_overview_trends_tell_their_series_apart_with_level_labels_and_whole_titles() -> None:
    frame = pd.DataFrame(
        {"success %": [90.0, None, 80.0], "fallback %": [10.0, None, 5.0]},
        index=pd.Index(["12-05 10:00", "12-05 11:00", "12-05 12:00"], name="UTC"),
    )
    spec = charts.trend(frame, x_title="Start of each hour (UTC)", y_title="%", mark="line").to_dict()
    scale = spec["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == {"success %": "#2e7d32", "fallback %": "#ef6c00"}
    x = spec["encoding"]["x"]
    assert x["axis"]["labelAngle"] == 0 and x["axis"]["titleLimit"] == 0 and x["title"] == "Start of each hour (UTC)"
    assert spec["encoding"]["y"]["axis"]["titleLimit"] == 0
    rows = next(iter(spec["datasets"].values()))
    assert {r["Bucket"] for r in rows} == {"12-05 10:00", "12-05 12:00"}  # an empty bucket draws no point at 0


def test_fallback_depth_positions_differ_in_hue() -> None:
    shares = pd.DataFrame({"1st %": [80.0], "2nd %": [20.0]}, index=pd.Index(["fast"]))
    scale = charts.depth_by_task(shares).to_dict()["encoding"]["color"]["scale"]
    assert scale["domain"] == ["1st", "2nd"] and scale["range"] == ["#2e7d32", "#f9a825"]  # green, then amber

"""The charts that show error kinds, drawn with Altair (Streamlit's own chart library): each kind keeps one colour
on every chart and every dataset, axes say what they count, and model names are never cut short."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import altair as alt
import pandas as pd

from dashboard import words

# Families share a hue: capacity and rate limits amber/orange, provider faults red, time blue, the model gone
# purple, the request's own fault brown, the router's choices grey/green.
KIND_COLOURS: dict[str, str] = {
    "rate_limited": "#f9a825",
    "capacity": "#ef6c00",
    "cooling_down": "#ffcc80",
    "circuit_open": "#e65100",
    "server_error": "#c62828",
    "unexpected_status": "#e57373",
    "invalid_response": "#ad1457",
    "invalid_output": "#f06292",
    "stream_interrupted": "#880e4f",
    "timeout": "#1565c0",
    "deadline": "#283593",
    "connection": "#4fc3f7",
    "deprecated": "#6a1b9a",
    "not_found": "#ab47bc",
    "bad_request": "#5d4037",
    "too_large": "#8d6e63",
    "context_length": "#a1887f",
    "validation": "#bcaaa4",
    "capability": "#795548",
    "auth": "#212121",
    "setup": "#546e7a",
    "hedge_lost": "#bdbdbd",
    "cancelled": "#9e9e9e",
    "disabled": "#757575",
    "budget": "#2e7d32",
    "unknown": "#616161",
}
# For a kind this table does not know (a newer router's): picked by a hash of the name, so it is stable too.
_SPARE = ("#00897b", "#7cb342", "#3949ab", "#d4e157", "#26a69a", "#8e24aa", "#fdd835", "#5c6bc0")
# Height per bar, as a Vega-Lite step: Streamlit squeezes a chart given a fixed height in pixels into a strip.
BAR = alt.Step(28)


def kind_colour(kind: str) -> str:
    return KIND_COLOURS.get(kind) or _SPARE[zlib.crc32(kind.encode()) % len(_SPARE)]


def _colour(kinds: list[str], legend: bool) -> alt.Color:
    """`kinds`: code names; the chart shows each in words (dashboard/words.py) in the code's colour."""
    shown = [words.kind(k) for k in kinds]
    scale = alt.Scale(domain=shown, range=[kind_colour(k) for k in kinds])
    return alt.Color(
        "Error kind:N",
        scale=scale,
        sort=shown,
        legend=alt.Legend(orient="bottom", title="Error kind", labelLimit=0) if legend else None,
    )


def kinds_bar(counts: Mapping[str, int], what: str = "Attempts") -> alt.Chart:
    """One bar per error kind, the most frequent first."""
    kinds = sorted(counts, key=lambda k: (-counts[k], k))
    shown = [words.kind(k) for k in kinds]
    frame = pd.DataFrame({"Error kind": shown, "Code name": kinds, what: [counts[k] for k in kinds]})
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{what}:Q", title=f"{what} (count)", axis=alt.Axis(format=",d", tickMinStep=1, titleLimit=0)),
            y=alt.Y("Error kind:N", sort=shown, title=None, axis=alt.Axis(labelLimit=0)),
            color=_colour(kinds, legend=False),
            tooltip=["Error kind", "Code name", alt.Tooltip(f"{what}:Q", format=",d")],
        )
        .properties(height=BAR)
    )


def kinds_by_model(counts: Mapping[str, Mapping[str, int]], what: str = "Failed calls") -> alt.Chart:
    """Per model a bar of its failed calls, split by error kind; full model names on the axis."""
    rows = [
        {"Model": model, "Error kind": words.kind(kind), "Code name": kind, what: n}
        for model, kinds in counts.items()
        for kind, n in kinds.items()
        if n
    ]
    frame = pd.DataFrame(rows, columns=["Model", "Error kind", "Code name", what])
    totals = frame.groupby("Model")[what].sum()
    kinds = sorted(set(frame["Code name"]), key=lambda k: (-frame.loc[frame["Code name"] == k, what].sum(), k))
    models = sorted(totals.index, key=lambda m: (-totals[m], m))
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"sum({what}):Q", title=f"{what} (count)", axis=alt.Axis(format=",d", tickMinStep=1, titleLimit=0)),
            y=alt.Y("Model:N", sort=models, title=None, axis=alt.Axis(labelLimit=0)),
            color=_colour(kinds, legend=True),
            order=alt.Order("Error kind:N"),
            tooltip=["Model", "Error kind", "Code name", alt.Tooltip(f"{what}:Q", format=",d")],
        )
        .properties(height=BAR)
    )


def depth_by_task(shares: pd.DataFrame) -> alt.Chart:
    """Per task, which chain position answered, as a share of its answered requests (columns "1st %", "2nd %"...,
    one row per task)."""
    positions = list(shares.columns)
    frame = shares.fillna(0).reset_index(names="Task").melt("Task", var_name="Position", value_name="Share")
    frame["Position"] = frame["Position"].str.removesuffix(" %")
    names = [p.removesuffix(" %") for p in positions]
    # First position green, each later one a warmer hue: told apart at a glance, not two neighbouring blues.
    hues = ["#2e7d32", "#f9a825", "#ef6c00", "#c62828", "#8e24aa", "#6d4c41"]
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("sum(Share):Q", title="Share of the answered requests (%)", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("Task:N", title=None, axis=alt.Axis(labelLimit=0)),
            color=alt.Color(
                "Position:N",
                sort=names,
                title="Answered at position",
                scale=alt.Scale(domain=names, range=[hues[min(i, len(hues) - 1)] for i in range(len(names))]),
                legend=alt.Legend(orient="bottom"),
            ),
            order=alt.Order("Position:N"),
            tooltip=["Task", "Position", alt.Tooltip("Share:Q", format=".1f")],
        )
        .properties(height=BAR)
    )


TIER_COLOURS = {
    "simple": "#81c784",
    "medium": "#ffb74d",
    "complex": "#e57373",
    "no tier": "#90a4ae",
    "not kept": "#cfd8dc",
}


def tier_mix(tiers: pd.DataFrame, order: tuple[str, ...]) -> alt.Chart:
    """Per task, its answers by tier as shares (columns Task, Tier, Share %: one row per task and tier)."""
    frame = tiers[["Task", "Tier", "Share %"]].fillna(0).rename(columns={"Share %": "Share"})
    names = [t for t in order if t in set(frame["Tier"])] + sorted(set(frame["Tier"]) - set(order))
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("sum(Share):Q", title="Share of the task's answers (%)", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("Task:N", title=None, axis=alt.Axis(labelLimit=0)),
            color=alt.Color(
                "Tier:N",
                sort=names,
                title="Tier",
                scale=alt.Scale(domain=names, range=[TIER_COLOURS.get(t) or kind_colour(t) for t in names]),
                legend=alt.Legend(orient="bottom"),
            ),
            order=alt.Order("tier_rank:Q"),
            tooltip=["Task", "Tier", alt.Tooltip("Share:Q", format=".1f")],
        )
        .transform_calculate(tier_rank=f"indexof({names!r}, datum.Tier)")
        .properties(height=BAR)
    )


# Overview's trend: series told apart by hue (not two blues), level labels, axis titles never cut.
TREND_COLOURS = {
    "answered": "#2e7d32",
    "not answered": "#c62828",
    "success %": "#2e7d32",
    "fallback %": "#ef6c00",
    "cost $": "#6a1b9a",
    "tokens": "#1565c0",
}


def trend(frame: pd.DataFrame, *, x_title: str, y_title: str, mark: str = "bar", height: int = 320) -> alt.Chart:
    """`frame`: one row per bucket (its label in the index, sortable text), one column per series. Bars stack;
    lines draw points too, so a bucket alone between empty ones still shows. `y_title` short (the unit): a title
    longer than the plot is tall is cut, and the section's heading says the rest. `height` is the whole chart's, the
    legend and axes included (Streamlit fits the spec into it): the plot itself gets about half."""
    series = list(frame.columns)
    long = frame.reset_index(names="Bucket").melt("Bucket", var_name="Series", value_name="Value")
    long = long.dropna(subset=["Value"])
    colour = alt.Color(
        "Series:N",
        sort=series,
        title=None,
        scale=alt.Scale(domain=series, range=[TREND_COLOURS.get(s) or kind_colour(s) for s in series]),
        # Above the plot: Streamlit's theme leaves a wide gap under the x axis that a legend there would add to.
        legend=alt.Legend(orient="top", labelLimit=0) if len(series) > 1 else None,
    )
    x = alt.X(
        "Bucket:O",
        title=x_title,
        axis=alt.Axis(labelAngle=0, labelOverlap="greedy", titleLimit=0, labelLimit=0),
    )
    y = alt.Y("sum(Value):Q" if mark == "bar" else "Value:Q", title=y_title, axis=alt.Axis(titleLimit=0))
    base = alt.Chart(long)
    marked = base.mark_bar() if mark == "bar" else base.mark_line(point=True)
    return marked.encode(
        x=x, y=y, color=colour, tooltip=["Bucket", "Series", alt.Tooltip("Value:Q", format=",.4~f")]
    ).properties(height=height)

"""The shipped Grafana board (deploy/grafana/taskrouter.json) and Prometheus rules (deploy/prometheus/): every query
names series and labels the code exports (app.telemetry.instruments), every instrument is on the board, and
promtool accepts the rules, the example configuration and the rules' unit tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.telemetry.instruments import INSTRUMENTS, Instrument, prometheus_labels, prometheus_series

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
BOARD = DEPLOY / "grafana" / "taskrouter.json"
RULES = DEPLOY / "prometheus" / "alerts.yml"
CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULES_TEST = DEPLOY / "prometheus" / "alerts_test.yml"

# Labels Prometheus itself attaches to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})

AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"}
)
FUNCTIONS = AGGREGATIONS | frozenset(
    {
        "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
        "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
        "floor", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_sum", "holt_winters",
        "hour", "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
        "max_over_time", "min_over_time", "minute", "month", "predict_linear", "present_over_time",
        "quantile_over_time", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt",
        "stddev_over_time", "stdvar_over_time", "sum_over_time", "time", "timestamp", "vector", "year",
    }
)  # fmt: skip
GROUPING = frozenset({"by", "without"})
MATCHING = frozenset({"on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"})

_STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`""")
_RANGE = re.compile(r"\[[^\]]*\]")  # a range or subquery's duration, Grafana's $__rate_interval included
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?)|(?P<name>[A-Za-z_:][\w:]*)|(?P<other>\S))"
)
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<metric>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$")


@dataclass
class Query:
    """What a PromQL expression names: each selector's metric and matched labels, each grouping clause's labels
    with the metrics it groups, and the functions it calls."""

    selectors: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    groupings: list[tuple[frozenset[str], frozenset[str]]] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)

    @property
    def metrics(self) -> set[str]:
        return {metric for metric, _ in self.selectors}


def _tokens(expr: str) -> list[tuple[str, str]]:
    text = _VARIABLE.sub("", _RANGE.sub("", _STRING.sub('""', expr)))
    out = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
    return out


def _matching_parens(tokens: list[tuple[str, str]], expr: str) -> dict[int, int]:
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for i, (_, text) in enumerate(tokens):
        if text == "(":
            stack.append(i)
        elif text == ")":
            assert stack, f"unbalanced ')' in {expr!r}"
            opened = stack.pop()
            pairs[opened] = i
            pairs[i] = opened
    assert not stack, f"unbalanced '(' in {expr!r}"
    return pairs


def parse_promql(expr: str) -> Query:
    """Enough of PromQL to name what an expression reads: a name followed by `(` is a function (it must be one;
    so is an aggregation followed by by/without), by `{` a selector's metric, followed by neither a bare metric;
    names in braces or in a by/without/on list are labels. Strings, ranges and Grafana's variables go first."""
    tokens = _tokens(expr)
    parens = _matching_parens(tokens, expr)
    query = Query()
    positions: list[tuple[int, str]] = []  # each selector's token index, for a grouping clause's scope
    scopes: list[tuple[frozenset[str], tuple[int, int] | None]] = []  # None: the whole expression
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if text == "{":
            raise AssertionError(f"a selector without a metric name in {expr!r}")
        if kind != "name":
            i += 1
            continue
        if text.lower() in KEYWORDS:
            i += 1
            continue
        if text in GROUPING | MATCHING:
            if following != "(":
                if text in ("group_left", "group_right"):
                    i += 1
                    continue
                raise AssertionError(f"{text} without a label list in {expr!r}")
            close = parens[i + 1]
            labels = frozenset(name for k, name in tokens[i + 2 : close] if k == "name")
            scope: tuple[int, int] | None = None  # on/ignoring: both sides of the operator
            if text in GROUPING and i > 0 and tokens[i - 1][1] in AGGREGATIONS:  # sum by (x) (body)
                scope = (close + 1, parens[close + 1])
            elif text in GROUPING:  # sum (body) by (x)
                assert tokens[i - 1][1] == ")", f"{text} ({', '.join(sorted(labels))}) follows no aggregation"
                scope = (parens[i - 1], i - 1)
            scopes.append((labels, scope))
            i = close + 1
            continue
        if following == "(" or (text in AGGREGATIONS and following in GROUPING):
            assert text in FUNCTIONS, f"{text}() is not a PromQL function (in {expr!r})"
            query.functions.add(text)
            i += 1
            continue
        end = i  # the selector's last token: the name, or the closing brace of its matchers
        if following == "{":
            end = next(j for j in range(i + 1, len(tokens)) if tokens[j][1] == "}")
        positions.append((i, text))
        query.selectors.append((text, frozenset(name for k, name in tokens[i + 2 : end] if k == "name")))
        i = end + 1
    for labels, scope in scopes:
        start, end = scope or (-1, len(tokens))
        query.groupings.append((labels, frozenset(metric for at, metric in positions if start < at < end)))
    return query


SERIES = prometheus_series()


def instrument_of(series: str) -> Instrument:
    for instrument in INSTRUMENTS:
        if instrument.kind == "histogram" and series in {
            f"{instrument.prometheus}{s}" for s in ("_bucket", "_sum", "_count")
        }:
            return instrument
        if instrument.kind != "histogram" and series == instrument.prometheus:
            return instrument
    raise AssertionError(f"{series} is not a series taskrouter exports")


def labels_of(series: str) -> frozenset[str]:
    extra = {"le"} if series.endswith("_bucket") else set()
    return frozenset(prometheus_labels(instrument_of(series))) | extra | TARGET_LABELS


def problems(expr: str, *, output_labels: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """What in `expr` names something taskrouter does not export; `output_labels`: labels a legend or an alert's
    annotations read from the result, which every grouping clause must keep."""
    query = parse_promql(expr)
    found = []
    if not query.selectors:
        found.append(f"reads no metric: {expr!r}")
    for metric, labels in query.selectors:
        if metric not in SERIES:
            found.append(f"unknown series {metric} in {expr!r}")
            continue
        if unknown := labels - labels_of(metric):
            found.append(f"{metric} has no label {', '.join(sorted(unknown))} (in {expr!r})")
    for labels, metrics in query.groupings:
        for metric in metrics & SERIES:
            if unknown := labels - labels_of(metric):
                found.append(f"grouping by {', '.join(sorted(unknown))}, which {metric} lacks (in {expr!r})")
    if output_labels:
        if not query.groupings:
            found.append(f"reads {', '.join(sorted(output_labels))} from a result without labels: {expr!r}")
        for labels, _ in query.groupings:
            if lost := output_labels - labels:
                found.append(f"reads {', '.join(sorted(lost))}, which a grouping drops (in {expr!r})")
    return found


# -- the parser itself ---------------------------------------------------------------------------------------------


def test_the_parser_names_metrics_labels_and_grouping_scopes():
    query = parse_promql(
        "histogram_quantile(0.99, sum by (gen_ai_request_model, le) "
        "(rate(gen_ai_client_operation_duration_seconds_bucket"
        '{taskrouter_task=~"$task", error_type=""}[$__rate_interval])))'
        " / on (gen_ai_request_model) group_left max(taskrouter_circuit_state) by (gen_ai_request_model) > bool 2"
    )
    assert query.selectors == [
        ("gen_ai_client_operation_duration_seconds_bucket", frozenset({"taskrouter_task", "error_type"})),
        ("taskrouter_circuit_state", frozenset()),
    ]
    assert query.groupings == [
        (frozenset({"gen_ai_request_model", "le"}), frozenset({"gen_ai_client_operation_duration_seconds_bucket"})),
        (
            frozenset({"gen_ai_request_model"}),
            frozenset({"gen_ai_client_operation_duration_seconds_bucket", "taskrouter_circuit_state"}),
        ),
        (frozenset({"gen_ai_request_model"}), frozenset({"taskrouter_circuit_state"})),
    ]
    assert query.functions == {"histogram_quantile", "sum", "rate", "max"}


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ("sum(rate(taskrouter_request_total[5m]))", "unknown series taskrouter_request_total"),
        ('rate(taskrouter_requests_total{gen_ai_request_model="m"}[5m])', "has no label gen_ai_request_model"),
        ("sum by (le) (rate(taskrouter_requests_total[5m]))", "grouping by le, which taskrouter_requests_total"),
        ("taskrouter_cost_usd_total * 3600 > 0 and taskrouter_circuit_stat", "unknown series taskrouter_circuit_stat"),
        ("sum by (error_type) (taskrouter_fallbacks_total)", "grouping by error_type"),
        ("42", "reads no metric"),
    ],
)
def test_a_name_the_code_does_not_export_is_reported(expr, complaint):
    assert any(complaint in problem for problem in problems(expr)), problems(expr)


def test_a_label_read_from_a_result_must_survive_its_groupings():
    expr = "sum by (taskrouter_task) (rate(taskrouter_requests_total[5m]))"
    assert problems(expr, output_labels={"taskrouter_task"}) == []
    assert problems(expr, output_labels={"taskrouter_ending"}) == [
        f"reads taskrouter_ending, which a grouping drops (in {expr!r})"
    ]


def test_an_unknown_function_or_a_nameless_selector_is_an_error():
    with pytest.raises(AssertionError, match=r"rates\(\) is not a PromQL function"):
        parse_promql("rates(taskrouter_requests_total[5m])")
    with pytest.raises(AssertionError, match="without a metric name"):
        parse_promql('{__name__="taskrouter_requests_total"}')


# -- the Grafana board ---------------------------------------------------------------------------------------------


def board() -> dict[str, Any]:
    return json.loads(BOARD.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside it


def legend_labels(legend: str) -> set[str]:
    return set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))


def test_every_board_query_names_series_and_labels_the_code_exports():
    found = []
    for panel in panels(board()):
        for target in panel.get("targets", []):
            found += problems(target["expr"], output_labels=legend_labels(target.get("legendFormat", "")))
    assert found == []


def test_every_instrument_is_on_the_board():
    shown = {
        instrument_of(metric).prometheus
        for panel in panels(board())
        for target in panel.get("targets", [])
        for metric in parse_promql(target["expr"]).metrics
    }
    assert sorted(i.prometheus for i in INSTRUMENTS if i.prometheus not in shown) == []


def test_the_board_asks_for_a_prometheus_data_source_and_filters_by_task_and_model():
    dashboard = board()
    assert dashboard["schemaVersion"] >= 39
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    found = []
    for name, label in (("task", "taskrouter_task"), ("model", "gen_ai_request_model")):
        match = _LABEL_VALUES.match(variables[name]["query"]["query"])
        assert match is not None and match["label"] == label, variables[name]["query"]
        found += problems(match["metric"])
        if label not in labels_of(parse_promql(match["metric"]).selectors[0][0]):
            found.append(f"{match['metric']} has no label {label}")
    assert found == []
    uses = {
        variable
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        for variable in re.findall(r"\$(task|model)\b", target["expr"])
    }
    assert uses == {"task", "model"}


def test_every_panel_has_a_title_a_description_a_unit_and_the_templated_data_source():
    found = []
    for panel in panels(board()):
        if panel["type"] == "row":
            continue
        where = panel.get("title") or f"panel {panel['id']}"
        if not panel.get("title") or not panel.get("description"):
            found.append(f"{where}: no title or description")
        if not panel["fieldConfig"]["defaults"].get("unit"):
            found.append(f"{where}: no unit")
        sources = [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]
        if any(s != {"type": "prometheus", "uid": "${DS_PROMETHEUS}"} for s in sources):
            found.append(f"{where}: not on ${{DS_PROMETHEUS}}")
        if not panel["targets"]:
            found.append(f"{where}: no query")
    assert found == []


def test_the_board_shows_the_issues_panels_with_their_units():
    units = {
        panel["title"]: panel["fieldConfig"]["defaults"]["unit"] for panel in panels(board()) if panel["type"] != "row"
    }
    assert units["Request rate by task"] == "reqps"
    assert units["Success ratio by task"] == "percentunit"
    assert units["Fallback rate by task"] == "percentunit"
    assert units["Provider-call latency p50 / p95 / p99 by model"] == "s"
    assert units["Time to first chunk p50 / p95 by model (streams)"] == "s"
    assert units["Spent vs daily budget (USD)"] == "currencyUSD"
    assert units["Budget used today"] == "percentunit"
    assert "Circuit state by model" in units
    assert "Calls to retired models" in units
    assert units["Cache savings (USD per hour)"] == "currencyUSD"
    latency = next(p for p in panels(board()) if p["title"].startswith("Provider-call latency"))
    assert [re.match(r"histogram_quantile\(([\d.]+),", t["expr"])[1] for t in latency["targets"]] == [
        "0.5",
        "0.95",
        "0.99",
    ]


def test_no_two_panels_overlap_and_ids_are_unique():
    cells: dict[tuple[int, int], str] = {}
    ids = []
    for panel in board()["panels"]:
        ids.append(panel["id"])
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
    assert len(ids) == len(set(ids))


# -- the alert rules -----------------------------------------------------------------------------------------------


def rules() -> list[dict[str, Any]]:
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the rule files (the docs extra installs it)")
    return [rule for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"] for rule in group["rules"]]


def test_every_rule_names_series_and_labels_the_code_exports():
    found = []
    for rule in rules():
        read = set()
        for text in rule.get("annotations", {}).values():
            read |= set(re.findall(r"\$labels\.(\w+)", text))
        found += problems(rule["expr"], output_labels=read)
    assert found == []


def test_the_issues_alerts_are_there_each_with_a_severity_a_summary_and_a_description():
    alerts = {rule["alert"]: rule for rule in rules()}
    assert {
        "TaskrouterModelCircuitOpen",
        "TaskrouterModelCallsFailing",
        "TaskrouterBudget80Percent",
        "TaskrouterBudgetExhausted",
        "TaskrouterFallbackRateAboveNormal",
        "TaskrouterRetiredModelCalled",
        "TaskrouterRequestErrorRatioHigh",
    } <= set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
    assert alerts["TaskrouterModelCircuitOpen"]["for"] == "2m"
    assert "taskrouter_circuit_state) == 2" in alerts["TaskrouterModelCircuitOpen"]["expr"]


# -- promtool ------------------------------------------------------------------------------------------------------


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not found: install Debian's prometheus package (.ci/run does)")
    return subprocess.run([found, *args], capture_output=True, text=True, timeout=60, cwd=RULES.parent)


def test_promtool_accepts_the_rules():
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout + done.stderr


def test_promtool_accepts_the_example_configuration_and_the_rules_it_loads():
    done = promtool("check", "config", str(CONFIG))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout + done.stderr


def test_the_rules_fire_on_synthetic_series_as_their_unit_tests_expect():
    done = promtool("test", "rules", str(RULES_TEST))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr

"""`taskrouter whatif` against a known attempt log, written by the store's own AttemptLog: the figures it prints per
task (replayed under a TOML file, a Python file, a catalog alone), what it leaves out and why, a log written before
tiers, bad input, and the same report from PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app import cli
from app.core import ai_models
from app.registry.catalog import ModelInfo
from app.store import AttemptLog, AttemptRow
from app.store.target import PostgresTarget, Target

SMALL, MID, BIG, UNPRICED = "m/small", "m/mid", "m/big", "m/unpriced"
# USD per million tokens: round figures, so that every expected cost below is worked out by hand.
CATALOG = {
    SMALL: ModelInfo(input_price=1.0, output_price=2.0, cached_input_price=0.5),
    BIG: ModelInfo(input_price=10.0, output_price=20.0),
    UNPRICED: ModelInfo(),
}
REGISTRY = {"fast": [SMALL], "reasoning": [SMALL, BIG], "summarization": [UNPRICED], "fallback": [SMALL]}

NEW_TOML = """
[registry]
fast = ["m/mid"]
reasoning = ["m/big"]
"reasoning:simple" = ["m/small"]
"reasoning:medium" = ["m/mid"]
summarization = ["m/small"]
fallback = ["m/small"]

[catalog."m/mid"]
input_price = 4.0
output_price = 8.0
"""


def _row(
    request: str,
    task: str,
    model: str,
    attempt: int,
    outcome: str,
    *,
    ago: timedelta = timedelta(hours=1),
    prompt: int | None = None,
    completion: int | None = None,
    cached: int | None = None,
    cost: float | None = None,
    kind: str | None = None,
    tier: str | None = None,
) -> AttemptRow:
    at = (datetime.now(UTC) - ago).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    total = None if prompt is None else prompt + (completion or 0)
    return AttemptRow(
        request,
        task,
        model,
        "groq",
        attempt,
        outcome,
        kind,
        None,
        None,
        0,
        0,
        prompt,
        completion,
        total,
        100.0,
        cost,
        at,
        cached_tokens=cached,
        tier=tier,
    )


# The known log. Replayed under NEW_TOML:
# fast: r1 and r2 answered by m/small ($0.002, $0.0035: 1,000 of r2's prompt tokens cached at $0.5); m/mid, which
#   has no cached price, would cost $0.008 and $0.016. r7 logged no token counts; r5 is older than 7 days; r6 was a
#   cache hit.
# reasoning: r3 started on the simple tier: m/small's answer was refused ($0.0009), m/big answered on the medium
#   tier ($0.011); the new registry's reasoning:medium list puts m/mid first: $0.0044. r4 ran on the complex
#   tier, which the new registry has no list for: its plain list's m/big, $0.03 as logged. r9 was answered on the
#   simple tier by m/small ($0.0006), which the new reasoning:simple list keeps first (its plain list would have
#   cost $0.006).
# summarization: r8's model had no price, so its logged cost is unknown.
ROWS = [
    _row("r1", "fast", SMALL, 1, "success", prompt=1000, completion=500, cached=0, cost=0.002),
    _row("r2", "fast", SMALL, 1, "success", prompt=2000, completion=1000, cached=1000, cost=0.0035),
    _row(
        "r3", "reasoning", SMALL, 1, "failure", prompt=500, completion=200, cost=0.0009, kind="refused", tier="simple"
    ),
    _row("r3", "reasoning", BIG, 2, "success", prompt=500, completion=300, cost=0.011, tier="medium"),
    _row("r4", "reasoning", BIG, 1, "success", prompt=1000, completion=1000, cost=0.03, tier="complex"),
    _row("r5", "fast", SMALL, 1, "success", ago=timedelta(days=8), prompt=10**6, completion=0, cost=1.0),
    _row("r6", "fast", SMALL, 1, "cache_hit", prompt=1000, completion=500, cost=0.0),
    _row("r7", "fast", SMALL, 1, "success", cost=0.0),
    _row("r8", "summarization", UNPRICED, 1, "success", prompt=100, completion=100),
    _row("r9", "reasoning", SMALL, 1, "success", prompt=400, completion=100, cost=0.0006, tier="simple"),
]


def write_log(where: Target, rows: list[AttemptRow] = ROWS) -> None:
    log = AttemptLog(where)
    for row in rows:
        log.record(row)
    assert log.close(timeout=30), "the attempt log did not write every row"


@pytest.fixture(autouse=True)
def tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {k: list(v) for k, v in REGISTRY.items()})
    monkeypatch.setattr(ai_models, "MODEL_CATALOG", dict(CATALOG))


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    path = tmp_path / "attempts.db"
    write_log(path)
    return path


@pytest.fixture
def new_toml(tmp_path: Path) -> Path:
    path = tmp_path / "new.toml"
    path.write_text(NEW_TOML)
    return path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert cli.main(["whatif", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def task(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in report["tasks"] if t["task"] == name)


EXPECTED = {
    "fast": {
        "requests": 3,
        "compared": 2,
        "logged_usd": 0.0055,
        "other_calls_usd": 0.0,
        "replayed_usd": 0.024,
        "left_out": {"no token counts logged": 1},
        "new_first_models": {MID: 3},
    },
    "reasoning": {
        "requests": 3,
        "compared": 3,
        "logged_usd": 0.0425,
        "other_calls_usd": 0.0009,
        "replayed_usd": 0.035,
        "left_out": {},
        "new_first_models": {MID: 1, BIG: 1, SMALL: 1},
    },
    "summarization": {
        "requests": 1,
        "compared": 0,
        "logged_usd": 0.0,
        "other_calls_usd": 0.0,
        "replayed_usd": 0.0,
        "left_out": {"the logged cost is unknown (its model had no price)": 1},
        "new_first_models": {SMALL: 1},
    },
}


def _figures(line: dict[str, Any]) -> dict[str, Any]:
    return {k: pytest.approx(v, abs=1e-12) if isinstance(v, float) else v for k, v in line.items()}


def test_the_known_log_replayed_under_a_toml_file(logged: Path, new_toml: Path, capsys) -> None:
    report = run_json(capsys, "--registry", str(new_toml), "--db", str(logged))
    assert [t["task"] for t in report["tasks"]] == ["fast", "reasoning", "summarization"]
    for name, want in EXPECTED.items():
        got = task(report, name)
        assert {k: got[k] for k in want} == _figures(want), name
    assert task(report, "fast")["difference_usd"] == pytest.approx(0.0185, abs=1e-12)
    assert task(report, "fast")["change"] == pytest.approx(0.0185 / 0.0055)
    assert task(report, "reasoning")["difference_usd"] == pytest.approx(-0.0075, abs=1e-12)
    assert task(report, "summarization")["change"] is None
    total = report["total"]
    assert (total["requests"], total["compared"]) == (7, 5)
    assert total["logged_usd"] == pytest.approx(0.048, abs=1e-12)
    assert total["replayed_usd"] == pytest.approx(0.059, abs=1e-12)
    assert total["difference_usd"] == pytest.approx(0.011, abs=1e-12)
    assert report["cache_hits_not_replayed"] == 1
    assert (report["registry"], report["catalog"], report["days"]) == (str(new_toml), str(new_toml), 7)


def test_the_text_report_shows_the_same_figures(logged: Path, new_toml: Path, capsys) -> None:
    assert cli.main(["whatif", "--registry", str(new_toml), "--db", str(logged)]) == 0
    out = capsys.readouterr().out
    table = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()
        if line.split() and line.split()[0] in ("fast", "reasoning", "summarization", "total")
    }
    assert table["fast"] == ["3", "2", "$0.005500", "$0.000000", "$0.024000", "+$0.018500", "+336.4%"]
    assert table["reasoning"] == ["3", "3", "$0.042500", "$0.000900", "$0.035000", "-$0.007500", "-17.6%"]
    assert table["summarization"] == ["1", "0", "$0.000000", "$0.000000", "$0.000000", "$0.000000", "-"]
    assert table["total"] == ["7", "5", "$0.048000", "$0.000900", "$0.059000", "+$0.011000", "+22.9%"]
    assert "fast: 1 request not compared: no token counts logged" in out
    assert "reasoning: first model under the new registry: m/big (1), m/mid (1), m/small (1)" in out
    assert "1 cache hit not replayed (free either way)" in out
    assert "#" not in out and "**" not in out  # plain text, no Markdown


def test_a_python_file_and_the_days_and_task_options(logged: Path, tmp_path: Path, capsys) -> None:
    tables = tmp_path / "tables.py"
    tables.write_text(
        "from app.registry.catalog import ModelInfo\n\n"
        'MODEL_REGISTRY = {"fast": ["m/big"], "reasoning": ["m/small"]}\n'
        'MODEL_CATALOG = {"m/small": ModelInfo(input_price=2.0, output_price=4.0)}\n'
    )
    report = run_json(capsys, "--registry", str(tables), "--db", str(logged), "--task", "fast", "--days", "9")
    (fast,) = report["tasks"]
    # r5 (8 days ago) is in: 1,000,000 prompt tokens on m/big cost $10 instead of the $1 logged.
    assert (fast["requests"], fast["compared"]) == (4, 3)
    assert fast["logged_usd"] == pytest.approx(1.0055, abs=1e-12)
    assert fast["replayed_usd"] == pytest.approx(10.0 + 0.02 + 0.04, abs=1e-12)
    report = run_json(capsys, "--registry", str(tables), "--db", str(logged), "--task", "reasoning")
    # The Python catalog replaces m/small's entry whole: no cached price any more, new input and output prices.
    (reasoning,) = report["tasks"]
    assert reasoning["replayed_usd"] == pytest.approx(
        (500 * 2 + 300 * 4 + 1000 * 2 + 1000 * 4 + 400 * 2 + 100 * 4) / 1e6, abs=1e-12
    )
    assert reasoning["logged_usd"] == pytest.approx(0.0425, abs=1e-12)


def test_a_catalog_alone_reprices_the_current_registry(logged: Path, tmp_path: Path, capsys) -> None:
    prices = tmp_path / "prices.toml"  # MODEL_CATALOG_FILE's own form: the same file can be passed
    prices.write_text('[models."m/small"]\ninput_price = 2.0\n')
    report = run_json(capsys, "--catalog", str(prices), "--db", str(logged), "--task", "fast")
    (fast,) = report["tasks"]
    # Merged field by field: the output and cached prices stay; r1 1,000 x $2 + 500 x $2; r2 1,000 x $2 + 1,000 x
    # $0.5 + 1,000 x $2.
    assert fast["replayed_usd"] == pytest.approx((2000 + 1000) / 1e6 + (2000 + 500 + 2000) / 1e6, abs=1e-12)
    assert (report["registry"], report["catalog"]) == ("current", str(prices))


def test_an_unpriced_or_missing_model_is_left_out_and_said(logged: Path, tmp_path: Path, capsys) -> None:
    tables = tmp_path / "tables.toml"
    tables.write_text('[registry]\nfast = ["m/unknown"]\nreasoning = ["m/unpriced"]\nfallback = ["m/small"]\n')
    report = run_json(capsys, "--registry", str(tables), "--db", str(logged))
    assert task(report, "fast")["left_out"] == {
        "no price for m/unknown in the catalog replayed": 2,
        "no token counts logged": 1,
    }
    assert task(report, "reasoning")["left_out"] == {"no price for m/unpriced in the catalog replayed": 3}
    # summarization is not in the new registry: its fallback list does not make it a task.
    assert task(report, "summarization")["left_out"] == {"the registry replayed gives the task no model": 1}
    assert report["total"]["compared"] == 0


def test_a_log_written_before_tiers_replays_every_request_untiered(tmp_path: Path, new_toml: Path, capsys) -> None:
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    with conn:
        conn.execute(
            "CREATE TABLE attempts (id INTEGER PRIMARY KEY, request_id TEXT, task_type TEXT, model TEXT, "
            "provider TEXT, attempt INTEGER, outcome TEXT, error_kind TEXT, prompt_tokens INTEGER, "
            "completion_tokens INTEGER, cost_usd REAL, created_at TEXT)"
        )
        at = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        conn.execute(
            "INSERT INTO attempts (request_id, task_type, model, provider, attempt, outcome, prompt_tokens, "
            "completion_tokens, cost_usd, created_at) VALUES ('q1', 'reasoning', 'm/big', 'groq', 1, "
            "'success', 500, 300, 0.011, ?)",
            (at,),
        )
    conn.close()
    report = run_json(capsys, "--registry", str(new_toml), "--db", str(old))
    (reasoning,) = report["tasks"]
    # No tier: the plain reasoning list's m/big, not reasoning:simple's m/small.
    assert reasoning["new_first_models"] == {BIG: 1}
    assert reasoning["replayed_usd"] == pytest.approx(0.011, abs=1e-12)


def test_text_from_the_database_is_printed_without_control_characters(tmp_path: Path, new_toml: Path, capsys) -> None:
    path = tmp_path / "attempts.db"
    write_log(path, [_row("x1", "fast\x1b[2J\u202e", SMALL, 1, "success", prompt=10, completion=10, cost=0.00003)])
    assert cli.main(["whatif", "--registry", str(new_toml), "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "fast?[2J?" in out


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (None, ".toml", "--registry {path}: there is no such file"),
        ("[registry\nfast = [", ".toml", "--registry {path}: cannot read it: "),
        (
            '[registry]\nfast = "m/small"\n',
            ".toml",
            "--registry {path}: registry['fast'] must be a list of model names",
        ),
        (
            '[catalog."m/x"]\ninput_price = "cheap"\n',
            ".toml",
            "--registry {path}: catalog.'m/x'.input_price has the wrong type: 'cheap'",
        ),
        ("[prices]\nx = 1\n", ".toml", "--registry {path}: unknown table 'prices'; known: registry, catalog"),
        ("MODEL_REGISTRY = {'fast': ['m/small']\n", ".py", "--registry {path}, line 1: it is not valid Python"),
        (
            "raise RuntimeError('no network here')\n",
            ".py",
            "--registry {path}: running it failed: RuntimeError: no network here",
        ),
        (
            "MODEL_CATALOG = {'m/small': {'input_price': 1}}\n",
            ".py",
            "--registry {path}: MODEL_CATALOG must map model names to ModelInfo(...) entries",
        ),
        ("X = 1\n", ".py", "--registry {path} defines neither a registry nor a catalog"),
        ("fast: [m/small]\n", ".yaml", "--registry {path}: give a .py file"),
    ],
)
def test_a_bad_file_is_a_clear_error(
    logged: Path, tmp_path: Path, capsys, content: str | None, suffix: str, message: str
) -> None:
    path = tmp_path / f"tables{suffix}"
    if content is not None:
        path.write_text(content)
    assert cli.main(["whatif", "--registry", str(path), "--db", str(logged)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"taskrouter whatif: {message.format(path=path)}"), err


def test_other_bad_input_is_a_clear_error(logged: Path, new_toml: Path, tmp_path: Path, capsys) -> None:
    assert cli.main(["whatif", "--db", str(logged)]) == 2
    assert "give --registry FILE, --catalog FILE or both" in capsys.readouterr().err
    assert cli.main(["whatif", "--registry", str(new_toml), "--db", str(logged), "--task", "nope"]) == 2
    assert capsys.readouterr().err == (
        f"taskrouter whatif: unknown task 'nope': neither the registry replayed ({new_toml}) nor the log's answered "
        "requests know it; known: fast, reasoning, summarization\n"
    )
    assert cli.main(["whatif", "--catalog", str(new_toml), "--db", str(logged)]) == 2
    assert f"--catalog {new_toml} also defines a registry: pass that file as --registry" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli.main(["whatif", "--registry", str(new_toml), "--days", "0"])
    assert exited.value.code == 2
    assert "--days: must be a whole number of days from 1 to 3650 (got '0')" in capsys.readouterr().err
    typo = tmp_path / "typo.db"
    assert cli.main(["whatif", "--registry", str(new_toml), "--db", str(typo)]) == 2
    assert "there is no attempts database at" in capsys.readouterr().err
    assert not typo.exists()


def test_an_empty_window_says_so(tmp_path: Path, new_toml: Path, capsys) -> None:
    path = tmp_path / "attempts.db"
    write_log(path, [_row("o1", "fast", SMALL, 1, "success", ago=timedelta(days=30), prompt=1, completion=1, cost=0.0)])
    assert cli.main(["whatif", "--registry", str(new_toml), "--db", str(path)]) == 0
    assert capsys.readouterr().out.endswith("no answered request in that window: nothing to replay\n")


def test_postgresql_gives_the_same_report(pg_url: str, tmp_path: Path, new_toml: Path, logged: Path, capsys) -> None:
    write_log(PostgresTarget(pg_url, tmp_path / "spill.db"))
    on_sqlite = run_json(capsys, "--registry", str(new_toml), "--db", str(logged))
    on_postgres = run_json(capsys, "--registry", str(new_toml), "--db", pg_url)
    assert on_postgres.pop("store") != on_sqlite.pop("store")
    on_postgres.pop("since"), on_sqlite.pop("since")
    assert _approx(on_postgres) == on_sqlite
    assert task(on_postgres, "reasoning")["other_calls_usd"] == pytest.approx(0.0009, abs=1e-12)


def _approx(value: Any) -> Any:
    """Floats compared to 1e-12 however deep: PostgreSQL adds the costs up in another order."""
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    return pytest.approx(value, abs=1e-12) if isinstance(value, float) else value

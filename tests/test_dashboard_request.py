"""The request drill-down: every attempt of one request in chain order, found by its id from the URL, by the
start of its id, or from the latest failed requests; and the Failures table links each row to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from stores import insert_attempts
from test_dashboard import BIG, QWEN, RETIRED, SMALL, _row, frame, read, run_page

from app.store.target import Target
from dashboard.views.request import picked_row


def test_a_request_from_the_url_shows_every_attempt_in_order(seeded: Target) -> None:
    at = run_page("Request", request="r6")
    assert at.text_input(key="request").value == "r6"
    rows = frame(at, "Position", "Retry")
    assert list(rows["Position"]) == [1, 2, 3, 4]
    assert list(rows["Model"]) == [RETIRED, BIG, QWEN, SMALL]
    assert list(rows["Outcome"]) == ["skipped", "failure", "failure", "failure"]
    assert list(rows["Error kind"]) == ["model retired", "provider error", "timed out", "timed out"]
    assert list(rows["Status"].fillna(0)) == [0, 503, 0, 0]
    assert list(rows["Latency (ms)"].fillna(-1)) == [-1, 60, 2000, 2000]
    assert list(rows["Message"])[1] == "server_error happened"
    for column in ("Tokens", "Cost ($)", "Override", "UTC", "Fallback list", "Hedged"):
        assert column in rows.columns
    assert any("No model answered this request" in e.value for e in at.error)
    summary = read(" ".join(c.value for c in at.caption))
    assert "Task reasoning · 4 rows, 3 calls · not answered" in summary


def test_an_answered_request_with_retries_and_an_override(seeded: Target) -> None:
    t = datetime.now(UTC) - timedelta(minutes=3)
    insert_attempts(
        seeded,
        [  # written out of order, as a hedge or a slow writer could
            {
                **_row("q1", "fast", SMALL, 2, "success", t + timedelta(seconds=2), latency=90, tokens=40, cost=0.002),
                "retry": 0,
                "override_source": "runtime default #3",
            },
            {
                **_row(
                    "q1",
                    "fast",
                    BIG,
                    1,
                    "failure",
                    t + timedelta(seconds=1),
                    kind="rate_limited",
                    status=429,
                    latency=20,
                ),
                "retry": 1,
                "override_source": "runtime default #3",
            },
            {
                **_row("q1", "fast", BIG, 1, "failure", t, kind="rate_limited", status=429, latency=30),
                "retry": 0,
                "override_source": "runtime default #3",
            },
        ],
    )
    at = run_page("Request", request="q1")
    rows = frame(at, "Position", "Retry")
    assert [(p, r, m) for p, r, m in zip(rows["Position"], rows["Retry"], rows["Model"], strict=True)] == [
        (1, 0, BIG),
        (1, 1, BIG),
        (2, 0, SMALL),
    ]
    assert list(rows["Tokens"].fillna(0)) == [0, 0, 40]
    assert set(rows["Override"]) == {"runtime default #3"}
    assert any("Answered" in s.value for s in at.success)
    assert "answered by openai/gpt-oss-20b at position 2" in read(" ".join(c.value for c in at.caption))


def test_the_start_of_an_id_lists_the_matching_requests(seeded: Target) -> None:
    at = run_page("Request", request="r")
    similar = frame(at, "Request", "Attempts")
    assert list(similar["Request"]) == [f"r{i}" for i in range(1, 7)]
    assert list(similar["Attempts"]) == [f"?page=Request&request=r{i}" for i in range(1, 7)]
    assert "6 start with it" in at.info[0].value
    at.text_input(key="request").set_value("nothing-like-it").run()
    assert any("No request with the id" in w.value for w in at.warning)


def test_without_an_id_the_latest_failed_requests_are_offered(seeded: Target) -> None:
    at = run_page("Request")
    recent = frame(at, "Last failure (UTC)")
    assert list(recent["Request"]) == ["r6", "r5", "r4"]
    assert list(recent["Attempts"]) == [
        "?page=Request&request=r6",
        "?page=Request&request=r5",
        "?page=Request&request=r4",
    ]
    assert list(recent["Error kind"]) == ["timed out", "model retired", "rate limited"]  # words, as on every page
    at.text_input(key="request").set_value("r4").run()
    assert list(frame(at, "Position", "Retry")["Model"]) == [BIG, QWEN]


def test_a_clicked_cell_picks_its_row() -> None:
    def clicked(*cells: tuple[int, str]) -> object:
        return SimpleNamespace(selection=SimpleNamespace(cells=list(cells)))

    assert picked_row(clicked((2, "Model")), 3) == 2
    assert picked_row(clicked(), 3) is None
    assert picked_row(clicked((5, "Model")), 3) is None  # a stale selection from a longer table
    assert picked_row(None, 3) is None


def test_an_odd_request_id_is_linked_encoded(seeded: Target) -> None:
    t = datetime.now(UTC) - timedelta(minutes=2)
    insert_attempts(seeded, [_row("a b&c=d/é", "fast", SMALL, 1, "failure", t, kind="timeout", latency=9)])
    failures = frame(run_page("Failures"), "Message")
    assert failures["Request"][0] == "a b&c=d/é"
    assert failures["Attempts"][0] == "?page=Request&request=a%20b%26c%3Dd%2F%C3%A9"
    assert list(frame(run_page("Request", request="a b&c=d/é"), "Position", "Retry")["Model"]) == [SMALL]

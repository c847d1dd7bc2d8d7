"""The dashboard's admin actions (dashboard/admin.py): only for a person signed in to this session (a named operator
with its own secret, an OIDC login naming an operator, or DASHBOARD_ADMIN_TOKEN as "admin-token"); each action
acts on exactly what was chosen, asks for a reason and a confirmation, records the person in `who` and the OS
account in `via`, and the page shows the new state at once. Without a token or an operator the dashboard writes
nothing and shows the CLI commands. A captured frame replayed from another session, or again, does nothing."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator

import pytest
from stores import digest
from streamlit.testing.v1 import AppTest
from test_dashboard import APP, BIG, QWEN, SMALL, run_page, texts

from app.store import open_database
from app.store.operators import create_operator, revoke_operator
from app.store.overrides import DISABLE, FORCE, read_active, read_audit, set_override
from app.store.target import Target
from dashboard import admin
from dashboard.admin import IDENTITY, NONCE, SignedIn, oidc_email, still_valid
from dashboard.throttle import FREE_FAILURES, LOCAL_CLIENT, SIGN_INS

TOKEN = "s3cret-admin-token-for-tests-0123456789"


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Iterator[None]:
    """The throttle is the dashboard process's (one per process): each test starts and ends with a clean slate."""
    SIGN_INS.succeeded(LOCAL_CLIENT)
    yield
    SIGN_INS.succeeded(LOCAL_CLIENT)


def shown(markdown: str) -> str:
    """Markdown made of escaped values (fmt.plain), as it reads on the page."""
    return re.sub(r"\\(.)", r"\1", markdown, flags=re.DOTALL).replace("\u2060", "")


def make_operator(store: Target, name: str) -> str:
    db = open_database(store)
    try:
        return create_operator(db.conn, name, by="ops@host")
    finally:
        db.conn.close()


@pytest.fixture
def alice(seeded: Target) -> str:
    """An operator named alice; its secret."""
    return make_operator(seeded, "alice")


def key(at: AppTest, name: str) -> str:
    """The key of an admin widget in this session: it ends with the session's current nonce."""
    return f"admin_{name}_{at.session_state[NONCE]}"


def admin_buttons(at: AppTest) -> list[str]:
    return [b.key for b in at.button if (b.key or "").startswith("admin_") and "sign_in" not in b.key]


def sign_in(at: AppTest, name: str, secret: str) -> AppTest:
    at.text_input(key=key(at, "sign_in_name")).input(name)
    at.text_input(key=key(at, "sign_in_secret")).input(secret)
    at.button(key=key(at, "sign_in_go")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def act(at: AppTest, form: str, *, reason: str = "provider incident", confirm: bool = True, **choices: str) -> AppTest:
    for name, value in choices.items():
        at.selectbox(key=key(at, f"{form}_{name}")).select(value)
    at.text_input(key=key(at, f"{form}_reason")).input(reason)
    at.checkbox(key=key(at, f"{form}_confirm")).set_value(confirm)
    at.button(key=key(at, f"{form}_go")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def audit_rows(store: Target) -> list[tuple[str, str, str | None, str, str]]:
    """(action, target, task, who, reason) of the dashboard's audit rows, oldest first."""
    return [
        (a["action"], a["target"], a["task"], a["who"], a["reason"])
        for a in reversed(read_audit(store))
        if (a["via"] or "").startswith("dashboard")
    ]


def test_without_a_token_or_an_operator_the_dashboard_only_reads_and_shows_the_cli(seeded: Target) -> None:
    before = digest(seeded)
    at = run_page("Tasks")
    assert "taskrouter operators create NAME" in [c.value for c in at.code][-1]
    assert not [t for t in at.text_input if (t.key or "").startswith("admin_")]
    assert not [b for b in at.button if (b.key or "").startswith("admin_")]
    assert digest(seeded) == before


def test_a_wrong_secret_changes_nothing_and_no_secret_is_shown(seeded: Target, alice: str) -> None:
    at = sign_in(run_page("Tasks"), "alice", "")
    assert "Enter the secret" in at.warning[-1].value
    assert SIGN_INS.failures(LOCAL_CLIENT, time.monotonic()) == 0  # an empty form is not a guess
    sign_in(at, "alice", "guess")
    assert "Wrong name or secret" in at.error[-1].value
    assert IDENTITY not in at.session_state
    assert admin_buttons(at) == []
    assert alice not in texts(at) and "guess" not in texts(at)
    assert read_active(seeded) == [] and audit_rows(seeded) == []


def test_an_operator_forces_a_model_with_a_reason_and_the_audit_names_them(seeded: Target, alice: str) -> None:
    at = sign_in(run_page("Tasks"), "alice", alice)
    assert at.session_state[IDENTITY] == SignedIn("alice", "operator", LOCAL_CLIENT)
    assert "Signed in as **alice** (operator)" in shown(texts(at))
    # The secret is not kept in any widget once submitted.
    assert alice not in [str(at.session_state[k]) for k in at.session_state.keys()]  # noqa: SIM118

    act(at, "force", reason=" ", model=BIG)
    assert "Say why" in at.warning[-1].value
    act(at, "force", confirm=False, model=BIG)
    assert "Tick the confirmation first" in at.warning[-1].value
    assert read_active(seeded) == []

    act(at, "force", model=BIG)
    [made] = read_active(seeded)
    assert (made.kind, made.model, made.task, made.reason, made.set_by) == (
        FORCE,
        BIG,
        None,
        "provider incident",
        "alice",
    )
    assert made.expires_at is not None  # 30 minutes by default
    [row] = read_audit(seeded)[:1]
    assert (row["action"], row["who"], row["reason"]) == ("force set", "alice", "provider incident")
    assert row["via"].startswith("dashboard as ") and row["via"] != "dashboard as alice"
    # The page is drawn again after the write: the new override is there to end, with what was done said.
    assert shown(at.success[-1].value).startswith(f"Override #{made.id}")
    assert at.selectbox(key=key(at, "end_which")).options == [
        f"#{made.id} force {BIG} for every task, until {made.expires_at}"
    ]
    # A new form: the reason and the confirmation are blank again.
    assert at.text_input(key=key(at, "force_reason")).value == ""
    assert at.checkbox(key=key(at, "force_confirm")).value is False


def test_ending_one_of_two_overrides_on_one_model_ends_that_one_only(seeded: Target, alice: str) -> None:
    db = open_database(seeded)
    try:
        fast = set_override(db.conn, FORCE, BIG, task="fast", by="ops@host")
        reasoning = set_override(db.conn, FORCE, BIG, task="reasoning", by="ops@host")
    finally:
        db.conn.close()
    at = sign_in(run_page("Tasks"), "alice", alice)
    act(at, "end", reason="fast recovered", which=f"#{fast.id} force {BIG} for fast")
    assert [o.id for o in read_active(seeded)] == [reasoning.id]
    assert audit_rows(seeded) == [("force cleared", BIG, "fast", "alice", "fast recovered")]
    assert shown(at.success[-1].value).startswith(f"Ended override #{fast.id}")
    assert at.selectbox(key=key(at, "end_which")).options == [f"#{reasoning.id} force {BIG} for reasoning"]


def test_a_model_is_disabled_then_enabled_by_its_override(seeded: Target, alice: str) -> None:
    at = sign_in(run_page("Tasks"), "alice", alice)
    act(at, "disable", reason="bad answers", model=SMALL)
    [off] = read_active(seeded)
    assert (off.kind, off.model, off.reason) == (DISABLE, SMALL, "bad answers")
    act(at, "enable", reason="fixed upstream", which=f"#{off.id} disable {SMALL}")
    assert read_active(seeded) == []
    assert audit_rows(seeded) == [
        ("disable set", SMALL, None, "alice", "bad answers"),
        ("disable cleared", SMALL, None, "alice", "fixed upstream"),
    ]
    assert not [b for b in at.button if (b.key or "").startswith("admin_enable_go")]  # nothing left to enable


def test_lifting_a_mark_needs_a_reason_and_records_it(seeded: Target, alice: str) -> None:
    at = sign_in(run_page("Tasks"), "alice", alice)
    act(at, "mark", reason="", model=QWEN)
    assert "Say why" in at.warning[-1].value
    act(at, "mark", reason="provider says fixed", model=QWEN)
    assert audit_rows(seeded)[-1][:2] == ("mark cleared", QWEN)
    assert audit_rows(seeded)[-1][3:] == ("alice", "provider says fixed")


def test_the_admin_token_still_signs_in_as_admin_token(seeded: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_ADMIN_TOKEN", TOKEN)
    at = run_page("Tasks")
    sign_in(at, "", TOKEN[:-1])
    assert IDENTITY not in at.session_state
    sign_in(at, "", TOKEN)
    assert at.session_state[IDENTITY] == SignedIn("admin-token", "token", LOCAL_CLIENT)
    act(at, "force", model=BIG)
    assert audit_rows(seeded) == [("force set", BIG, None, "admin-token", "provider incident")]
    assert TOKEN not in texts(at)


def test_a_revoked_operator_can_no_longer_act(seeded: Target, alice: str) -> None:
    make_operator(seeded, "bob")  # another operator: the dashboard still takes sign-ins
    at = sign_in(run_page("Tasks"), "alice", alice)
    assert admin_buttons(at)
    db = open_database(seeded)
    try:
        assert revoke_operator(db.conn, "alice", by="ops@host")
    finally:
        db.conn.close()
    at.run()
    assert admin_buttons(at) == []
    assert IDENTITY not in at.session_state
    assert at.text_input(key=key(at, "sign_in_secret")).value == ""


def test_a_captured_frame_replayed_from_a_new_session_or_again_does_nothing(seeded: Target, alice: str) -> None:
    """What the browser sends is the widget states of the run (AppTest's own serialisation of them); a replay
    hands that same message to a session's next run, as a captured websocket frame would be."""
    first = run_page("Tasks")
    first.text_input(key=key(first, "sign_in_name")).input("alice")
    first.text_input(key=key(first, "sign_in_secret")).input(alice)
    first.button(key=key(first, "sign_in_go")).click()
    sign_in_frame = first.main.root.get_widget_states()
    first.run()
    assert first.session_state[IDENTITY] == SignedIn("alice", "operator", LOCAL_CLIENT)
    first.selectbox(key=key(first, "force_model")).select(BIG)
    first.text_input(key=key(first, "force_reason")).input("incident")
    first.checkbox(key=key(first, "force_confirm")).check()
    first.button(key=key(first, "force_go")).click()
    action_frame = first.main.root.get_widget_states()
    first.run()
    assert len(audit_rows(seeded)) == 1

    first._run(widget_state=action_frame)  # again, in the session that sent it
    assert not first.exception
    assert len(audit_rows(seeded)) == 1

    second = run_page("Tasks")
    second._run(widget_state=sign_in_frame)  # the sign-in, with the secret in it, from another session
    assert IDENTITY not in second.session_state
    second._run(widget_state=action_frame)
    assert not second.exception
    assert admin_buttons(second) == []
    # Even signed in on its own, the other session does not take the first one's frame.
    sign_in(second, "alice", alice)
    second._run(widget_state=action_frame)
    assert not second.exception
    assert len(audit_rows(seeded)) == 1
    assert [o.reason for o in read_active(seeded)] == ["incident"]


def test_wrong_secrets_are_throttled_per_client_and_logged_without_the_text(
    seeded: Target, alice: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin, "CLOCK", lambda: 1000.0)  # every attempt at one instant: no wait runs out meanwhile
    caplog.set_level(logging.WARNING, logger="taskrouter.dashboard.sign_in")
    at = run_page("Tasks")
    for attempt in range(FREE_FAILURES):
        sign_in(at, "alice", f"wrong-{attempt}")
        assert at.error[-1].value == "Wrong name or secret: nothing can be changed from here."
    sign_in(at, "alice", "wrong-again")
    assert "Next attempt in 1 s" in at.error[-1].value
    sign_in(at, "alice", alice)  # the right secret waits like a wrong one
    assert "Too many wrong sign-ins from this machine: try again in 1 s" in shown(at.error[-1].value)
    assert IDENTITY not in at.session_state
    failures = [m for m in caplog.messages if "sign-in failed from this machine" in m]
    assert len(failures) == FREE_FAILURES + 1
    assert not [m for m in caplog.messages if "wrong-" in m or alice in m]


def test_an_oidc_login_naming_an_operator_acts_under_that_name_without_a_secret(seeded: Target) -> None:
    make_operator(seeded, "alice@example.com")
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params["page"] = "Tasks"
    at.user = {"is_logged_in": True, "email": "Alice@Example.com", "name": "Alice"}
    at.run()
    assert "Signed in as **alice@example.com** (identity provider login)" in shown(texts(at))
    act(at, "force", model=BIG)
    assert audit_rows(seeded) == [("force set", BIG, None, "alice@example.com", "provider incident")]

    other = AppTest.from_file(str(APP), default_timeout=30)
    other.query_params["page"] = "Tasks"
    other.user = {"is_logged_in": True, "email": "mallory@example.com"}
    other.run()
    assert "mallory@example.com, who is not an operator here" in shown(texts(other))
    assert admin_buttons(other) == []

    logged_out = AppTest.from_file(str(APP), default_timeout=30)
    logged_out.query_params["page"] = "Tasks"
    logged_out.user = {"is_logged_in": False}  # what Streamlit says when its login is configured
    logged_out.run()
    assert admin_buttons(logged_out) == [key(logged_out, "oidc_login")]
    assert at.button(key=key(at, "sign_out")).label == "Sign out"


def test_only_a_login_streamlit_vouches_for_counts() -> None:
    assert oidc_email({"email": "test@example.com"}) is None  # Streamlit's placeholder without an [auth] section
    assert oidc_email({"is_logged_in": False, "email": "a@b.c"}) is None
    assert oidc_email({"is_logged_in": True}) is None
    assert oidc_email({"is_logged_in": True, "email": " A@B.c "}) == "a@b.c"


def test_a_sign_in_holds_only_from_the_address_it_was_made_from(seeded: Target, alice: str) -> None:
    person = SignedIn("alice", "operator", "10.0.0.1")
    assert still_valid(seeded, None, person, "10.0.0.1") is True
    assert still_valid(seeded, None, person, "10.0.0.2") is False  # a websocket resuming the session from elsewhere
    assert still_valid(seeded, None, SignedIn("bob", "operator", "10.0.0.1"), "10.0.0.1") is False  # no such operator
    assert still_valid(seeded, None, SignedIn("admin-token", "token", "10.0.0.1"), "10.0.0.1") is False  # no token

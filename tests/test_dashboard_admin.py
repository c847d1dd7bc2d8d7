"""The dashboard's admin actions: only with DASHBOARD_ADMIN_TOKEN entered, each behind a confirmation, written
with its audit row; without the token the dashboard writes nothing and shows the CLI commands."""

from __future__ import annotations

import pytest
from stores import digest
from streamlit.testing.v1 import AppTest
from test_dashboard import BIG, SMALL, run_page, texts

from app.store.overrides import read_active, read_audit
from app.store.target import Target

TOKEN = "s3cret-admin-token-for-tests"


def test_without_the_setting_the_dashboard_only_reads_and_shows_the_cli(seeded: Target) -> None:
    before = digest(seeded)
    at = run_page("Tasks")
    assert "taskrouter override force MODEL" in [c.value for c in at.code][-1]
    assert not [t for t in at.text_input if t.key == "admin_token"]
    assert not [b for b in at.button if (b.key or "").startswith("admin_")]
    assert digest(seeded) == before


def _unlock(at: AppTest, token: str) -> AppTest:
    at.text_input(key="admin_token").input(token).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_wrong_token_changes_nothing_and_the_token_is_never_shown(
    seeded: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD_ADMIN_TOKEN", TOKEN)
    at = _unlock(run_page("Tasks"), "guess")
    assert "Wrong token" in at.error[-1].value
    assert not [b for b in at.button if (b.key or "").startswith("admin_")]
    assert TOKEN not in texts(at)
    assert read_active(seeded) == [] and read_audit(seeded) == []


def test_with_the_token_an_operator_forces_a_model_after_confirming_and_it_is_audited(
    seeded: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD_ADMIN_TOKEN", TOKEN)
    at = _unlock(run_page("Tasks"), TOKEN)
    at.selectbox(key="admin_force_model").select(BIG)
    at.text_input(key="admin_force_reason").input("provider incident")
    at.button(key="admin_force_go").click().run()  # not confirmed yet
    assert "Tick the confirmation first" in at.warning[-1].value
    assert read_active(seeded) == []

    at.checkbox(key="admin_force_confirm").check()
    at.button(key="admin_force_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    active = read_active(seeded)
    assert [(o.kind, o.model, o.task, o.reason) for o in active] == [("force", BIG, None, "provider incident")]
    assert active[0].expires_at is not None  # 30 minutes by default
    audit = read_audit(seeded)
    assert [(a["action"], a["target"], a["via"]) for a in audit] == [("force set", BIG, "dashboard")]
    assert audit[0]["who"].startswith("dashboard (")
    assert TOKEN not in texts(at)


def test_with_the_token_a_model_is_disabled_then_enabled(seeded: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_ADMIN_TOKEN", TOKEN)
    at = _unlock(run_page("Tasks"), TOKEN)
    at.selectbox(key="admin_disable_model").select(SMALL)
    at.checkbox(key="admin_disable_confirm").check()
    at.button(key="admin_disable_go").click().run()
    assert [(o.kind, o.model) for o in read_active(seeded)] == [("disable", SMALL)]
    at.checkbox(key="admin_disable_confirm").check()
    at.button(key="admin_enable_go").click().run()
    assert read_active(seeded) == []
    assert [a["action"] for a in reversed(read_audit(seeded))] == ["disable set", "disable cleared"]

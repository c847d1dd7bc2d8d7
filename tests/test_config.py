from __future__ import annotations

import pytest

from app.config import load_settings, task_env_name
from app.errors import ConfigError


def test_defaults():
    s = load_settings(env_file=None)
    assert (s.llm_timeout_seconds, s.llm_max_attempts, s.log_content, s.force_model) == (30.0, 6, False, None)
    assert (s.llm_request_deadline_seconds, s.hedge_after_ms, s.breaker_open_after_timeouts) == (30.0, None, 1)
    assert s.groq_base_url == "https://api.groq.com"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("LLM_TIMEOUT_SECONDS", "0"),
        ("LLM_TIMEOUT_SECONDS", "soon"),
        ("LLM_MAX_ATTEMPTS", "0"),
        ("LOG_CONTENT", "maybe"),
        ("GROQ_BASE_URL", "api.groq.com"),
        ("BUDGET_ALERT_RATIO", "2"),
        ("LLM_REQUEST_DEADLINE_SECONDS", "-1"),
        ("HEDGE_AFTER_MS", "soon"),
        ("BREAKER_FAILURE_RATE", "1.5"),
        ("BREAKER_MIN_CALLS", "60"),
    ],
)
def test_a_bad_value_names_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    assert var in str(caught.value) and repr(value) in str(caught.value)


def test_a_password_in_the_base_url_is_refused_without_being_shown(monkeypatch):
    """Sent as Basic auth in place of the key and shown wherever the URL is: refused, and the error hides it."""
    monkeypatch.setenv("GROQ_BASE_URL", "https://proxy-user:hunter2-secret@proxy.internal:8443")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    message = str(caught.value)
    assert "GROQ_BASE_URL" in message and "must not hold a user or password" in message
    assert "hunter2-secret" not in message and "https://proxy-user:***@proxy.internal:8443" in message
    monkeypatch.setenv("GROQ_BASE_URL", "http://127.0.0.1:8000/path@segment")  # an @ in the path is no password
    assert load_settings(env_file=None).groq_base_url == "http://127.0.0.1:8000/path@segment"


def test_key_is_hidden_everywhere(monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk_secret_value_123456")
    s = load_settings(env_file=None)
    assert s.api_key() == "gsk_secret_value_123456"
    assert "gsk_secret" not in repr(s) and "gsk_secret" not in str(s.model_dump())


def test_default_task_models_from_env_and_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("DEFAULT_FAST_MODEL=a/one\nDEFAULT_WRITER_LANDING_MODEL=b/two\n")
    monkeypatch.setenv("DEFAULT_FAST_MODEL", "c/env-wins")
    s = load_settings(env_file=tmp_path / ".env")
    assert s.default_model_for("fast") == "c/env-wins"
    assert s.default_model_for("writer:landing") == "b/two"
    assert task_env_name("code-review") == "DEFAULT_CODE_REVIEW_MODEL"


def test_blank_force_model_is_unset(monkeypatch):
    monkeypatch.setenv("FORCE_MODEL", "  ")
    assert load_settings(env_file=None).force_model is None


def test_every_setting_is_documented_in_env_example_and_the_docs():
    from pathlib import Path

    from docs_site import built, generator, source

    from app.config import Settings

    root = Path(__file__).resolve().parents[1]
    example = (root / ".env.example").read_text(encoding="utf-8")
    names = [name.upper() for name in Settings.model_fields if name != "default_models"]
    assert [n for n in names if f"\n{n}=" not in example] == []
    assert source("settings.md").count("<!-- generated: settings -->") == 1
    reference = built("settings.md")
    assert [n for n in [*names, "DEFAULT_<TASK>_MODEL"] if f"`{n}`" not in reference] == []
    assert [row.variable for row in generator().setting_rows() if not row.meaning] == []  # each one explained
    assert "| `LLM_MAX_ATTEMPTS` | `6` | integer ≥ 1, ≤ 100 | Most provider calls one request may make" in reference


def test_the_retention_setting_allows_what_the_store_prunes_to():
    from app.config import Settings
    from app.store.retention import MAX_RETENTION_DAYS

    bound = [m.le for m in Settings.model_fields["attempts_retention_days"].metadata if hasattr(m, "le")]
    assert bound == [MAX_RETENTION_DAYS]

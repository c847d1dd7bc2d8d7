"""Settings, read from the environment and `.env` (every one is documented in `.env.example`)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import ConfigError
from app.urls import POSTGRES_SCHEMES, redact_url

_DEFAULT_MODEL_VAR = re.compile(r"^DEFAULT_(?P<task>[A-Z0-9_]+)_MODEL$")
# A bad value of these is named, never shown.
_SECRET_SETTINGS = frozenset({"GROQ_API_KEY", "ALERT_WEBHOOK_URL", "ATTEMPTS_DB_URL", "DASHBOARD_ADMIN_TOKEN"})


def task_env_name(task_type: str) -> str:
    """`writer:landing` -> `DEFAULT_WRITER_LANDING_MODEL`: env var names cannot hold `:` or `-`."""
    return "DEFAULT_" + re.sub(r"[^A-Za-z0-9]+", "_", task_type).strip("_").upper() + "_MODEL"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False, frozen=True
    )

    groq_api_key: SecretStr | None = None
    groq_base_url: str = "https://api.groq.com"
    force_model: str | None = None
    llm_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    # The whole call (every attempt, retry, backoff and wait) ends within this; `timeout=` on a call overrides it.
    llm_request_deadline_seconds: float = Field(30.0, gt=0, le=3600)
    # Streams: a model that shows no text (or tool call) within the first is left for the next one; once text
    # has been shown, a gap longer than the second between chunks ends the stream (StreamInterruptedError).
    llm_first_token_timeout_seconds: float = Field(15.0, gt=0, le=3600)
    llm_stream_idle_timeout_seconds: float = Field(10.0, gt=0, le=3600)
    # The Groq SDK's HTTP client: aiohttp (its `groq[aiohttp]` extra; more requests per second than httpx, for less
    # CPU per call, once many calls run at once: bench/RESULTS.md) or httpx (the SDK's default).
    http_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    llm_max_attempts: int = Field(6, ge=1, le=100)
    # Retries of transient failures: exponential backoff with full jitter, uniform(0, min(max, base * 2**n)).
    retry_backoff_base_seconds: float = Field(0.05, ge=0, le=60)
    retry_backoff_max_seconds: float = Field(2.0, ge=0, le=600)
    # Hedged requests: start the next model when an attempt has not answered within this many ms. None: off.
    hedge_after_ms: float | None = Field(None, gt=0, le=3_600_000)
    attempts_db_path: Path = Path("taskrouter.db")
    # PostgreSQL instead of the SQLite file, for routers on several hosts (docs/deployment/postgresql.md). A secret:
    # it may hold a password. ATTEMPTS_DB_PATH then only names where rows the server cannot take wait
    # (<path>.unwritten.jsonl).
    attempts_db_url: SecretStr | None = None
    log_content: bool = False
    attempt_logging: bool = True
    # At exit, how long the attempt log may take to write what is pending before it spills the rest to the
    # .unwritten.jsonl file beside the database: longer than SQLite's 10 s busy timeout, so a lock held a little
    # longer at exit delays rows instead of losing them.
    attempt_log_exit_seconds: float = Field(30.0, gt=0, le=3600)
    # Raw attempt rows are kept this many days, then deleted once rolled up into the hourly and daily totals the
    # dashboard reads for longer ranges (kept for ever; app/store/retention.py). 30: a month of requests to drill
    # into and of failures to list. 0: raw rows are kept for ever (still rolled up).
    attempts_retention_days: int = Field(30, ge=0, le=36_500)  # retention.MAX_RETENTION_DAYS

    # How long a failing model is left alone. Decommissioned models are skipped for good.
    not_found_ttl_seconds: float = Field(3600.0, ge=0)
    rate_limit_default_cooldown_seconds: float = Field(10.0, ge=0)
    max_rate_limit_cooldown_seconds: float = Field(3600.0, ge=0)
    capacity_cooldown_seconds: float = Field(5.0, ge=0)
    # The circuit breaker per model: opens on BREAKER_FAILURE_RATE of the last BREAKER_WINDOW_CALLS calls (once
    # BREAKER_MIN_CALLS are in), on BREAKER_OPEN_AFTER_TIMEOUTS requests in a row whose call timed out, or on
    # BREAKER_OPEN_AFTER_CONNECTION_ERRORS whose connection was refused, reset or dropped (a transient alone: a
    # run means the server is gone); stays open BREAKER_COOLDOWN_SECONDS, doubled at each failed probe up to the max.
    breaker_window_calls: int = Field(50, ge=1, le=10_000)
    breaker_min_calls: int = Field(20, ge=1, le=10_000)
    breaker_failure_rate: float = Field(0.5, gt=0, le=1)
    breaker_open_after_timeouts: int = Field(1, ge=1, le=1000)
    breaker_open_after_connection_errors: int = Field(10, ge=1, le=1000)
    breaker_cooldown_seconds: float = Field(30.0, ge=0)
    breaker_max_cooldown_seconds: float = Field(600.0, ge=0)
    # Other processes sharing the database see each other's model_status within this many seconds.
    model_status_refresh_seconds: float = Field(2.0, ge=0)

    # Deprecation radar: extra calendar entries, skipping calendar-retired models, how early to warn.
    deprecations_file: Path | None = None
    skip_retired_models: bool = True
    retirement_warning_days: int = Field(30, ge=0)

    # Cost and budgets: a catalog file overriding/adding model entries, the UTC-day budget and its alert level.
    model_catalog_file: Path | None = None
    daily_budget_usd: float | None = Field(None, gt=0)
    budget_alert_ratio: float = Field(0.8, gt=0, le=1)

    # Spending less (docs/spending.md): which tasks choose a tier by the request's complexity
    # when a call names none ("" off, "all", or a comma list of tasks), and the scores where medium and complex start.
    complexity_routing: str = ""
    complexity_medium_at: float = Field(0.30, ge=0, le=1)
    complexity_complex_at: float = Field(0.60, ge=0, le=1)
    # How many agent conversations (session_id=) remember the highest tier they reached, in this process.
    session_tiers_kept: int = Field(10_000, ge=0, le=10_000_000)
    # The cascade's learning: a model whose answers on a tier were refused more often than the ratio over its last
    # window of answers starts that tier's requests one tier up.
    cascade_learn: bool = False
    cascade_learn_window: int = Field(50, ge=5, le=100_000)
    cascade_learn_refused_ratio: float = Field(0.3, gt=0, le=1)
    # The response cache: which tasks' answers are kept ("" none, "all", or a comma list), for how long, which of
    # them may be cached with temperature > 0, and how many entries the store and each process keep.
    response_cache_tasks: str = ""
    response_cache_ttl_seconds: float = Field(3600.0, ge=0, le=365 * 86_400)
    response_cache_any_temperature_tasks: str = ""
    response_cache_max_entries: int = Field(10_000, ge=1, le=100_000_000)
    response_cache_memory_entries: int = Field(1_000, ge=0, le=10_000_000)

    # Monitoring (docs/operations/monitoring.md): Prometheus' /metrics served by the router's process on
    # METRICS_HOST:METRICS_PORT (0: no server), or the metrics added to prometheus_client's default registry for an
    # application that serves it; OpenTelemetry spans and metrics when the application configured its providers.
    metrics_port: int = Field(0, ge=0, le=65_535)
    metrics_host: str = "127.0.0.1"
    prometheus_metrics: bool = False
    opentelemetry: Literal["auto", "off"] = "auto"

    # Alerts (app/core/alerts.py): where to post them (Slack-compatible JSON; unset = none; a secret, as a Slack
    # webhook's path is), and how long a circuit stays open before that is worth a post.
    alert_webhook_url: SecretStr | None = None
    alert_circuit_open_seconds: float = Field(300.0, ge=0)
    # The dashboard's admin actions for whoever enters it (as "admin-token"); named operators need none.
    dashboard_admin_token: SecretStr | None = None
    # The names the dashboard answers to besides localhost, 127.0.0.1, ::1 and its bind address (comma list): a
    # request for any other Host or from any other Origin is refused, so a web page cannot reach it by DNS rebinding.
    dashboard_allowed_hosts: str = ""

    # Filled from DEFAULT_<TASK>_MODEL variables by `load_settings`; keys are env-style task names.
    default_models: dict[str, str] = Field(default_factory=dict)

    @field_validator(
        "force_model",
        "deprecations_file",
        "model_catalog_file",
        "daily_budget_usd",
        "hedge_after_ms",
        "alert_webhook_url",
        "dashboard_admin_token",
        "attempts_db_url",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("complexity_routing", "response_cache_tasks", "response_cache_any_temperature_tasks")
    @classmethod
    def _task_list(cls, value: str) -> str:
        tasks = [t.strip() for t in value.split(",") if t.strip()]
        if "all" in tasks and len(tasks) > 1:
            raise ValueError(f"is either 'all' or a comma list of tasks, not both: got {value!r}")
        return ",".join(tasks)

    def telemetry_wanted(self) -> bool:
        """Whether monitoring may be on: a Prometheus setting, or OPENTELEMETRY=auto in a process that imported
        OpenTelemetry. Read before app/telemetry is imported, so that a router without it imports nothing."""
        return bool(
            self.metrics_port
            or self.prometheus_metrics
            or (self.opentelemetry == "auto" and "opentelemetry" in sys.modules)
        )

    def tasks_in(self, setting: str, task_type: str) -> bool:
        """Whether a task-list setting (COMPLEXITY_ROUTING, RESPONSE_CACHE_TASKS...) names `task_type` (or is all)."""
        value: str = getattr(self, setting)
        return bool(value) and (value == "all" or task_type in value.split(","))

    @field_validator("dashboard_allowed_hosts")
    @classmethod
    def _host_names(cls, value: str) -> str:
        names = [_host_name(item) for item in value.split(",") if item.strip()]
        return ",".join(dict.fromkeys(names))

    @field_validator("groq_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if "@" in value.split("://", 1)[1].split("/", 1)[0]:
            # The HTTP client would send them as Basic auth in place of GROQ_API_KEY, and the URL is shown in logs
            # and by `taskrouter check`.
            raise ValueError(
                "must not hold a user or password (user:password@host); give a proxy its credentials in HTTPS_PROXY"
            )
        return value.rstrip("/")

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("attempts_db_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(POSTGRES_SCHEMES):
            raise ValueError(
                "must be a PostgreSQL URL: postgresql://user:password@host:5432/database "
                "(leave it unset to use the SQLite file at ATTEMPTS_DB_PATH)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.breaker_min_calls > self.breaker_window_calls:
            raise ValueError(
                f"BREAKER_MIN_CALLS ({self.breaker_min_calls}) cannot exceed BREAKER_WINDOW_CALLS "
                f"({self.breaker_window_calls}): the window never holds that many calls"
            )
        if self.retry_backoff_max_seconds < self.retry_backoff_base_seconds:
            raise ValueError("RETRY_BACKOFF_MAX_SECONDS must be at least RETRY_BACKOFF_BASE_SECONDS")
        if self.breaker_max_cooldown_seconds < self.breaker_cooldown_seconds:
            raise ValueError("BREAKER_MAX_COOLDOWN_SECONDS must be at least BREAKER_COOLDOWN_SECONDS")
        return self

    def api_key(self) -> str | None:
        return self.groq_api_key.get_secret_value() if self.groq_api_key else None

    def default_model_for(self, task_type: str) -> str | None:
        return self.default_models.get(task_env_name(task_type))


def _host_name(item: str) -> str:
    """One name of DASHBOARD_ALLOWED_HOSTS, as a Host header carries it (lower case, no brackets, no final dot)."""
    name = item.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(name))
    if not re.fullmatch(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*", name):
        raise ValueError(
            f"is a comma list of host names or IP addresses, without scheme, port, path or wildcard "
            f"(dash.example.com,10.0.0.5); {item.strip()!r} is not one"
        )
    return name


def _default_model_vars(env_file: str | os.PathLike[str] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    sources: list[dict[str, str | None]] = []
    if env_file and Path(env_file).is_file():
        sources.append(dict(dotenv_values(env_file)))
    sources.append(dict(os.environ))  # the environment wins over .env, as pydantic-settings does
    for source in sources:
        for name, value in source.items():
            upper = name.upper()
            if _DEFAULT_MODEL_VAR.match(upper):
                if value and value.strip():
                    found[upper] = value.strip()
                else:
                    found.pop(upper, None)
    return found


def load_settings(env_file: str | os.PathLike[str] | None = ".env", **overrides: Any) -> Settings:
    """Read the settings; a bad value raises ConfigError naming the variable and what it must be."""
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "_".join(str(p) for p in err["loc"]).upper() or "settings"
            got = err.get("input")
            if isinstance(got, str) and "://" in got:
                got = redact_url(got)  # a password in a URL (GROQ_BASE_URL) is not shown
            shown = "" if name in _SECRET_SETTINGS else f" (got {got!r})"
            problems.append(f"{name}: {err['msg']}{shown}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
    if "default_models" not in overrides:
        settings = settings.model_copy(update={"default_models": _default_model_vars(env_file)})
    return settings

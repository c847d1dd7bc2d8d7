"""METRICS_PORT and PROMETHEUS_METRICS as an application meets them: /metrics served by the router's process, the
metrics in prometheus_client's default registry, and a clear error for a port that cannot be had. Each in a child
process: the server's thread and the default registry are the process's."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # child interpreters


def _run(script: str, tmp_path: Path, **env: str) -> dict:
    child_env = {
        "PATH": "/usr/bin:/bin",
        "GROQ_API_KEY": "gsk_metrics_test_key",
        "ATTEMPTS_DB_PATH": str(tmp_path / "attempts.db"),
        "OPENTELEMETRY": "off",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_CALLS = """
    import asyncio, json, sys
    import httpx
    from app.testing import fake_models
    from app.core.ai_models import MODEL_REGISTRY, execute_task

    first = MODEL_REGISTRY["fast"][0]

    async def calls():
        with fake_models({"*": "ok"}, metrics_port=PORT, prometheus_metrics=PROMETHEUS, opentelemetry="off"):
            await execute_task("fast", [{"role": "user", "content": "hi"}])
            await execute_task("fast", [{"role": "user", "content": "again"}])
"""


def test_metrics_port_serves_the_counts_on_slash_metrics(tmp_path):
    port = _free_port()
    script = (
        _CALLS.replace("PORT", str(port)).replace("PROMETHEUS", "False")
        + """
    asyncio.run(calls())
    body = httpx.get(f"http://127.0.0.1:{PORT}/metrics", timeout=10).text
    lines = [l for l in body.splitlines() if l.startswith("taskrouter_requests_total{")]
    print(json.dumps({"lines": lines, "key": "gsk_metrics_test_key" in body, "first": first}))
    """.replace("PORT", str(port))
    )
    seen = _run(script, tmp_path)
    assert seen["lines"] == ['taskrouter_requests_total{taskrouter_ending="answered",taskrouter_task="fast"} 2.0']
    assert seen["key"] is False


def test_prometheus_metrics_adds_them_to_the_application_s_own_registry(tmp_path):
    script = (
        _CALLS.replace("PORT", "0").replace("PROMETHEUS", "True")
        + """
    asyncio.run(calls())
    from prometheus_client import REGISTRY, generate_latest
    body = generate_latest(REGISTRY).decode()
    lines = [l for l in body.splitlines() if l.startswith("taskrouter_provider_calls_total{")]
    print(json.dumps({"lines": lines, "first": first}))
    """
    )
    seen = _run(script, tmp_path)
    model = seen["first"]
    assert seen["lines"] == [
        f'taskrouter_provider_calls_total{{error_type="",gen_ai_request_model="{model}",taskrouter_outcome="success",'
        'taskrouter_task="fast"} 2.0'
    ]


def test_a_port_already_taken_is_a_config_error_naming_the_setting(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        seen = _run(
            f"""
            import json
            from app.config import load_settings
            from app.core.runtime import build_router
            from app.errors import ConfigError
            try:
                build_router(load_settings(metrics_port={port}, opentelemetry="off"))
            except ConfigError as error:
                print(json.dumps({{"error": str(error)}}))
            """,
            tmp_path,
        )
    assert seen["error"].startswith(f"METRICS_PORT={port}: cannot serve /metrics on 127.0.0.1:{port}")
    assert "choose a free port, or 0 for none" in seen["error"]

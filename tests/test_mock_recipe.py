"""README's mock recipe, `patch("app.core.ai_models.execute_fast_task", new_callable=AsyncMock)`, reaches an agent
however it reached the function: `from app import execute_fast_task` done when its module was imported (before
the patch), or `app.execute_fast_task(...)`. Without a patch the same names make the real call (here, through the
SDK to the simulator on 127.0.0.1)."""

from __future__ import annotations

import inspect
from unittest.mock import AsyncMock, MagicMock, patch

import pytest
from conftest import USER, logged_rows

import app
from app import execute_fast_task, execute_task_sync, stream_fast_task  # bound now, before any test patches
from app.core import ai_models
from app.types import LLMResponse

pytestmark = pytest.mark.anyio
ENTRY_POINTS = [n for n in app.__all__ if n.startswith(("execute_", "stream_"))]
BOUND_AT_IMPORT = {name: getattr(app, name) for name in ENTRY_POINTS}  # as `from app import <name>` binds it
MOCKED = LLMResponse(
    content="Test response", model_used="llama-3.1-8b-instant", finish_reason="stop", usage={"total_tokens": 100}
)


async def agent_that_imported_the_name(question: str) -> str:
    response = await execute_fast_task([{"role": "user", "content": question}], max_tokens=16)
    return f"{response.content} ({response.usage['total_tokens']} tokens)"


async def agent_that_uses_the_package(question: str) -> str:
    response = await app.execute_fast_task([{"role": "user", "content": question}], max_tokens=16)
    return f"{response.content} ({response.usage['total_tokens']} tokens)"


@pytest.mark.parametrize("agent", [agent_that_imported_the_name, agent_that_uses_the_package])
async def test_the_readme_patch_reaches_an_agent_however_it_imported_the_function(agent, env, sim, db_path):
    with patch("app.core.ai_models.execute_fast_task", new_callable=AsyncMock) as mocked:
        mocked.return_value = MOCKED
        assert await agent("hi") == "Test response (100 tokens)"
    mocked.assert_awaited_once_with([{"role": "user", "content": "hi"}], max_tokens=16)
    assert logged_rows(db_path) == []  # the mocked call sent nothing

    answer = await agent("hi")  # the patch is gone: the same name makes the real call again
    rows = logged_rows(db_path)
    assert [(r["model"], r["outcome"]) for r in rows] == [(ai_models.MODEL_REGISTRY["fast"][0], "success")]
    assert answer.endswith(f"({rows[0]['total_tokens']} tokens)") and "Test response" not in answer


@pytest.mark.parametrize("name", ENTRY_POINTS)
async def test_every_entry_point_bound_before_a_patch_calls_the_patched_function(name):
    real = getattr(ai_models, name)
    mock_class = AsyncMock if inspect.iscoroutinefunction(real) else MagicMock
    sentinel = object()
    args = ("fast", USER) if "task_type" in inspect.signature(real).parameters else (USER,)
    with patch(f"app.core.ai_models.{name}", new_callable=mock_class, return_value=sentinel) as mocked:
        result = BOUND_AT_IMPORT[name](*args, timeout=5, max_tokens=8)
        if inspect.isawaitable(result):
            result = await result
        via_package = getattr(app, name)(*args, timeout=5)
        if inspect.isawaitable(via_package):
            via_package = await via_package
    assert result is sentinel and via_package is sentinel
    assert mocked.call_args_list == [((*args,), {"timeout": 5, "max_tokens": 8}), ((*args,), {"timeout": 5})]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_the_forwarders_show_the_functions_signature_docstring_and_kind(name):
    forwarder, real = getattr(app, name), getattr(ai_models, name)
    assert forwarder is not real
    assert inspect.signature(forwarder) == inspect.signature(real)
    assert (forwarder.__name__, forwarder.__doc__) == (real.__name__, real.__doc__) and real.__doc__
    assert inspect.iscoroutinefunction(forwarder) is inspect.iscoroutinefunction(real)


def test_the_sync_and_stream_names_imported_at_module_import_are_the_packages_forwarders():
    assert (execute_task_sync, stream_fast_task) == (app.execute_task_sync, app.stream_fast_task)


def test_the_tables_are_read_on_ai_models_each_time(monkeypatch):
    replaced = {"fast": ["some/model"]}
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", replaced)
    assert app.MODEL_REGISTRY is replaced and app.MODEL_CATALOG is ai_models.MODEL_CATALOG

"""The public API is explicit: everything public is in app.__all__ and the docs, options are keyword-only and typed,
and a router of one's own closes cleanly."""

from __future__ import annotations

import inspect
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import get_type_hints

import pytest
from conftest import USER, logged_rows

import app
from app.core import ai_models
from app.core.params import PARAMS
from app.types import ModelParams

pytestmark = pytest.mark.anyio
PUBLIC_API_PAGE = (Path(__file__).resolve().parents[1] / "docs" / "public-api.md").read_text(encoding="utf-8")
ROUTING = ("variant", "max_cost_usd", "validate", "required_fields", "timeout", "hedge_after_ms")


def test_every_public_name_is_exported_and_documented():
    assert sorted(app.__all__) == sorted(set(app.__all__))
    for name in app.__all__:
        assert hasattr(app, name), name
        assert re.search(rf"`{re.escape(name)}\b", PUBLIC_API_PAGE), f"{name} is not in docs/public-api.md"


@pytest.mark.parametrize("name", [n for n in app.__all__ if n.startswith(("execute_", "stream_"))])
def test_every_entry_point_takes_its_options_keyword_only_and_typed(name):
    signature = inspect.signature(getattr(app, name))
    options = ROUTING if name.startswith("execute_") else ("variant", "max_cost_usd", "timeout")
    for option in options:
        assert signature.parameters[option].kind is inspect.Parameter.KEYWORD_ONLY, (name, option)
    params = signature.parameters["params"]
    assert params.kind is inspect.Parameter.VAR_KEYWORD
    assert "Unpack[ModelParams]" in str(params.annotation)


def test_model_params_are_exactly_the_parameters_the_router_accepts():
    assert set(get_type_hints(ModelParams)) == set(PARAMS) - {"stream"}


async def test_a_router_of_ones_own_works_as_an_async_context_and_writes_its_rows_on_close(env, sim, db_path):
    async with app.Router() as router:
        response = await router.execute("fast", USER, max_tokens=16)
    assert response.model_used == ai_models.MODEL_REGISTRY["fast"][0]
    with sqlite3.connect(db_path) as conn:  # read without a flush: aclose() wrote it
        assert [r[0] for r in conn.execute("SELECT request_id FROM attempts")] == [response.request_id]
    again = await router.execute("fast", USER)  # still usable after close
    assert [r["request_id"] for r in logged_rows(db_path)] == [response.request_id, again.request_id]


def test_import_app_loads_no_heavy_dependency():
    """The SDK, pydantic, sqlite-utils and pandas load on first use, and the gateway's server never, on `import app`."""
    code = (
        "import sys, app; heavy = ('groq', 'pydantic', 'pydantic_settings', 'sqlite_utils', 'pandas', "
        "'aiohttp', 'httpx', 'fastapi', 'starlette', 'uvicorn'); print(','.join(m for m in heavy if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_the_dashboard_script_does_not_shadow_the_app_package():
    """`streamlit run` puts the script's folder first on sys.path: nothing there may pass for `app`."""
    root = Path(__file__).resolve().parents[1]
    assert not (root / "dashboard" / "app.py").exists()
    code = f"import sys; sys.path.insert(0, {str(root / 'dashboard')!r}); import app.config; print(app.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.strip() == str(root / "app" / "__init__.py")

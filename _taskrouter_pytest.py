"""taskrouter's pytest plugin as pytest loads it (the `pytest11` entry point): the `fake_llm` fixture, the
`taskrouter_network` marker and ini option, and the guard against calls leaving the machine (app/pytest_plugin.py
says what they do).

This module sits outside the `app` package and imports nothing of it at import time: pytest imports entry-point
plugins before pytest-cov starts measuring, and importing any module under `app` runs `app/__init__.py` and most of
the package with it, which would leave their import-time lines unmeasured. Its hooks and fixture import taskrouter
when they run, once measuring has begun.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

NETWORK = "taskrouter_network"  # the marker, and the ini option
NETWORK_HELP = "let taskrouter calls reach providers outside this machine (real requests, paid ones with a real key)"


@pytest.fixture
def fake_llm() -> Iterator[Callable[..., Any]]:
    """`app.testing.fake_models` without a `with`, undone when the test ends."""
    from app.testing import FakeModels, Script, fake_models

    with contextlib.ExitStack() as stack:

        def start(script: Script, **settings: Any) -> FakeModels:
            return stack.enter_context(fake_models(script, **settings))

        yield start


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(NETWORK, f"{NETWORK_HELP}, in every test", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    from app.pytest_plugin import NetworkGuard

    config.addinivalue_line("markers", f"{NETWORK}: {NETWORK_HELP}, in this test")
    config.pluginmanager.register(NetworkGuard(everywhere=bool(config.getini(NETWORK))), "taskrouter-network-guard")

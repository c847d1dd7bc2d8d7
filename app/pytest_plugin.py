"""The `fake_llm` pytest fixture (registered through the `pytest11` entry point when taskrouter is installed):
`app.testing.fake_models` without a `with`, undone when the test ends.

    def test_my_agent(fake_llm):
        fake = fake_llm({"*": "a scripted answer"})
        ...
        assert len(fake.calls) == 1
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def fake_llm() -> Iterator[Callable[..., Any]]:
    from app.testing import FakeModels, Script, fake_models

    with contextlib.ExitStack() as stack:
        def start(script: Script, **settings: Any) -> FakeModels:
            return stack.enter_context(fake_models(script, **settings))

        yield start

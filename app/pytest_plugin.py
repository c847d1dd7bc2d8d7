"""taskrouter's pytest plugin, registered through the `pytest11` entry point when taskrouter is installed. Pytest
loads it from `_taskrouter_pytest` (outside this package, so that loading it imports nothing of taskrouter before
pytest-cov starts measuring); that module holds the hooks and the fixture, this one the guard they install.

The `fake_llm` fixture: `app.testing.fake_models` without a `with`, undone when the test ends.

    def test_my_agent(fake_llm):
        fake = fake_llm({"*": "a scripted answer"})
        ...
        assert len(fake.calls) == 1

No forgotten mock spends money: while tests run, a call that would reach a provider outside this machine (any host
but localhost, 127.0.0.0/8 and ::1, where the simulator listens) raises `app.testing.ProviderCallBlockedError`
before any connection is opened, with a message saying how to mock or script it. A test meant to reach the
provider opts in with `@pytest.mark.taskrouter_network`; every test of a run with `-o taskrouter_network=true` (or
`taskrouter_network = true` in the pytest configuration). The guard covers calls made in the pytest process, not
in processes a test starts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Generator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from _taskrouter_pytest import NETWORK
from app.providers.run import set_endpoint_guard
from app.testing import ProviderCallBlockedError
from app.urls import redact_url

if TYPE_CHECKING:
    from app.providers import Endpoint
    from app.providers.run import EndpointGuard


def leaves_the_machine(base_url: str) -> bool:
    """Whether a request to `base_url` would go to another machine: any host but localhost, 127.0.0.0/8 and ::1.
    A URL without a host is not judged here: the provider refuses it with its own setup error."""
    try:
        host = urlsplit(base_url).hostname
    except ValueError:
        return False
    if not host or host.rstrip(".") == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address: only `localhost` is known to stay here
        return True


def blocked_message(endpoint: Endpoint) -> str:
    return (
        f"taskrouter: this test would send a real request to {endpoint.provider} at "
        f"{redact_url(endpoint.base_url)}, outside this machine (with a real key, a paid one). Mock the call "
        'your code makes, e.g. patch("app.core.ai_models.execute_fast_task", new_callable=AsyncMock) for '
        "execute_fast_task, or script the models with the fake_llm fixture (app.testing.fake_models). A test "
        f"meant to reach the provider says so: @pytest.mark.{NETWORK} (every test: -o {NETWORK}=true)."
    )


class NetworkGuard:
    """Installed for the session through app.providers.run's endpoint guard (the hook the shipped providers consult
    before each request); `everywhere` (the ini option) installs none. Whatever it replaced is put back at the
    end, so that a pytest run inside a test (pytester) decides for its own tests, then leaves the outer run's."""

    def __init__(self, *, everywhere: bool) -> None:
        self.allowed = False  # the running test carries the marker
        self.previous: EndpointGuard | None = set_endpoint_guard(None if everywhere else self.check)

    def check(self, endpoint: Endpoint) -> None:
        if not self.allowed and leaves_the_machine(endpoint.base_url):
            raise ProviderCallBlockedError(blocked_message(endpoint))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        self.allowed = item.get_closest_marker(NETWORK) is not None  # its setup and teardown too
        try:
            return (yield)
        finally:
            self.allowed = False

    def pytest_unconfigure(self) -> None:
        set_endpoint_guard(self.previous)

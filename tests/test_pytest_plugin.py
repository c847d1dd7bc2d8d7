"""The taskrouter pytest plugin's guard (app/pytest_plugin.py): under pytest, a call that would reach a provider
outside this machine fails at once, before any connection, saying how to mock or script it, unless the test opts
in. This suite runs under the plugin too, so the calls here that are not in a pytester run meet the session's
guard. Nothing here sends anything off the machine: the opted-in calls go to a simulator on this machine's own
non-loopback address."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from conftest import TEST_KEY, USER, logged_rows

import app
from app.core import ai_models
from app.providers import Endpoint, list_models, run_llm
from app.pytest_plugin import leaves_the_machine
from app.simulator import ModelProfile, Simulator
from app.testing import ProviderCallBlockedError

pytest_plugins = ["pytester"]
FAST = ai_models.MODEL_REGISTRY["fast"][0]
RECIPE = 'patch("app.core.ai_models.execute_fast_task", new_callable=AsyncMock)'

# -- what a socket was asked to do, seen through the interpreter's audit events ----------------------------------

_recording: list[tuple[str, object]] | None = None
_hooked = False


def _audit(event: str, args: tuple) -> None:
    if _recording is not None and event in ("socket.connect", "socket.getaddrinfo"):
        _recording.append((event, args[1] if event == "socket.connect" else args[0]))


@pytest.fixture
def socket_calls() -> Iterator[list[tuple[str, object]]]:
    """Every connect and name lookup made while the test runs (an audit hook stays for the process: it records
    only inside this fixture)."""
    global _recording, _hooked
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked = True
    _recording = []
    try:
        yield _recording
    finally:
        _recording = None


def own_address() -> str | None:
    """This machine's address on its default route, or None. A UDP socket's connect picks the route and sends
    nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: any address off loopback would do
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


@pytest.fixture(scope="module")
def off_loopback_simulator() -> Iterator[Simulator]:
    address = own_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    with Simulator(api_key=TEST_KEY, default_profile=ModelProfile(), host=address) as sim:
        yield sim


@pytest.fixture
def off_loopback_sim(off_loopback_simulator: Simulator) -> Simulator:
    """A simulator on this machine, reached through an address that is not loopback: what the guard must block
    (it judges the URL) and what an opted-in test may reach without leaving the machine."""
    off_loopback_simulator.reset()
    return off_loopback_simulator


@pytest.fixture
def fake_key(monkeypatch: pytest.MonkeyPatch, db_path) -> pytest.MonkeyPatch:
    """A key as a developer's .env gives one, GROQ_BASE_URL left to its default (https://api.groq.com)."""
    monkeypatch.setenv("GROQ_API_KEY", "gsk_a_key_that_would_be_billed")
    monkeypatch.setenv("ATTEMPTS_DB_PATH", str(db_path))
    return monkeypatch


# -- the decision -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "leaves"),
    [
        ("https://api.groq.com", True),
        ("http://10.0.0.7:8000/v1", True),
        ("http://ollama:11434/v1", True),
        ("http://192.0.2.2:8765", True),
        ("http://127.0.0.1:8765", False),
        ("http://127.0.0.2:80", False),
        ("http://[::1]:8765/v1", False),
        ("http://localhost:11434/v1", False),
        ("http://LOCALHOST.:1", False),
        ("", False),  # no host: the provider's own setup error says so
    ],
)
def test_only_loopback_and_localhost_stay_on_the_machine(url, leaves):
    assert leaves_the_machine(url) is leaves


# -- the session's guard, met by this suite's own calls ---------------------------------------------------------


@pytest.mark.anyio
async def test_a_call_to_groq_is_blocked_before_any_connection_and_ends_the_request(fake_key, db_path, socket_calls):
    with pytest.raises(ProviderCallBlockedError) as caught:
        await app.execute_fast_task(USER)
    message = str(caught.value)
    assert message.startswith(
        "taskrouter: this test would send a real request to groq at https://api.groq.com, outside this machine"
    )
    assert RECIPE in message and "fake_llm" in message and "app.testing.fake_models" in message
    assert "@pytest.mark.taskrouter_network" in message and "-o taskrouter_network=true" in message
    # A setup error that ends the request, not a model's failure that the router would log and fall back on.
    assert isinstance(caught.value, app.ConfigError) and not isinstance(caught.value, app.TaskFailedError)
    with pytest.raises(ProviderCallBlockedError):  # the stream and the sync door meet the same guard
        async for _ in app.stream_fast_task(USER):
            pass
    with pytest.raises(ProviderCallBlockedError):
        await asyncio.to_thread(app.execute_task_sync, "fast", USER)
    with pytest.raises(ProviderCallBlockedError):  # no model was marked: the same call again is not skipped
        await app.execute_fast_task(USER)
    assert logged_rows(db_path) == []
    assert socket_calls == []


@pytest.mark.anyio
async def test_the_provider_door_is_guarded_and_the_message_hides_a_password():
    endpoint = Endpoint("openai_compatible", "https://proxy-user:hunter2-secret@llm.example:8443/v1", "sk-x")
    with pytest.raises(ProviderCallBlockedError) as caught:
        await run_llm(endpoint, "m", USER, {}, 1)
    message = str(caught.value)
    assert "to openai_compatible at https://proxy-user:***@llm.example:8443/v1," in message and "hunter2" not in message
    with pytest.raises(ProviderCallBlockedError):
        await list_models(endpoint, 1)


@pytest.mark.anyio
async def test_an_address_of_this_machine_off_loopback_is_blocked_too(fake_key, off_loopback_sim, socket_calls):
    fake_key.setenv("GROQ_BASE_URL", off_loopback_sim.base_url)
    with pytest.raises(ProviderCallBlockedError, match=f"at {off_loopback_sim.base_url}, outside"):
        await app.execute_fast_task(USER)
    assert off_loopback_sim.calls(FAST) == 0 and socket_calls == []


@pytest.mark.anyio
async def test_localhost_is_let_through(env, sim):
    env.setenv("GROQ_BASE_URL", f"http://localhost:{sim.port}")
    assert (await app.execute_fast_task(USER, max_tokens=8)).model_used == FAST


@pytest.mark.anyio
@pytest.mark.taskrouter_network
async def test_a_marked_test_reaches_an_endpoint_off_loopback(fake_key, off_loopback_sim, socket_calls):
    fake_key.setenv("GROQ_API_KEY", TEST_KEY)
    fake_key.setenv("GROQ_BASE_URL", off_loopback_sim.base_url)
    response = await app.execute_fast_task(USER, max_tokens=8)
    assert response.model_used == FAST and off_loopback_sim.calls(FAST) == 1
    reached = {host if isinstance(host, str) else host[0] for _, host in socket_calls}  # connect: (host, port)
    assert reached == {urlsplit(off_loopback_sim.base_url).hostname}


# -- as a user's suite meets it (a pytest run inside this test) -----------------------------------------------

AGENT_TESTS = """
import os

import pytest

import app
from app.testing import ProviderCallBlockedError

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def settings(monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", os.environ["AGENT_TEST_KEY"])
    monkeypatch.setenv("ATTEMPT_LOGGING", "false")
    if os.environ.get("AGENT_TEST_URL"):
        monkeypatch.setenv("GROQ_BASE_URL", os.environ["AGENT_TEST_URL"])
    app.reset()
    yield
    app.reset()


async def test_my_agent_with_a_forgotten_mock():
    assert (await app.execute_fast_task(USER, max_tokens=8)).content


@pytest.mark.taskrouter_network
async def test_my_agent_against_the_provider():
    assert (await app.execute_fast_task(USER, max_tokens=8)).content
"""


def test_a_forgotten_mock_fails_the_users_test_at_once_with_what_to_do(pytester, fake_key, socket_calls):
    fake_key.setenv("AGENT_TEST_KEY", "gsk_a_key_that_would_be_billed")
    pytester.makepyfile(test_agent=AGENT_TESTS)
    result = pytester.runpytest("-k", "forgotten")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*ProviderCallBlockedError: taskrouter: this test would send a real request to groq "
            "at https://api.groq.com, outside this machine*"
        ]
    )
    assert RECIPE in result.stdout.str() and "AllModelsFailedError" not in result.stdout.str()
    assert socket_calls == []
    with pytest.raises(ProviderCallBlockedError):  # the inner run put this session's guard back
        app.execute_task_sync("fast", USER)


def test_a_users_test_opts_in_with_the_marker_or_for_the_whole_run(pytester, fake_key, off_loopback_sim):
    fake_key.setenv("AGENT_TEST_KEY", TEST_KEY)
    fake_key.setenv("AGENT_TEST_URL", off_loopback_sim.base_url)
    pytester.makepyfile(test_agent=AGENT_TESTS)
    marked_only = pytester.runpytest()
    marked_only.assert_outcomes(passed=1, failed=1)
    blocked = f"E *.ProviderCallBlockedError: taskrouter: * at {off_loopback_sim.base_url}, outside this machine *"
    marked_only.stdout.fnmatch_lines(["*_ test_my_agent_with_a_forgotten_mock _*", blocked])
    assert off_loopback_sim.calls(FAST) == 1
    pytester.runpytest("-o", "taskrouter_network=true").assert_outcomes(passed=2)
    assert off_loopback_sim.calls(FAST) == 3
    app.reset()
    with pytest.raises(ProviderCallBlockedError):  # this test is not marked: the session's guard is back
        app.execute_task_sync("fast", USER)

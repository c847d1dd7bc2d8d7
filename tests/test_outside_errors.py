"""What a user meets from outside, through the real SDK on loopback: a wrong base URL is a setup error that marks no
model, and the context-length errors of OpenAI-compatible servers (vLLM, LiteLLM's proxy, llama.cpp, Ollama) move
on to the next model as Groq's own does."""

from __future__ import annotations

import pytest
from conftest import TEST_KEY, USER, logged_rows

from app.core import ai_models
from app.errors import AllModelsFailedError
from app.registry.catalog import ModelInfo
from app.simulator import Simulator

pytestmark = pytest.mark.anyio

A, B = "sim/primary", "sim/secondary"


@pytest.fixture(autouse=True)
def _two_model_chain() -> None:
    ai_models.MODEL_REGISTRY["pair"] = [A, B]
    ai_models.MODEL_REGISTRY["fallback"] = []


def model_marks(db_path) -> list[dict]:
    return logged_rows(db_path, "SELECT * FROM model_status")


async def test_a_wrong_groq_base_url_names_the_setting_and_marks_no_model(sim: Simulator, make_router, db_path):
    # The simulator's banner offers /v1 for OpenAI clients; as GROQ_BASE_URL the SDK posts /v1/openai/v1/...
    wrong = make_router(groq_base_url=f"{sim.base_url}/v1")
    with pytest.raises(AllModelsFailedError) as caught:
        await wrong.execute("pair", USER)
    rows = logged_rows(db_path)
    assert [(r["model"], r["error_kind"], r["status_code"]) for r in rows] == [(A, "setup", 404), (B, "setup", 404)]
    message = rows[0]["error_message"]
    assert "Unknown request URL: POST /v1/openai/v1/chat/completions" in message
    assert f"GROQ_BASE_URL={sim.base_url}/v1" in message and "leave out the trailing /v1" in message
    assert "GROQ_BASE_URL" in str(caught.value)
    assert model_marks(db_path) == []  # nothing keeps A or B out once the URL is fixed
    assert wrong.health.mark(A) is None and wrong.health.mark(B) is None

    fixed = make_router()  # the same store, the URL corrected: the very next call reaches the model
    resp = await fixed.execute("pair", USER)
    assert (resp.model_used, resp.fallback_used) == (A, False)
    assert sim.calls(A) == 1  # the two 404s were on a path that is not the chat path


async def test_a_missing_model_is_still_marked_not_found(sim: Simulator, make_router, db_path):
    sim.script(A, "not_found")
    resp = await make_router().execute("pair", USER)
    assert resp.model_used == B
    assert [(r["model"], r["error_kind"]) for r in logged_rows(db_path)] == [(A, "not_found"), (B, None)]
    assert [(m["model"], m["status"]) for m in model_marks(db_path)] == [(A, "not_found")]


async def test_a_wrong_catalog_base_url_names_the_catalog(sim: Simulator, make_router, db_path, monkeypatch):
    monkeypatch.setenv("SIM_KEY", TEST_KEY)
    ai_models.MODEL_CATALOG[A] = ModelInfo(
        provider="openai_compatible",
        base_url=sim.base_url,  # lacks /v1
        api_key_env="SIM_KEY",
    )
    resp = await make_router().execute("pair", USER)
    assert resp.model_used == B
    row = logged_rows(db_path)[0]
    assert (row["model"], row["error_kind"], row["status_code"]) == (A, "setup", 404)
    assert "base_url in MODEL_CATALOG" in row["error_message"] and "http://127.0.0.1:8000/v1" in row["error_message"]
    assert model_marks(db_path) == []


VLLM = {
    "object": "error",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
    "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in "
    "the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
}
LITELLM = {
    "error": {
        "message": "litellm.ContextWindowExceededError: litellm.BadRequestError: "
        "ContextWindowExceededError: OpenAIException - This model's maximum context length "
        "is 8192 tokens.",
        "type": None,
        "param": None,
        "code": "400",
    }
}
LLAMA_CPP = {
    "error": {
        "code": 400,
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 4476,
        "n_ctx": 4096,
        "message": "request (4476 tokens) exceeds the available context size (4096 tokens)",
    }
}


@pytest.mark.parametrize("provider", ["groq", "openai_compatible"])
@pytest.mark.parametrize("body", [VLLM, LITELLM, LLAMA_CPP], ids=["vllm", "litellm", "llama.cpp"])
async def test_an_openai_compatible_context_error_moves_on(
    sim: Simulator, make_router, db_path, monkeypatch, provider, body
):
    if provider == "openai_compatible":
        monkeypatch.setenv("SIM_KEY", TEST_KEY)
        ai_models.MODEL_CATALOG[A] = ModelInfo(
            provider="openai_compatible", base_url=sim.openai_base_url, api_key_env="SIM_KEY"
        )
    sim.script(A, {"fault": "foreign_error", "status": 400, "body": body})
    resp = await make_router().execute("pair", USER)
    assert (resp.model_used, resp.fallback_used) == (B, True)
    rows = logged_rows(db_path)
    assert [(r["model"], r["error_kind"], r["status_code"]) for r in rows] == [
        (A, "context_length", 400),
        (B, None, None),
    ]
    assert "context" in rows[0]["error_message"]

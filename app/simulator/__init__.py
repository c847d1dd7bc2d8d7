"""A Groq-compatible HTTP simulator: the real `groq` SDK talks to it as to api.groq.com, and it answers
with Groq's success bodies, error bodies, headers and failure modes, on demand or at seeded rates. A profile's
`capability` against a request's `x_bench_difficulty` decides whether an answer is good enough, and an answer that is
not says so with a leading "[unacceptable]" (the quality model, app/simulator/quality.py, for cost benchmarks).

    with Simulator({"some/model": ModelProfile()}) as sim:
        client = groq.Groq(base_url=sim.base_url, api_key="x", max_retries=0)
        sim.script("some/model", "rate_limit", "ok")
"""

from app.simulator.faults import FAULTS
from app.simulator.profiles import (
    DEFAULT_PROFILES_PATH,
    ModelProfile,
    load_default_profile,
    load_profiles,
)
from app.simulator.simulator import Simulator
from app.simulator.state import RequestRecord

__all__ = [
    "DEFAULT_PROFILES_PATH",
    "FAULTS",
    "ModelProfile",
    "RequestRecord",
    "Simulator",
    "load_default_profile",
    "load_profiles",
]

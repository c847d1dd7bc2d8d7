"""Router overhead: what `execute_task` (attempt logging on) adds to a bare `AsyncGroq` call. Run by hand.

    python bench/overhead.py                                  # the table (a few minutes)
    python bench/overhead.py --limits aiohttp:512/256,512/256   # + a transport sweep (aiohttp, then httpx)
    python bench/overhead.py --profile                        # where the router's own time goes
    python bench/overhead.py --stream-only                    # the streaming rows alone (under a minute)
    python bench/overhead.py --profile --stream-only          # where the router's own time goes when streaming

The simulator runs in a separate process (bench/_common.py's, zero latency, no faults) so that it does not
share the client's GIL. Rounds are interleaved (bare, router, ..., then reversed) and every figure is the
median over rounds: the machine is noisy. "CPU us/call" is this process's CPU time (all threads, so the attempt
log's writer thread too) per call: unlike latency it does not depend on queueing.

Two baselines, because the router can be cheaper than the bare client: its provider layer posts a plain JSON body
through the SDK's `client.post` and reads the JSON itself, skipping the SDK's typed request transform and
ChatCompletion model. `taskrouter run_llm only` is that provider layer alone; execute_task over it is the router's
own cost (chain, gates, health, records, the attempt log). LiteLLM's Router, when it imports, runs in the same
rounds against the same simulator on the same transport, compared with the bare AsyncOpenAI client it wraps.

Streaming rows (skip them with --no-stream): the bare AsyncGroq stream (`create(stream=True)`, typed chunks) and
`stream_task` (attempt logging on) read to their end, in their own interleaved rounds after the table's, at the same
pool. "TTFT" is from the call to the first content delta; "CPU us/chunk" is the process CPU over the window divided
by the content chunks received, so it carries each stream's fixed cost (request, first token, log row) spread over
its chunks. The simulator does not pace these streams (tokens_per_second 0): all the time is the client's.
`taskrouter open_stream only` is the provider's stream alone: stream_task over it is the router's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price map at import
os.environ.setdefault("LITELLM_TELEMETRY", "False")

import _common  # noqa: E402
import groq  # noqa: E402
import httpx  # noqa: E402
from _common import KEY, cpu_name  # noqa: E402

from app.config import load_settings  # noqa: E402
from app.core import ai_models  # noqa: E402
from app.core.router import Router  # noqa: E402
from app.core.runtime import configure  # noqa: E402
from app.providers import Endpoint, get_provider, groq_provider, open_stream, run_llm  # noqa: E402
from app.store import get_attempt_log  # noqa: E402

Call = Callable[[], Awaitable[Any]]
MESSAGES = [{"role": "user", "content": "Classify this ticket as billing, bug or question: my invoice is wrong"}]
MAX_TOKENS = 64
# The simulator splits an answer into at most 16 chunks whatever max_tokens allows (MAX_STREAM_PIECES): 256 only
# makes sure the budget never truncates the answer, so that every stream carries the same chunks.
STREAM_MAX_TOKENS = 256
TASK = "fast"
TARGET_ADDED_P50_US = 250.0
TARGET_RATIO_AT_50 = 0.95
TARGET_ADDED_TTFT_MS = 0.3
TARGET_ADDED_CPU_PER_CHUNK_US = 20.0
NOISE_CPU_US = 50.0  # CPU/call differences below this swing sign between identical runs on a 2-core VM
BARE, OURS, OURS_NOLOG, PROVIDER, BARE_OAI, LITE = (
    "bare AsyncGroq",
    "taskrouter execute_task",
    "taskrouter, logging off",
    "taskrouter run_llm only",
    "bare AsyncOpenAI",
    "LiteLLM Router",
)
BARE_STREAM, OURS_STREAM, PROVIDER_STREAM = (
    "bare AsyncGroq stream",
    "taskrouter stream_task",
    "taskrouter open_stream only",
)


@dataclass
class Sample:
    seconds: float
    cpu: float  # process CPU seconds, every thread
    latencies: list[float]  # per call; for a stream, its time to first token
    server_cpu: float = 0.0  # the simulator process's CPU seconds over the same span
    chunks: int = 0  # content chunks received (streams only)

    @property
    def server_busy(self) -> float:
        """Share of one core the simulator used: near 1.0 it, not the client, would set the pace."""
        return self.server_cpu / self.seconds

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu / len(self.latencies) * 1e6

    @property
    def cpu_per_chunk_us(self) -> float:
        return self.cpu / self.chunks * 1e6

    @property
    def chunks_per_call(self) -> float:
        return self.chunks / len(self.latencies)

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass
class Client:
    name: str
    call: Call
    baseline: str | None = None  # the bare client this one wraps
    samples: dict[int, list[Sample]] = field(default_factory=dict)
    calls: int = 0
    stream: bool = False  # call() returns (seconds to the first content delta, content chunks)
    logged: bool = False  # each call writes one row to the attempt log


async def measure(call: Call, n: int, concurrency: int) -> Sample:
    latencies: list[float] = []
    remaining = iter(range(n))

    async def worker() -> None:
        for _ in remaining:
            t0 = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t0)

    started, cpu, server = time.perf_counter(), time.process_time(), simulator_cpu()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Sample(time.perf_counter() - started, time.process_time() - cpu, latencies, simulator_cpu() - server)


async def measure_stream(call: Call, n: int, concurrency: int) -> Sample:
    """`measure` for streams: the call times its own first token (only it sees the delta arrive)."""
    ttfts: list[float] = []
    chunks = 0
    remaining = iter(range(n))

    async def worker() -> None:
        nonlocal chunks
        for _ in remaining:
            ttft, count = await call()
            ttfts.append(ttft)
            chunks += count

    started, cpu, server = time.perf_counter(), time.process_time(), simulator_cpu()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Sample(time.perf_counter() - started, time.process_time() - cpu, ttfts, simulator_cpu() - server, chunks)


_SIMULATOR_PID: int | None = None
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def simulator_cpu() -> float:
    """CPU seconds (user + system) the simulator process has used so far; 0 where /proc is unavailable."""
    try:
        fields = Path(f"/proc/{_SIMULATOR_PID}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)


@contextlib.contextmanager
def simulator(models: list[str], workdir: Path) -> Iterator[str]:
    """Every model at zero latency; yields the base URL, and simulator_cpu() watches the process meanwhile."""
    # tokens_per_second 0 (the default, said here because streams depend on it): streams are not paced.
    profiles = "".join(f'[models."{m}"]\nlatency_ms = 0.0\ntokens_per_second = 0.0\n\n' for m in models)
    with _common.simulator(profiles, workdir, "bench_profiles") as sim:
        global _SIMULATOR_PID
        _SIMULATOR_PID = sim.pid
        yield sim.base_url


# -- the contenders ---------------------------------------------------------------------------------------


_OPEN: list[httpx.AsyncClient] = []  # closed at the end: aiohttp complains loudly about open sessions


def http_client(pool: str) -> httpx.AsyncClient:
    """`512/256` -> httpx with those limits; `aiohttp:512/256` -> the SDK's aiohttp transport (groq[aiohttp])."""
    transport, _, numbers = pool.rpartition(":")
    total, keepalive = (int(x) for x in numbers.split("/"))
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=keepalive)
    client = groq.DefaultAioHttpClient(limits=limits) if transport == "aiohttp" else httpx.AsyncClient(limits=limits)
    _OPEN.append(client)
    return client


def bare_groq(base_url: str, model: str, pool: str) -> Client:
    client = groq.AsyncGroq(api_key=KEY, base_url=base_url, max_retries=0, http_client=http_client(pool))

    async def call() -> Any:
        return await client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=MAX_TOKENS)  # type: ignore[arg-type]

    return Client(BARE, call)


async def configure_router(base_url: str, db: Path, pool: str) -> dict[str, Any]:
    """The public router (execute_task, stream_task) on the simulator with attempt logging on, its provider's
    client given `pool`; returns the settings, without attempt_logging, for other routers of the run."""
    # The provider's own client factory, given the bench's limits (the shipped ones unless --limits says else).
    groq_provider._http_client = lambda transport: http_client(pool)  # type: ignore[attr-defined]
    await get_provider("groq").aclose()  # type: ignore[attr-defined]  # the next call builds a client with it
    base: dict[str, Any] = dict(
        env_file=None,
        groq_api_key=KEY,
        groq_base_url=base_url,
        attempts_db_path=db,
        force_model=None,
        default_models={},
        daily_budget_usd=None,
        http_transport=transport_of(pool),
    )
    configure(load_settings(**base, attempt_logging=True))
    return base


def transport_of(pool: str) -> str:
    return "aiohttp" if pool.startswith("aiohttp:") else "httpx"


async def routers(base_url: str, db: Path, pool: str) -> list[Client]:
    """The public path (execute_task, logging on) and, for reference, a Router with logging off and the provider
    layer alone (`run_llm`, what every attempt goes through): the router's own cost is execute_task over it."""
    base = await configure_router(base_url, db, pool)
    quiet = Router(
        load_settings(**base, attempt_logging=False),
        registry=lambda: ai_models.MODEL_REGISTRY,
        catalog=lambda: ai_models.MODEL_CATALOG,
    )
    endpoint = Endpoint("groq", base_url, KEY, transport_of(pool))
    model = ai_models.MODEL_REGISTRY[TASK][0]

    async def call() -> Any:
        return await ai_models.execute_task(TASK, MESSAGES, max_tokens=MAX_TOKENS)

    async def call_nolog() -> Any:
        return await quiet.execute(TASK, MESSAGES, max_tokens=MAX_TOKENS)

    async def call_provider() -> Any:
        return await run_llm(endpoint, model, MESSAGES, {"max_tokens": MAX_TOKENS}, 60.0)

    return [
        Client(OURS, call, baseline=BARE, logged=True),
        Client(OURS_NOLOG, call_nolog, baseline=BARE),
        Client(PROVIDER, call_provider, baseline=BARE),
    ]


def streamers(base_url: str, model: str, pool: str) -> list[Client]:
    """The bare AsyncGroq stream, stream_task (the public router, which configure_router must have set up) and
    the provider's stream alone. Each call reads its stream to the end and returns (TTFT seconds, content chunks)."""
    client = groq.AsyncGroq(api_key=KEY, base_url=base_url, max_retries=0, http_client=http_client(pool))
    endpoint = Endpoint("groq", base_url, KEY, transport_of(pool))

    async def bare() -> tuple[float, int]:
        started, ttft, chunks = time.perf_counter(), 0.0, 0
        stream = await client.chat.completions.create(
            model=model,
            messages=MESSAGES,  # type: ignore[arg-type]
            max_tokens=STREAM_MAX_TOKENS,
            stream=True,
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:  # not the role chunk ("") nor the finish one
                if not chunks:
                    ttft = time.perf_counter() - started
                chunks += 1
        return ttft, chunks

    async def ours() -> tuple[float, int]:
        started, ttft, chunks = time.perf_counter(), 0.0, 0
        stream = ai_models.stream_task(TASK, MESSAGES, max_tokens=STREAM_MAX_TOKENS)
        async for _delta in stream:  # only text deltas reach the caller: each one is a content chunk
            if not chunks:
                ttft = time.perf_counter() - started
            chunks += 1
        stream.response  # noqa: B018  # raises unless the stream ended as a complete answer
        return ttft, chunks

    async def provider() -> tuple[float, int]:
        started, ttft, chunks = time.perf_counter(), 0.0, 0
        stream = await open_stream(endpoint, model, MESSAGES, {"max_tokens": STREAM_MAX_TOKENS}, 60.0)
        async for chunk in stream:
            if chunk.content:
                if not chunks:
                    ttft = time.perf_counter() - started
                chunks += 1
        await stream.aclose()  # as the router does at the end of a stream
        return ttft, chunks

    return [
        Client(BARE_STREAM, bare, stream=True),
        Client(OURS_STREAM, ours, BARE_STREAM, stream=True, logged=True),
        Client(PROVIDER_STREAM, provider, BARE_STREAM, stream=True),
    ]


def peers(openai_base_url: str, chain: list[str], pool: str) -> list[Client] | str:
    """Bare AsyncOpenAI and LiteLLM's Router over the same chain (first model, the rest as fallbacks)."""
    try:
        import litellm
        import openai
    except Exception as exc:  # not installed, or fails offline: report it, do not fail the bench
        return f"LiteLLM skipped: {type(exc).__name__}: {exc}"
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    # The same transport as everyone else in the run: httpx, or its own aiohttp one for an aiohttp pool.
    litellm.disable_aiohttp_transport = not pool.startswith("aiohttp:")
    client = openai.AsyncOpenAI(api_key=KEY, base_url=openai_base_url, max_retries=0, http_client=http_client(pool))
    names = [f"m{i}" for i in range(len(chain))]
    model_list = [
        {
            "model_name": name,
            "litellm_params": {"model": f"openai/{model}", "api_base": openai_base_url, "api_key": KEY},
        }
        for name, model in zip(names, chain, strict=True)
    ]
    lite = litellm.Router(
        model_list=model_list, fallbacks=[{names[0]: names[1:]}] if len(names) > 1 else [], num_retries=0
    )

    async def bare() -> Any:
        return await client.chat.completions.create(model=chain[0], messages=MESSAGES, max_tokens=MAX_TOKENS)  # type: ignore[arg-type]

    async def routed() -> Any:
        return await lite.acompletion(model=names[0], messages=MESSAGES, max_tokens=MAX_TOKENS)

    return [Client(BARE_OAI, bare), Client(f"{LITE} {getattr(litellm, 'version', '')}".strip(), routed, BARE_OAI)]


# -- rounds and the table -------------------------------------------------------------------------------


async def interleaved(clients: list[Client], concurrencies: list[int], rounds: int, calls: dict[int, int]) -> None:
    for c in concurrencies:
        for client in clients:  # warm-up: connections opened, caches filled, nothing recorded
            await (measure_stream if client.stream else measure)(client.call, min(calls[c], 200), c)
            client.calls += min(calls[c], 200)
        for r in range(rounds):
            # Reverse the order every other round, so a drift of the machine favours nobody.
            for client in clients if r % 2 == 0 else clients[::-1]:
                run = measure_stream if client.stream else measure
                client.samples.setdefault(c, []).append(await run(client.call, calls[c], c))
                client.calls += calls[c]
            print(f"  concurrency {c}: round {r + 1}/{rounds}", file=sys.stderr, flush=True)


def paired(client: Client, base: Client, c: int, fn: Callable[[Sample, Sample], float]) -> float:
    """The median over rounds of a comparison made within each round (same moment, same machine state)."""
    return statistics.median(fn(s, b) for s, b in zip(client.samples[c], base.samples[c], strict=True))


ADDED_P50 = lambda s, b: (s.pct(50) - b.pct(50)) * 1e6  # noqa: E731
ADDED_P99 = lambda s, b: (s.pct(99) - b.pct(99)) * 1e6  # noqa: E731
ADDED_CPU = lambda s, b: s.cpu_us - b.cpu_us  # noqa: E731
RATIO = lambda s, b: s.rps / b.rps  # noqa: E731
ADDED_TTFT_MS = lambda s, b: (s.pct(50) - b.pct(50)) * 1e3  # noqa: E731
ADDED_CPU_PER_CHUNK = lambda s, b: s.cpu_per_chunk_us - b.cpu_per_chunk_us  # noqa: E731


def table(clients: list[Client], concurrencies: list[int]) -> list[str]:
    by_name = {c.name: c for c in clients}
    head = (
        "client",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "CPU us/call",
        "added p50 us",
        "added p99 us",
        "added CPU us",
        "req/s ratio",
        "sim busy",
    )
    rows = [head]
    for c in concurrencies:
        for client in clients:
            s = client.samples[c]
            row = [
                client.name,
                str(c),
                f"{statistics.median(x.rps for x in s):,.0f}",
                f"{statistics.median(x.pct(50) for x in s) * 1e3:.2f}",
                f"{statistics.median(x.pct(99) for x in s) * 1e3:.2f}",
                f"{statistics.median(x.cpu_us for x in s):,.0f}",
            ]
            base = by_name.get(client.baseline or "")
            row += (
                ["-"] * 4
                if base is None
                else [
                    f"{paired(client, base, c, ADDED_P50):,.0f}",
                    f"{paired(client, base, c, ADDED_P99):,.0f}",
                    f"{paired(client, base, c, ADDED_CPU):,.0f}",
                    f"{paired(client, base, c, RATIO):.3f}",
                ]
            )
            row.append(f"{statistics.median(x.server_busy for x in s):.0%}")
            rows.append(tuple(row))
    return markdown(rows)


def markdown(rows: list[tuple[str, ...]]) -> list[str]:
    """A Markdown table, columns padded to their widest cell, the first left-aligned and the others right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = [
        "| "
        + " | ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths, strict=True)))
        + " |"
        for r in rows
    ]
    out.insert(1, "|" + "|".join("-" * (w + 1) + ":" if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|")
    return out


def stream_table(clients: list[Client], concurrencies: list[int]) -> list[str]:
    by_name = {c.name: c for c in clients}
    rows = [
        (
            "client",
            "conc",
            "streams/s",
            "chunks/stream",
            "TTFT p50 ms",
            "TTFT p99 ms",
            "CPU us/stream",
            "CPU us/chunk",
            "added TTFT p50 ms",
            "added CPU us/chunk",
            "sim busy",
        )
    ]
    for c in concurrencies:
        for client in clients:
            s = client.samples[c]
            row = [
                client.name,
                str(c),
                f"{statistics.median(x.rps for x in s):,.0f}",
                f"{statistics.median(x.chunks_per_call for x in s):.1f}",
                f"{statistics.median(x.pct(50) for x in s) * 1e3:.2f}",
                f"{statistics.median(x.pct(99) for x in s) * 1e3:.2f}",
                f"{statistics.median(x.cpu_us for x in s):,.0f}",
                f"{statistics.median(x.cpu_per_chunk_us for x in s):,.1f}",
            ]
            base = by_name.get(client.baseline or "")
            row += (
                ["-"] * 2
                if base is None
                else [
                    f"{paired(client, base, c, ADDED_TTFT_MS):+.2f}",
                    f"{paired(client, base, c, ADDED_CPU_PER_CHUNK):+,.1f}",
                ]
            )
            row.append(f"{statistics.median(x.server_busy for x in s):.0%}")
            rows.append(tuple(row))
    return markdown(rows)


def machine() -> str:
    cpu = cpu_name()
    return (
        f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}; groq {groq.__version__}, httpx {httpx.__version__}"
    )


def logged_rows(db: Path) -> int:
    assert get_attempt_log(db).flush(timeout=60), "attempt log did not flush"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])


def log_check(clients: list[Client], rows: int) -> str:
    """Every logged call (execute_task and stream_task alike, warm-ups included) left exactly one attempt row."""
    expected = sum(c.calls for c in clients if c.logged)
    names = " + ".join(f"{c.calls:,} {c.name}" for c in clients if c.logged)
    return (
        f"attempt rows logged: {rows:,} for {expected:,} calls ({names}; warm-ups included) -> "
        f"{'OK' if rows == expected else 'MISSING ROWS'}"
    )


def simulator_load(clients: list[Client], concurrencies: list[int], unit: str, rate: str) -> list[str]:
    samples = [x for client in clients for c in concurrencies for x in client.samples[c]]
    if not any(x.server_cpu for x in samples):
        return []
    busiest = max(samples, key=lambda x: x.server_busy)
    per_request = statistics.median(x.server_cpu / len(x.latencies) * 1e6 for x in samples)
    return [
        f"simulator: {per_request:,.0f} us CPU per {unit} (median); busiest sample {busiest.server_busy:.0%} "
        f"of one core at {busiest.rps:,.0f} {rate} -> "
        f"{'never the bottleneck' if busiest.server_busy < 0.9 else 'MAY BE THE BOTTLENECK'}"
    ]


def verdicts(clients: list[Client], concurrencies: list[int]) -> list[str]:
    by_name = {c.name: c for c in clients}
    bare, ours = by_name[BARE], by_name[OURS]
    lines = simulator_load(clients, concurrencies, "request", "req/s")
    if 1 in concurrencies:
        added = paired(ours, bare, 1, ADDED_P50)
        lines.append(
            f"added p50 latency at concurrency 1: {added:,.0f} us (target <= {TARGET_ADDED_P50_US:.0f}) -> "
            f"{'OK' if added <= TARGET_ADDED_P50_US else 'MISSED'}"
        )
    if 50 in concurrencies:
        ratio = paired(ours, bare, 50, RATIO)
        lines.append(
            f"throughput ratio router/bare at concurrency 50: {ratio:.3f} (target >= {TARGET_RATIO_AT_50})"
            f" -> {'OK' if ratio >= TARGET_RATIO_AT_50 else 'MISSED'}"
        )
    for c in concurrencies:
        own_cpu, own_ratio = paired(ours, by_name[PROVIDER], c, ADDED_CPU), paired(ours, by_name[PROVIDER], c, RATIO)
        lines.append(
            f"concurrency {c}: the router's own cost (execute_task over run_llm alone, logging on): "
            f"+{own_cpu:,.0f} us CPU/call, req/s ratio {own_ratio:.3f}"
        )
    lite = next((c for c in clients if c.name.startswith(LITE)), None)
    if lite is not None:
        for c in concurrencies:
            # Like for like: each router over the client it wraps (LiteLLM over AsyncOpenAI, ours over run_llm).
            lite_cpu, lite_p50 = (
                paired(lite, by_name[BARE_OAI], c, ADDED_CPU),
                paired(lite, by_name[BARE_OAI], c, ADDED_P50),
            )
            own_cpu, own_p50 = (
                paired(ours, by_name[PROVIDER], c, ADDED_CPU),
                paired(ours, by_name[PROVIDER], c, ADDED_P50),
            )
            times = (
                f"{lite_cpu / own_cpu:.0f}x"
                if own_cpu >= NOISE_CPU_US
                else f"taskrouter's is under the {NOISE_CPU_US:.0f} us run-to-run noise"
            )
            lines.append(
                f"concurrency {c}: over the client each wraps, LiteLLM adds {lite_cpu:,.0f} us CPU/call, "
                f"taskrouter {own_cpu:,.0f} (LiteLLM/taskrouter: {times}); "
                f"p50 latency +{lite_p50:,.0f} vs +{own_p50:,.0f} us; req/s ratio LiteLLM/AsyncOpenAI "
                f"{paired(lite, by_name[BARE_OAI], c, RATIO):.3f}, taskrouter/AsyncGroq "
                f"{paired(ours, bare, c, RATIO):.3f}"
            )
    return lines


def stream_verdicts(clients: list[Client], concurrencies: list[int]) -> list[str]:
    by_name = {c.name: c for c in clients}
    bare, ours, provider = by_name[BARE_STREAM], by_name[OURS_STREAM], by_name[PROVIDER_STREAM]
    per_stream = sorted({x.chunks_per_call for cl in clients for c in concurrencies for x in cl.samples[c]})
    lines = [
        f"content chunks per stream: {', '.join(f'{n:g}' for n in per_stream)} (every client, every round; "
        f"max_tokens {STREAM_MAX_TOKENS}: the simulator splits an answer into at most 16 chunks) -> "
        f"{'OK' if len(per_stream) == 1 else 'CLIENTS SAW DIFFERENT STREAMS'}",
        *simulator_load(clients, concurrencies, "stream", "streams/s"),
    ]
    for c in concurrencies:
        ttft, cpu = paired(ours, bare, c, ADDED_TTFT_MS), paired(ours, bare, c, ADDED_CPU_PER_CHUNK)
        lines.append(
            f"concurrency {c}: added TTFT p50 (stream_task - bare AsyncGroq stream): {ttft:+.3f} ms "
            f"(target <= {TARGET_ADDED_TTFT_MS}) -> {'OK' if ttft <= TARGET_ADDED_TTFT_MS else 'MISSED'}"
        )
        lines.append(
            f"concurrency {c}: added CPU per chunk (stream_task - bare AsyncGroq stream): {cpu:+.1f} us "
            f"(target <= {TARGET_ADDED_CPU_PER_CHUNK_US:.0f}) -> "
            f"{'OK' if cpu <= TARGET_ADDED_CPU_PER_CHUNK_US else 'MISSED'}"
        )
    for c in concurrencies:
        # The noise: the same paired differences, round by round (the table gives their median).
        rounds = zip(ours.samples[c], bare.samples[c], strict=True)
        spread = ", ".join(f"{ADDED_TTFT_MS(s, b):+.2f}/{ADDED_CPU_PER_CHUNK(s, b):+.0f}" for s, b in rounds)
        lines.append(f"concurrency {c}: added TTFT ms / CPU us per chunk, round by round: {spread}")
    for c in concurrencies:
        own_cpu = paired(ours, provider, c, ADDED_CPU_PER_CHUNK)
        lines.append(
            f"concurrency {c}: the router's own streaming cost (stream_task over open_stream alone, "
            f"logging on): {own_cpu:+.1f} us CPU/chunk ({paired(ours, provider, c, ADDED_CPU):+,.0f} "
            f"us/stream), TTFT p50 {paired(ours, provider, c, ADDED_TTFT_MS):+.3f} ms"
        )
    return lines


async def bench(args: argparse.Namespace, base_url: str, db: Path) -> int:
    chain = list(dict.fromkeys(ai_models.MODEL_REGISTRY[TASK] + ai_models.MODEL_REGISTRY.get("fallback", [])))
    calls = {c: args.calls_c1 if c == 1 else args.calls for c in args.concurrency}
    stream_calls = {c: args.stream_calls_c1 if c == 1 else args.stream_calls for c in args.stream_concurrency}
    pools = args.limits.split(",")
    clients: list[Client] = []
    lite: list[Client] | str | None = None
    if args.stream_only:
        await configure_router(base_url, db, pools[0])  # routers() does it otherwise
    else:
        clients = [bare_groq(base_url, chain[0], pools[0]), *await routers(base_url, db, pools[0])]
        lite = None if args.no_litellm else peers(f"{base_url}/v1", chain, pools[0])
        clients += lite if isinstance(lite, list) else []
    streams = [] if args.no_stream else streamers(base_url, chain[0], pools[0])
    print(f"simulator {base_url} (own process, zero latency); model {chain[0]}; pool {pools[0]}", file=sys.stderr)
    if clients:
        await interleaved(clients, args.concurrency, args.rounds, calls)
    if streams:
        await interleaved(streams, args.stream_concurrency, args.rounds, stream_calls)
    # One check for both phases: stream_task's attempts go to the same log as execute_task's.
    log = log_check(clients + streams, logged_rows(db))
    print(f"machine: {machine()}")
    if clients:
        notes = [log, *verdicts(clients, args.concurrency)] + ([lite] if isinstance(lite, str) else [])
        print(
            f"simulator: separate process, zero latency; calls per round {calls}; {args.rounds} interleaved "
            f"rounds, medians; pool {pools[0]} for every client\n"
        )
        print("\n".join(table(clients, args.concurrency)) + "\n\n" + "\n".join(notes))
    if streams:
        print(
            f"\nstreaming: simulator unpaced (tokens_per_second 0), max_tokens {STREAM_MAX_TOKENS}; streams per "
            f"round {stream_calls}; {args.rounds} interleaved rounds, medians; pool {pools[0]} for every client\n"
        )
        notes = ([] if clients else [log]) + stream_verdicts(streams, args.stream_concurrency)
        print("\n".join(stream_table(streams, args.stream_concurrency)) + "\n\n" + "\n".join(notes))
    if len(pools) > 1 and not args.stream_only:
        await sweep(base_url, chain[0], db, pools, args)
    for client in _OPEN:
        await client.aclose()
    return 0 if log.endswith("OK") else 1


async def sweep(base_url: str, model: str, db: Path, pools: list[str], args: argparse.Namespace) -> None:
    """The same rounds with other pool limits or transports, applied to the bare client and the router alike."""
    concurrencies = [c for c in args.concurrency if c != 1] or args.concurrency
    out = [
        "",
        "pool / transport sweep (bare AsyncGroq and execute_task alike; medians over rounds):",
        "",
        "| http_client | conc | bare req/s | router req/s | ratio | bare CPU us/call | router CPU us/call |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for pool in pools:
        clients = [bare_groq(base_url, model, pool), (await routers(base_url, db, pool))[0]]
        await interleaved(clients, concurrencies, args.rounds, dict.fromkeys(concurrencies, args.calls))
        for c in concurrencies:
            med = [statistics.median(s.rps for s in cl.samples[c]) for cl in clients]
            cpu = [statistics.median(s.cpu_us for s in cl.samples[c]) for cl in clients]
            ratio = paired(clients[1], clients[0], c, RATIO)
            out.append(
                f"| {pool} | {c} | {med[0]:,.0f} | {med[1]:,.0f} | {ratio:.3f} | {cpu[0]:,.0f} | {cpu[1]:,.0f} |"
            )
    print("\n".join(out))


async def profile(base_url: str, db: Path, n: int, pool: str, concurrency: int, stream: bool) -> None:
    """cProfile over real calls: per-call time of the router's own functions (profiler overhead included)."""
    if stream:
        await configure_router(base_url, db, pool)
        client = next(c for c in streamers(base_url, ai_models.MODEL_REGISTRY[TASK][0], pool) if c.name == OURS_STREAM)
    else:
        client = (await routers(base_url, db, pool))[0]
    run = measure_stream if client.stream else measure
    await run(client.call, 200, concurrency)
    profiler = cProfile.Profile()
    profiler.enable()
    sample = await run(client.call, n, concurrency)
    profiler.disable()
    entries = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    what = f"stream_task calls ({sample.chunks_per_call:g} content chunks each)" if stream else "execute_task calls"
    print(f"cProfile, {n} {what} at concurrency {concurrency} (us per call, inflated by the profiler)")
    print(f"{'self':>8} {'cumul':>8}  function")
    ranked = sorted(entries.items(), key=lambda kv: -kv[1][2])
    for (path, line, fn), (_cc, _nc, tt, ct, _callers) in [kv for kv in ranked if "/app/" in kv[0][0]][:20]:
        print(f"{tt / n * 1e6:8.1f} {ct / n * 1e6:8.1f}  {Path(path).relative_to(ROOT)}:{line}({fn})")
    for (path, line, fn), (_cc, _nc, tt, ct, _callers) in ranked[:12]:
        print(f"{tt / n * 1e6:8.1f} {ct / n * 1e6:8.1f}  {path.split('site-packages/')[-1]}:{line}({fn})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000, help="calls per client per round at concurrency > 1")
    parser.add_argument("--calls-c1", type=int, default=500, help="calls per client per round at concurrency 1")
    parser.add_argument("--concurrency", type=lambda t: [int(x) for x in t.split(",")], default=[1, 50, 200])
    parser.add_argument(
        "--limits",
        default="aiohttp:512/256",
        help="http_client pools, comma-separated: "
        "aiohttp:total/keepalive (HTTP_TRANSPORT=aiohttp, the default) or total/keepalive (httpx); "
        "the first for the table (default: what the provider ships), all of them for a sweep",
    )
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--stream-concurrency", type=lambda t: [int(x) for x in t.split(",")], default=[1, 50])
    parser.add_argument("--stream-calls", type=int, default=600, help="streams per client per round, concurrency > 1")
    parser.add_argument("--stream-calls-c1", type=int, default=300, help="streams per client per round, concurrency 1")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--no-stream", action="store_true", help="skip the streaming rows")
    only.add_argument(
        "--stream-only",
        action="store_true",
        help="only the streaming rows (with --profile: profile stream_task instead of execute_task)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the router instead of benchmarking")
    parser.add_argument("--profile-calls", type=int, default=3000)
    args = parser.parse_args()
    models = list(dict.fromkeys(m for chain in ai_models.MODEL_REGISTRY.values() for m in chain))
    with tempfile.TemporaryDirectory() as tmp, simulator(models, Path(tmp)) as base_url:
        db = Path(tmp) / "bench.db"
        if args.profile:
            asyncio.run(
                profile(
                    base_url, db, args.profile_calls, args.limits.split(",")[0], args.concurrency[0], args.stream_only
                )
            )
            return 0
        print(f"command: python bench/overhead.py {' '.join(sys.argv[1:])}".rstrip())
        return asyncio.run(bench(args, base_url, db))


if __name__ == "__main__":
    sys.exit(main())

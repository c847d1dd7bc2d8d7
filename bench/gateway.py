"""The gateway side by side: the library called directly, `taskrouter serve`, and LiteLLM's proxy. Run by hand.

    python bench/gateway.py                                        # the table (a few minutes)
    python bench/gateway.py --litellm /tmp/litellm-venv/bin/litellm  # with LiteLLM's proxy from its own venv
    python bench/gateway.py --profile                              # where the gateway process's time goes

Every contender calls the same task (`fast`, its first model answering) on one Groq-compatible simulator in its own
process (bench/_common.py's, zero latency, no faults):

- **library**: `Router.execute` in this process, attempt logging on; the HTTP servers' baseline.
- **taskrouter serve**: the command as a user runs it (uvicorn, 1 worker), in its own process, attempt logging on,
  on its shipped settings, with an API key made by `taskrouter keys create` checked on every request.
- **HTTP floor**: `GET /healthz` on that same server: the HTTP round trip of FastAPI's simplest route, what any
  gateway costs before its own work.
- **LiteLLM proxy**: `litellm --config` (1 worker) with the same chain (the first model, the fallback list behind
  it, no retries), pointed at the simulator's OpenAI-compatible URL, its master key checked (it has no database for
  virtual keys). The proxy's `[proxy]` extra is heavy, so it lives in a venv of its own: --litellm names its
  executable, and the row is skipped, saying why, when it is absent.

`--no-auth` serves both without keys; `--no-auth-row` adds a second `taskrouter serve`, without keys, beside the
keyed one, to price the key check side by side. Every HTTP contender (the chat path, the floor, LiteLLM's proxy)
gets the same load generator in this process, posting the same body. By default (`--client raw`) it is a minimal
asyncio HTTP/1.1 client: one keep-alive connection per concurrent worker, the request's bytes encoded once, the
status line and headers read up to the blank line, then exactly Content-Length bytes; the answer's JSON is parsed to
verify it after the request's clock stops. The target is the latency the gateway adds, not the client's: at
concurrency 1 the client's CPU sits in every request's latency, and an HTTP library's own (httpx, on any transport)
is more than the target on this kind of machine, so it would hide what the gateway does. --client aiohttp (httpx on
aiohttp's transport, as the router's SDK client) and --client httpx (httpx's own pool) remain for comparison.
Rounds are interleaved (the order reversed every other round) and every figure is the median over rounds; the
ratios are made within each round (same moment, same machine state) and their spread over rounds is printed beside
them. "server CPU us/req" is the server process's CPU (user + system, every thread, read from /proc) per request;
for the library it is this process's CPU, which then carries the client's work too. "client CPU us/req" is this
process's CPU per request: the load generator's share, the same code for both servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402
import httpx  # noqa: E402
from _common import KEY, cpu_name  # noqa: E402

from app.config import load_settings  # noqa: E402
from app.core import ai_models  # noqa: E402
from app.core.router import Router  # noqa: E402

Call = Callable[[], Awaitable[object]]  # returns what its contender's `check` verifies, outside the timing
Check = Callable[[object], None]
MESSAGES = [{"role": "user", "content": "Classify this ticket as billing, bug or question: my invoice is wrong"}]
MAX_TOKENS = 64
TASK = "fast"
TARGET_RATIO_AT_50 = 5.0  # taskrouter serve's req/s over LiteLLM proxy's, concurrency 50
TARGET_ADDED_P50_MS = 1.0  # taskrouter serve's p50 over the library's, concurrency 1
LIBRARY, GATEWAY, FLOOR, LITELLM = (
    "library (Router.execute)",
    "taskrouter serve",
    "HTTP floor: GET /healthz",
    "LiteLLM proxy",
)
NO_KEY = "taskrouter serve --no-auth"
_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) process `pid` and its children alive now have used so far."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return total


@dataclass
class Sample:
    seconds: float
    client_cpu: float  # this process's CPU seconds
    server_cpu: float  # the server process's; this process's for the library
    sim_cpu: float  # the simulator process's
    latencies: list[float]

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def per_call_us(self, cpu: float) -> float:
        return cpu / len(self.latencies) * 1e6


@dataclass
class Contender:
    name: str
    call: Call
    pid: int | None  # the server process; None: the library, in this process
    check: Check | None = None  # verifies a call's answer after its latency is taken
    samples: dict[int, list[Sample]] = field(default_factory=dict)
    calls: int = 0

    def median(self, c: int, fn: Callable[[Sample], float]) -> float:
        return statistics.median(fn(s) for s in self.samples[c])


async def measure(contender: Contender, n: int, concurrency: int, sim_pid: int) -> Sample:
    latencies: list[float] = []
    remaining = iter(range(n))
    call, check = contender.call, contender.check

    async def worker() -> None:
        for _ in remaining:
            t0 = time.perf_counter()
            answer = await call()
            latencies.append(time.perf_counter() - t0)
            if check is not None:
                check(answer)

    server = contender.pid
    sim, server_cpu = process_cpu(sim_pid), process_cpu(server) if server is not None else 0.0  # before the clocks
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds, client = time.perf_counter() - started, time.process_time() - cpu
    served = process_cpu(server) - server_cpu if server is not None else client
    contender.calls += n
    return Sample(seconds, client, served, process_cpu(sim_pid) - sim, latencies)


# -- the contenders ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(argv: list[str], env: dict[str, str], cwd: Path, ready_url: str, name: str) -> Iterator[int]:
    """Run a server process until the block ends (SIGTERM, then its exit); yields its pid once `ready_url` answers."""
    log = (cwd / f"{name}.log").open("w")
    proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited {proc.returncode}: {(cwd / f'{name}.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer {ready_url} within 120 s")
            time.sleep(0.2)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def gateway_command(port: int, *, no_auth: bool) -> list[str]:
    taskrouter = Path(sys.executable).with_name("taskrouter")
    return [str(taskrouter), "serve", "--host", "127.0.0.1", "--port", str(port)] + (["--no-auth"] if no_auth else [])


def gateway_env(base_url: str, db: Path) -> dict[str, str]:
    return {"GROQ_API_KEY": KEY, "GROQ_BASE_URL": base_url, "ATTEMPTS_DB_PATH": str(db)}


def litellm_config(openai_base_url: str, chain: list[str]) -> str:
    """The same chain as the task's: its first model, the rest as fallbacks; no retries, no database, no key."""
    names = [TASK] + [f"{TASK}-fallback-{i}" for i in range(1, len(chain))]
    models = "".join(
        f"  - model_name: {name}\n"
        f"    litellm_params:\n"
        f"      model: openai/{model}\n"
        f"      api_base: {openai_base_url}\n"
        f"      api_key: {KEY}\n"
        for name, model in zip(names, chain, strict=True)
    )
    fallbacks = f"  fallbacks: [{{{TASK}: [{', '.join(names[1:])}]}}]\n" if len(names) > 1 else ""
    return (
        f"model_list:\n{models}"
        f"router_settings:\n  num_retries: 0\n{fallbacks}"
        "litellm_settings:\n  num_retries: 0\n  telemetry: false\n  drop_params: true\n"
    )


LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR"}


def litellm_auth(*, no_auth: bool) -> tuple[dict[str, str], str | None]:
    """The proxy's environment and the key a client sends: its master key (it has no database for virtual keys),
    or none with --no-auth, as taskrouter serve then asks for none."""
    if no_auth:
        return {**LITELLM_ENV, "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true"}, None
    key = f"sk-{secrets.token_hex(32)}"
    return {**LITELLM_ENV, "LITELLM_MASTER_KEY": key}, key


def gateway_key(env: dict[str, str], cwd: Path) -> str:
    """A key made the way a user makes one, in the store the gateway will read."""
    taskrouter = Path(sys.executable).with_name("taskrouter")
    out = subprocess.run(
        [str(taskrouter), "keys", "create", "bench"], env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True
    )
    key = next((line.strip() for line in out.stdout.splitlines() if line.startswith("tr-")), None)
    if out.returncode != 0 or key is None:
        raise RuntimeError(f"taskrouter keys create failed ({out.returncode}): {out.stderr[-1000:]}")
    return key


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float  # monotonic


class RawClient:
    """The lean load generator: HTTP/1.1 with keep-alive over asyncio streams, nothing else. A request takes an idle
    connection to its server or opens one, so there are as many as concurrent workers; one idle for IDLE_SECONDS is
    closed rather than reused, before a server's keep-alive timeout (uvicorn's is 5 s) could close it under a
    request while another contender has the machine. The request is bytes made once (`request_bytes`)."""

    IDLE_SECONDS = 1.0

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    async def _connection(self, host: str, port: int) -> _Connection:
        idle = self._idle.setdefault((host, port), [])
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if now - conn.idle_since < self.IDLE_SECONDS and not conn.reader.at_eof():
                return conn
            conn.writer.close()
        reader, writer = await asyncio.open_connection(host, port)  # asyncio sets TCP_NODELAY
        return _Connection(reader, writer, now)

    async def send(self, host: str, port: int, request: bytes) -> tuple[int, bytes]:
        """The status and body of the answer to `request`, a whole HTTP/1.1 message."""
        conn = await self._connection(host, port)
        reader = conn.reader
        conn.writer.write(request)  # far below the transport's high-water mark: nothing to drain
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = -1, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if length >= 0:
            body = await reader.readexactly(length)
        elif chunked:
            body = await _chunked_body(reader)
        else:
            body, close = await reader.read(), True
        if close:
            conn.writer.close()
        else:
            conn.idle_since = time.monotonic()
            self._idle[(host, port)].append(conn)
        return status, body

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.writer.close()
            idle.clear()


async def _chunked_body(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await _trailers(reader)
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _trailers(reader: asyncio.StreamReader) -> None:
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass


def request_bytes(method: str, url: str, body: bytes | None, key: str | None) -> bytes:
    parts = urlsplit(url)
    head = f"{method} {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
    if key:
        head += f"authorization: Bearer {key}\r\n"
    if body is not None:
        head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return (head + "\r\n").encode("latin-1") + (body or b"")


def raw_call(client: RawClient, url: str, method: str, body: bytes | None, key: str | None) -> Call:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = request_bytes(method, url, body, key)

    async def call() -> object:
        status, answer = await client.send(host, port, request)
        if status != 200:
            raise RuntimeError(f"{url} answered {status}: {answer[:500]!r}")
        return answer

    return call


def check_completion(answer: object) -> None:
    """The answer is a chat completion with a message (its JSON parsed here, after the request's clock stopped)."""
    assert isinstance(answer, bytes)
    content = json.loads(answer)["choices"][0]["message"]["content"]
    if not isinstance(content, str) or not content:
        raise RuntimeError(f"a chat completion without a message: {answer[:500]!r}")


def check_health(answer: object) -> None:
    assert isinstance(answer, bytes)
    if json.loads(answer) != {"status": "ok"}:
        raise RuntimeError(f"/healthz answered {answer[:500]!r}")


def chat_body() -> bytes:
    return json.dumps({"model": TASK, "messages": MESSAGES, "max_tokens": MAX_TOKENS}).encode()


def load_generator(transport: str, limits: httpx.Limits) -> httpx.AsyncClient:
    """One httpx AsyncClient for both servers. On aiohttp's transport (the one the router ships with, groq's
    DefaultAioHttpClient) by default: httpx's own pool spends more CPU per request at concurrency 50 than the gateway
    does, so on a small machine it, not the server, would set the pace."""
    if transport == "aiohttp":
        import groq

        return groq.DefaultAioHttpClient(limits=limits, timeout=60)
    return httpx.AsyncClient(limits=limits, timeout=60)


def http_call(client: httpx.AsyncClient, url: str, key: str | None) -> Call:
    body = chat_body()
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {key}"} if key else {})}

    async def call() -> object:
        reply = await client.post(url, content=body, headers=headers)
        if reply.status_code != 200:
            raise RuntimeError(f"{url} answered {reply.status_code}: {reply.text[:500]}")
        return reply.content

    return call


def floor_call(client: httpx.AsyncClient, url: str) -> Call:
    """The HTTP round trip alone, on the same server and client: what any gateway adds before doing anything."""

    async def call() -> object:
        reply = await client.get(url)
        if reply.status_code != 200:
            raise RuntimeError(f"{url} answered {reply.status_code}")
        return reply.content

    return call


class LoadGenerator:
    """The HTTP contenders' calls, all from one client: the raw one, or an httpx AsyncClient (--client)."""

    def __init__(self, kind: str, limits: httpx.Limits) -> None:
        self.kind = kind
        self._raw = RawClient() if kind == "raw" else None
        self._httpx = None if kind == "raw" else load_generator(kind, limits)

    def chat(self, url: str, key: str | None) -> Call:
        if self._raw is not None:
            return raw_call(self._raw, url, "POST", chat_body(), key)
        assert self._httpx is not None
        return http_call(self._httpx, url, key)

    def get(self, url: str) -> Call:
        if self._raw is not None:
            return raw_call(self._raw, url, "GET", None, None)
        assert self._httpx is not None
        return floor_call(self._httpx, url)

    async def aclose(self) -> None:
        if self._raw is not None:
            await self._raw.aclose()
        if self._httpx is not None:
            await self._httpx.aclose()


def library_call(router: Router) -> Call:
    async def call() -> None:
        await router.execute(TASK, MESSAGES, max_tokens=MAX_TOKENS)

    return call


# -- rounds and the table ---------------------------------------------------------------------------------


async def interleaved(
    contenders: list[Contender], concurrencies: list[int], rounds: int, calls: dict[int, int], sim_pid: int
) -> None:
    for c in concurrencies:
        for contender in contenders:  # warm-up: connections opened, caches filled, nothing recorded
            await measure(contender, min(calls[c], 200), c, sim_pid)
        for r in range(rounds):
            for contender in contenders if r % 2 == 0 else contenders[::-1]:
                contender.samples.setdefault(c, []).append(await measure(contender, calls[c], c, sim_pid))
            print(f"  concurrency {c}: round {r + 1}/{rounds}", file=sys.stderr, flush=True)


def paired(a: Contender, b: Contender, c: int, fn: Callable[[Sample, Sample], float]) -> list[float]:
    """A comparison made within each round, one value per round."""
    return [fn(x, y) for x, y in zip(a.samples[c], b.samples[c], strict=True)]


def spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} (rounds {min(values):{fmt}} .. {max(values):{fmt}})"


def table(contenders: list[Contender], concurrencies: list[int]) -> list[str]:
    library = contenders[0]
    rows = [
        (
            "contender",
            "conc",
            "req/s",
            "p50 ms",
            "p99 ms",
            "server CPU us/req",
            "client CPU us/req",
            "added p50 ms",
            "req/s vs library",
            "sim busy",
        )
    ]
    for c in concurrencies:
        for x in contenders:
            own = x is library or x.name == FLOOR
            added = "-" if own else f"{statistics.median(paired(x, library, c, ADDED_P50_MS)):.3f}"
            ratio = "-" if own else f"{statistics.median(paired(x, library, c, RATIO)):.3f}"
            rows.append(
                (
                    x.name,
                    str(c),
                    f"{x.median(c, lambda s: s.rps):,.0f}",
                    f"{x.median(c, lambda s: s.pct(50)) * 1e3:.2f}",
                    f"{x.median(c, lambda s: s.pct(99)) * 1e3:.2f}",
                    f"{x.median(c, lambda s: s.per_call_us(s.server_cpu)):,.0f}",
                    "-" if x is library else f"{x.median(c, lambda s: s.per_call_us(s.client_cpu)):,.0f}",
                    added,
                    ratio,
                    f"{x.median(c, lambda s: s.sim_cpu / s.seconds):.0%}",
                )
            )
    return markdown(rows)


def markdown(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(
            v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )

    rule = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return [line(rows[0]) + " |", rule, *(line(r) + " |" for r in rows[1:])]


CLIENTS = {
    "raw": "the minimal asyncio HTTP/1.1 keep-alive client (RawClient)",
    "aiohttp": "one httpx AsyncClient on aiohttp's transport",
    "httpx": "one httpx AsyncClient on httpx's own transport",
}
ADDED_P50_MS = lambda s, b: (s.pct(50) - b.pct(50)) * 1e3  # noqa: E731
RATIO = lambda s, b: s.rps / b.rps  # noqa: E731


def verdicts(contenders: list[Contender], concurrencies: list[int], skipped: str | None) -> tuple[list[str], bool]:
    by_name = {x.name: x for x in contenders}
    library, gateway = by_name[LIBRARY], by_name[GATEWAY]
    lines, met = [], True
    if 1 in concurrencies:
        added = paired(gateway, library, 1, ADDED_P50_MS)
        ok = statistics.median(added) < TARGET_ADDED_P50_MS
        met &= ok
        lines.append(
            f"added p50 of taskrouter serve over the library at concurrency 1: {spread(added, '.3f')} ms "
            f"(target < {TARGET_ADDED_P50_MS:g}) -> {'OK' if ok else 'MISSED'}"
        )
        floor = [s.pct(50) * 1e3 for s in by_name[FLOOR].samples[1]]
        lines.append(
            f"  the HTTP round trip alone (GET /healthz, FastAPI's simplest route, same server and client): p50 "
            f"{spread(floor, '.3f')} ms"
        )
    no_key = by_name.get(NO_KEY)
    for c in concurrencies:
        if no_key is None:
            continue
        cpu = paired(gateway, no_key, c, lambda a, b: a.per_call_us(a.server_cpu) - b.per_call_us(b.server_cpu))
        p50 = paired(gateway, no_key, c, ADDED_P50_MS)
        lines.append(
            f"concurrency {c}: taskrouter serve with a key over the same without (--no-auth): server CPU "
            f"{spread(cpu, ',.0f')} us/req, p50 {spread(p50, '.3f')} ms"
        )
    lite = by_name.get(LITELLM)
    for c in concurrencies:
        if lite is None:
            continue
        ratios = paired(gateway, lite, c, RATIO)
        cpu = paired(lite, gateway, c, lambda a, b: a.server_cpu / b.server_cpu)
        line = f"concurrency {c}: req/s taskrouter serve / LiteLLM proxy {spread(ratios, '.2f')}x"
        line += f"; server CPU per request LiteLLM / taskrouter {spread(cpu, '.1f')}x"
        if c == 50:
            ok = statistics.median(ratios) >= TARGET_RATIO_AT_50
            met &= ok
            line += f" (target >= {TARGET_RATIO_AT_50:g}x) -> {'OK' if ok else 'MISSED'}"
        lines.append(line)
    if skipped:
        lines.append(skipped)
    return lines, met


def logged_rows(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])


def machine(lite_version: str | None) -> str:
    import fastapi
    import uvicorn

    loops = []
    for extra in ("uvloop", "httptools"):
        with contextlib.suppress(ImportError):
            loops.append(f"{extra} {__import__(extra).__version__}")
    return (
        f"{cpu_name()}, {os.cpu_count()} logical cores, Python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}; fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__}"
        f"{', ' + ', '.join(loops) if loops else ''}, httpx {httpx.__version__}"
        f"{f'; LiteLLM {lite_version}' if lite_version else ''}"
    )


def litellm_version(executable: Path) -> str | None:
    python = executable.with_name("python")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.stdout.strip() or None
    return None


# -- the run ----------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, tmp: Path, sim: _common.SimulatorProcess, chain: list[str]) -> int:
    calls = {c: args.calls_c1 if c == 1 else args.calls for c in args.concurrency}
    settings = load_settings(
        env_file=None,
        groq_api_key=KEY,
        groq_base_url=sim.base_url,
        attempts_db_path=tmp / "library.db",
        force_model=None,
        default_models={},
        daily_budget_usd=None,
    )
    router = Router(settings)
    # Idle connections are dropped before a server's keep-alive timeout (uvicorn's is 5 s) could close one under a
    # request while another contender has the machine.
    limits = httpx.Limits(
        max_connections=max(args.concurrency) * 2, max_keepalive_connections=max(args.concurrency), keepalive_expiry=1
    )
    client = LoadGenerator(args.client, limits)
    contenders = [Contender(LIBRARY, library_call(router), None)]
    gateway_db = tmp / "gateway.db"
    skipped: str | None = None
    lite_version: str | None = None
    with contextlib.ExitStack() as stack:
        port, env = free_port(), gateway_env(sim.base_url, gateway_db)
        key = None if args.no_auth else gateway_key(env, tmp)
        argv = gateway_command(port, no_auth=args.no_auth)
        pid = stack.enter_context(server(argv, env, tmp, f"http://127.0.0.1:{port}/healthz", "gateway"))
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        contenders.append(Contender(GATEWAY, client.chat(url, key), pid, check_completion))
        contenders.append(Contender(FLOOR, client.get(f"http://127.0.0.1:{port}/healthz"), pid, check_health))
        if args.no_auth_row and key is not None:  # the same server without keys, side by side
            nport, ndb = free_port(), tmp / "gateway-no-auth.db"
            npid = stack.enter_context(
                server(
                    gateway_command(nport, no_auth=True),
                    gateway_env(sim.base_url, ndb),
                    tmp,
                    f"http://127.0.0.1:{nport}/healthz",
                    "gateway-no-auth",
                )
            )
            nurl = f"http://127.0.0.1:{nport}/v1/chat/completions"
            contenders.append(Contender(NO_KEY, client.chat(nurl, None), npid, check_completion))
        executable = Path(args.litellm) if args.litellm else None
        if executable is None:
            skipped = "LiteLLM proxy skipped: no --litellm executable given"
        elif not executable.is_file():
            skipped = (
                f"LiteLLM proxy skipped: {executable} does not exist (install litellm[proxy] in a venv of its own)"
            )
        else:
            lite_version = litellm_version(executable)
            config = tmp / "litellm.yaml"
            config.write_text(litellm_config(sim.openai_base_url, chain))
            lport = free_port()
            argv = [str(executable), "--config", str(config), "--host", "127.0.0.1", "--port", str(lport)]
            argv += ["--num_workers", "1"]
            lenv, lkey = litellm_auth(no_auth=args.no_auth)
            lpid = stack.enter_context(
                server(argv, lenv, tmp, f"http://127.0.0.1:{lport}/health/liveliness", "litellm")
            )
            url = f"http://127.0.0.1:{lport}/v1/chat/completions"
            contenders.append(Contender(LITELLM, client.chat(url, lkey), lpid, check_completion))
        print(f"simulator {sim.base_url}; task {TASK} -> {chain[0]}", file=sys.stderr, flush=True)
        await interleaved(contenders, args.concurrency, args.rounds, calls, sim.pid)
    await client.aclose()
    await router.aclose()
    rows = logged_rows(gateway_db)
    served = contenders[1].calls  # the chat requests: the floor's GETs log nothing
    log_line = f"attempt rows the gateway logged: {rows:,} for {served:,} requests (warm-ups included) -> "
    log_line += "OK" if rows == served else "MISSING ROWS"
    lines, met = verdicts(contenders, args.concurrency, skipped)
    print(f"machine: {machine(lite_version)}")
    print(
        f"simulator: separate process, zero latency; requests per round {calls}; {args.rounds} interleaved rounds, "
        f"medians; {CLIENTS[args.client]} drives both HTTP servers; "
        + ("no keys (--no-auth)\n" if args.no_auth else "each checks a key (an API key; LiteLLM's master key)\n")
    )
    print("\n".join(table(contenders, args.concurrency)))
    print("\n" + "\n".join([log_line, *lines]))
    return 0 if met and rows == served else 1


async def profile(args: argparse.Namespace, tmp: Path, sim: _common.SimulatorProcess) -> int:
    """The gateway application (no keys) under uvicorn in this process's own loop and under cProfile, driven by the
    same load generator, client and server profiled together; prints the functions with the most own time."""
    import cProfile
    import pstats

    import uvicorn

    from app.gateway import create_app

    settings = load_settings(
        env_file=None, **{k.lower(): v for k, v in gateway_env(sim.base_url, tmp / "p.db").items()}
    )
    port = free_port()
    config = uvicorn.Config(create_app(settings, require_keys=False), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    task = asyncio.ensure_future(uv.serve())
    while not uv.started:
        await asyncio.sleep(0.05)
    client = LoadGenerator(args.client, httpx.Limits())
    call = client.chat(f"http://127.0.0.1:{port}/v1/chat/completions", None)
    contender = Contender(GATEWAY, call, None, check_completion)
    c = args.concurrency[0]
    await measure(contender, 200, c, sim.pid)
    profiler = cProfile.Profile()
    profiler.enable()
    await measure(contender, args.profile_calls, c, sim.pid)
    profiler.disable()
    await client.aclose()
    uv.should_exit = True
    await task
    n = args.profile_calls
    entries = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    print(f"cProfile, {n} requests at concurrency {c}, client and server in one process (us per request)")
    print(f"{'self':>8} {'cumul':>8}  function")
    ranked = sorted(entries.items(), key=lambda kv: -kv[1][3 if args.profile_match else 2])
    if args.profile_match:  # the functions of these files only, by cumulative time
        ranked = [e for e in ranked if any(m in e[0][0] for m in args.profile_match.split(","))]
    for (path, line, fn), (_cc, _nc, tt, ct, _callers) in ranked[: args.profile_top]:
        print(f"{tt / n * 1e6:8.1f} {ct / n * 1e6:8.1f}  {path.split('site-packages/')[-1]}:{line}({fn})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--litellm", help="LiteLLM proxy's `litellm` executable (its own venv); absent: skipped")
    parser.add_argument(
        "--no-auth", action="store_true", help="serve both without keys (default: each checks a key per request)"
    )
    parser.add_argument(
        "--client",
        choices=list(CLIENTS),
        default="raw",
        help="the HTTP load generator (default: raw, the minimal asyncio HTTP/1.1 client)",
    )
    parser.add_argument(
        "--no-auth-row",
        action="store_true",
        help="add a second taskrouter serve, without keys (--no-auth), to price the key check side by side",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000, help="requests per contender per round at concurrency > 1")
    parser.add_argument("--calls-c1", type=int, default=300, help="requests per contender per round at concurrency 1")
    parser.add_argument("--concurrency", type=lambda t: [int(x) for x in t.split(",")], default=[1, 50])
    parser.add_argument("--profile", action="store_true", help="cProfile the gateway instead of benchmarking")
    parser.add_argument("--profile-calls", type=int, default=2000)
    parser.add_argument("--profile-top", type=int, default=40)
    parser.add_argument(
        "--profile-match", help="comma-separated parts of file paths: only their functions, by cumulative time"
    )
    args = parser.parse_args()
    chain = list(dict.fromkeys(ai_models.MODEL_REGISTRY[TASK] + ai_models.MODEL_REGISTRY.get("fallback", [])))
    models = list(dict.fromkeys(m for c in ai_models.MODEL_REGISTRY.values() for m in c))
    profiles = "".join(f'[models."{m}"]\nlatency_ms = 0.0\n\n' for m in models)
    with tempfile.TemporaryDirectory() as tmp, _common.simulator(profiles, Path(tmp), "gateway_profiles") as sim:
        if args.profile:
            return asyncio.run(profile(args, Path(tmp), sim))
        print(f"command: python bench/gateway.py {' '.join(sys.argv[1:])}".rstrip())
        return asyncio.run(run(args, Path(tmp), sim, chain))


if __name__ == "__main__":
    sys.exit(main())

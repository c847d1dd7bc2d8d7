"""Not a benchmark: the simulator process the benchmarks share, started and stopped the same way by each.

A benchmark's simulator runs in a process of its own, so that it does not share the measured clients' GIL: this
file run as a script serves a profiles file on a free 127.0.0.1 port, prints its base URL on the first line, answers
a `calls` line on stdin with the calls each model received, and stops when stdin closes (the parent closed it, or
died, so no simulator outlives its benchmark). `simulator()` is the parent's side. The scripts in bench/ import it
as `_common` (their own folder is on sys.path).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
KEY = "gsk_bench_simulator_only"  # the simulator takes any key; the SDKs want one


@dataclass(frozen=True, slots=True)
class SimulatorProcess:
    proc: subprocess.Popen[str]
    base_url: str  # http://127.0.0.1:<port>, the root: the groq SDK adds /openai/v1

    @property
    def openai_base_url(self) -> str:
        """For OpenAI SDKs and LiteLLM."""
        return f"{self.base_url}/v1"

    @property
    def port(self) -> int:
        port = urlsplit(self.base_url).port
        assert port is not None
        return port

    @property
    def pid(self) -> int:
        return self.proc.pid

    def calls(self) -> int:
        """Provider calls the simulator has received so far, every model's."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("calls\n")
        self.proc.stdin.flush()
        return sum(json.loads(self.proc.stdout.readline()).values())


@contextlib.contextmanager
def simulator(profiles: str, workdir: Path, name: str, *, seed: int = 0) -> Iterator[SimulatorProcess]:
    """Serve `profiles` (TOML text, written to workdir/<name>.toml) from this file run as a script, seeded with
    `seed`; stopped at the end of the block."""
    path = workdir / f"{name}.toml"
    path.write_text(profiles)
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), str(path), "--seed", str(seed)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()  # the first line, once it is serving
        if not base_url.startswith("http"):
            raise RuntimeError(f"simulator did not start (exit {proc.poll()}, said {base_url!r})")
        yield SimulatorProcess(proc, base_url)
    finally:
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def cpu_name() -> str:
    """The processor's model name, for the machine line every benchmark prints."""
    with contextlib.suppress(OSError, StopIteration):
        return next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return platform.processor() or "unknown CPU"


def serve(profiles: Path, seed: int) -> int:
    """The child process's whole life (see the module's docstring)."""
    sys.path.insert(0, str(ROOT))
    from app.simulator import Simulator
    from app.simulator.profiles import load_profiles

    models = list(load_profiles(profiles))
    sim = Simulator.from_toml(profiles, seed=seed, max_records=100)  # nobody reads the log: keep little of it
    sim.start()
    try:
        print(sim.base_url, flush=True)
        for line in sys.stdin:  # EOF ends the server
            if line.strip() == "calls":
                print(json.dumps({m: sim.calls(m) for m in models}), flush=True)
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", type=Path, help="a TOML file of model profiles")
    parser.add_argument("--seed", type=int, default=0, help="seeds fault and latency draws (0)")
    args = parser.parse_args()
    sys.exit(serve(args.profiles, args.seed))

"""How long `import app` takes, measured with `python -X importtime`, this work tree beside a base revision.

    python bench/import_time.py                 # against f87dc2e (before the heavy imports were made lazy)
    python bench/import_time.py --base HEAD~1 --runs 30

Each run is a fresh interpreter (`python -X importtime -c "import app"`, PYTHONPATH set to the tree, from a scratch
directory); the figure is the cumulative time of the `app` line, median over runs, base and new alternating.
It also lists which heavy dependencies `import app` loaded. Target: under 200 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from own_cpu import base_tree, git

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("groq", "pydantic", "pydantic_settings", "sqlite_utils", "pandas", "aiohttp", "httpx")
TARGET_MS = 200.0
PROBE = f"import sys, app; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"


def one(tree: Path, scratch: str) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in done.stderr.splitlines() if re.search(r"\|\s+app$", x))
    return int(line.split("|")[1]) / 1000.0, done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="f87dc2e")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, base_tree(args.base, keep=False) as (base, sha):
        for tree in (base, ROOT):  # warm the bytecode caches: the first import of a tree compiles it
            one(tree, scratch)
        times: dict[str, list[float]] = {"base": [], "new": []}
        loaded: dict[str, str] = {}
        for i in range(args.runs):
            for name, tree in (("base", base), ("new", ROOT)) if i % 2 == 0 else (("new", ROOT), ("base", base)):
                ms, heavy = one(tree, scratch)
                times[name].append(ms)
                loaded[name] = heavy
        print(f"command: python bench/import_time.py {' '.join(sys.argv[1:])}".rstrip())
        print(f"base: {git('log', '-1', '--format=%h %s', sha)[:100]}")
        print(f"new:  {git('log', '-1', '--format=%h %s')[:100]} (the work tree)\n")
        print("| tree | import app, median ms | min | max | heavy modules loaded |")
        print("|---|---:|---:|---:|---|")
        for name in ("base", "new"):
            t = times[name]
            print(f"| {name} | {statistics.median(t):.0f} | {min(t):.0f} | {max(t):.0f} | {loaded[name] or 'none'} |")
        new = statistics.median(times["new"])
        print(
            f"\nnew/base {new / statistics.median(times['base']):.2f}; target (< {TARGET_MS:.0f} ms): "
            f"{'OK' if new < TARGET_MS else 'MISSED'}"
        )
        return 0 if new < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())

"""The files of this project one warm `execute_task` call passes through, on the calling thread. Run by hand.

    python bench/call_path.py            # the count, and the sequence of file changes
    python bench/call_path.py --quiet    # the count only

A `sys.setprofile` hook records, for every Python function call and return on the calling thread, the file of the
frame; consecutive frames in the same file are one visit. Only the project's files (app/, dashboard/) count: the SDK,
httpx and the standard library are left out. The call runs against the in-process simulator through the real SDK,
after one warm-up call (the router built, the connection open), with the attempt log on a temporary SQLite file.
Issue 22's target: at most 12 files and 25 file changes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OURS = (str(ROOT / "app") + os.sep, str(ROOT / "dashboard") + os.sep)


def trace_one_call() -> list[str]:
    from app.simulator import ModelProfile, Simulator

    key = "gsk_bench_0123456789abcdef"
    with Simulator(api_key=key, default_profile=ModelProfile()) as sim, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(GROQ_API_KEY=key, GROQ_BASE_URL=sim.base_url, ATTEMPTS_DB_PATH=str(Path(tmp) / "attempts.db"))
        import app

        messages = [{"role": "user", "content": "hello"}]
        visits: list[str] = []

        def hook(frame, event, arg) -> None:  # type: ignore[no-untyped-def]
            if event not in ("call", "return"):
                return
            path = frame.f_code.co_filename
            if not path.startswith(OURS):
                return
            rel = str(Path(path).relative_to(ROOT))
            if not visits or visits[-1] != rel:
                visits.append(rel)

        async def main() -> None:
            await app.execute_task("fast", messages)  # warm: the router, the client, the connection
            sys.setprofile(hook)
            try:
                await app.execute_task("fast", messages)
            finally:
                sys.setprofile(None)
            await app.get_router().aclose()

        asyncio.run(main())
        app.flush_attempt_log()
        return visits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    visits = trace_one_call()
    files = sorted(set(visits))
    if not args.quiet:
        print(" -> ".join(visits))
        print()
        for name in files:
            print(f"  {visits.count(name):3d}  {name}")
    print(f"files: {len(files)} (target <= 12), file changes: {len(visits) - 1} (target <= 25)")


if __name__ == "__main__":
    main()

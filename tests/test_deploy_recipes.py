"""The shipped recipes for running the gateway (deploy/systemd, deploy/container) run the command they name as
`taskrouter serve` parses it, stop the way its shutdown needs, and leave secrets out of an image."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import build_parser
from app.commands.serve import check_exposure

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "systemd" / "taskrouter.service"
CONTAINERFILE = ROOT / "deploy" / "container" / "Containerfile"
IGNORE = ROOT / "deploy" / "container" / "Containerfile.dockerignore"


def _unit_value(name: str) -> str:
    values = re.findall(rf"^{name}=(.*)$", UNIT.read_text(), flags=re.M)
    assert len(values) == 1, f"{name} set {len(values)} times in {UNIT.name}"
    return values[0]


def _serve_args(command: list[str]) -> object:
    assert Path(command[0]).name == "taskrouter" and command[1] == "serve", command
    return build_parser().parse_args(command[1:])


def _container_cmd() -> list[str]:
    (line,) = [line for line in CONTAINERFILE.read_text().splitlines() if line.startswith("CMD ")]
    command = json.loads(line.removeprefix("CMD "))
    assert isinstance(command, list)
    return command


def test_the_unit_serves_with_keys_and_outlasts_the_grace_period() -> None:
    args = _serve_args(_unit_value("ExecStart").split())
    assert (args.host, args.port, args.workers, args.grace_seconds, args.no_auth) == ("127.0.0.1", 8080, 4, 30.0, False)
    # systemd's stop timeout above the grace period: it never kills a worker still finishing requests or writing rows.
    assert float(_unit_value("TimeoutStopSec")) > args.grace_seconds
    assert _unit_value("KillSignal") == "SIGTERM"
    assert _unit_value("StateDirectory") == "taskrouter"
    assert _unit_value("WorkingDirectory") == "/var/lib/taskrouter"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # ExecStart pointed at this environment's taskrouter: verify checks that the command exists and is executable.
    taskrouter = Path(sys.executable).with_name("taskrouter")
    unit = tmp_path / "taskrouter.service"
    unit.write_text(UNIT.read_text().replace("/opt/taskrouter/.venv/bin/taskrouter", str(taskrouter)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip()) == (0, "")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    unit = tmp_path / "taskrouter.service"
    unit.write_text(UNIT.read_text().replace("KillMode=mixed", "KillMode=sometimes"))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert "KillMode" in done.stderr or "kill mode" in done.stderr


def test_the_container_serves_on_every_interface_with_keys_required() -> None:
    args = _serve_args(_container_cmd())
    assert (args.host, args.port, args.no_auth) == ("0.0.0.0", 8080, False)
    check_exposure(args.host, no_auth=args.no_auth)  # keys required: serving on every interface is allowed
    text = CONTAINERFILE.read_text()
    assert "STOPSIGNAL SIGTERM" in text
    assert "EXPOSE 8080" in text
    assert re.search(r"^USER taskrouter$", text, flags=re.M), "the server runs as its own user, not root"
    assert "/readyz" in text


def test_the_image_leaves_out_the_local_environment_and_its_secrets() -> None:
    ignored = {line for line in IGNORE.read_text().splitlines() if line and not line.startswith("#")}
    # .env holds GROQ_API_KEY; a store or a spill file holds prompts; a virtualenv is the builder's, not the image's.
    assert {".env", "**/.venv", "**/*.db", "**/*.jsonl", ".git"} <= ignored

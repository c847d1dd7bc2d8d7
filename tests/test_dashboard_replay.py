"""A captured websocket frame of a dashboard action, replayed, does nothing: against a real `taskrouter dashboard`
process, spoken to over its websocket as the browser does (Streamlit's BackMsg/ForwardMsg protocol buffers).

One session signs in as an operator and forces a model: one audit row. Then the exact bytes it sent are sent again,
in the same session and from a new one (the sign-in frame first, with the secret in it): no second row, and the new
session is never signed in. Every admin widget's key ends in a nonce of its session, renewed after each sign-in and
each action (dashboard/admin.py), so an old frame names widgets that no longer exist."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from test_dashboard import seed_database
from websockets.sync.client import ClientConnection, connect

from app.store import open_database
from app.store.operators import create_operator
from app.store.overrides import read_active, read_audit

pytestmark = pytest.mark.slow

DONE = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def dashboard(db: Path, tmp_path: Path) -> Iterator[str]:
    """`taskrouter dashboard` on a free loopback port; yields its address (host:port)."""
    port = _free_port()
    log_path = tmp_path / "dashboard.log"
    with log_path.open("w") as log:
        env = {k: v for k, v in os.environ.items() if k != "DASHBOARD_ADMIN_TOKEN"}
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "dashboard", "--db", str(db), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).text == "ok":
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"the dashboard did not answer: {log_path.read_text()}"
                time.sleep(0.2)
            yield f"127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=15)


class Session:
    """One browser tab's websocket: sends frames, reads what the script run draws."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids: list[str] = []
        self.texts: list[str] = []

    def send(self, frame: bytes) -> None:
        """Send one frame and read until its script run (with the reruns it asks for) has finished."""
        self.ws.send(frame)
        self.ids, self.texts = [], []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = ForwardMsg()
            msg.ParseFromString(self.ws.recv(timeout=60))  # type: ignore[arg-type]
            kind = msg.WhichOneof("type")
            if kind == "script_finished" and msg.script_finished in DONE:
                return
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                body = getattr(element, element.WhichOneof("type"))
                if hasattr(body, "id") and body.id:
                    self.ids.append(body.id)
                if hasattr(body, "body"):
                    self.texts.append(str(body.body))
        raise AssertionError("the script run did not finish")

    def widget(self, name: str) -> str:
        """The id of the admin widget `name` drawn by the last run (its key ends in the session's nonce)."""
        found = [i for i in self.ids if re.search(rf"-admin_{name}_[0-9a-f]{{16}}$", i)]
        assert len(found) == 1, (name, self.ids)
        return found[0]


@contextmanager
def session(address: str) -> Iterator[Session]:
    with connect(
        f"ws://{address}/_stcore/stream",
        subprotocols=["streamlit"],  # type: ignore[list-item]
        additional_headers={"Origin": f"http://{address}"},
        open_timeout=10,
    ) as ws:
        yield Session(ws)


def frame(*states: WidgetState) -> bytes:
    msg = BackMsg()
    msg.rerun_script.query_string = "page=Tasks"
    msg.rerun_script.widget_states.widgets.extend(states)
    return msg.SerializeToString()


def text(widget_id: str, value: str) -> WidgetState:
    return WidgetState(id=widget_id, string_value=value)


def test_a_replayed_sign_in_or_action_frame_does_nothing(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    seed_database(db)
    conn = open_database(db).conn
    try:
        secret = create_operator(conn, "alice", by="ops@host")
    finally:
        conn.close()

    with dashboard(db, tmp_path) as address:
        with session(address) as first:
            first.send(frame())
            sign_in = frame(
                text(first.widget("sign_in_name"), "alice"),
                text(first.widget("sign_in_secret"), secret),
                WidgetState(id=first.widget("sign_in_go"), trigger_value=True),
            )
            first.send(sign_in)
            assert any("Signed in as" in t for t in first.texts), first.texts
            action = frame(
                text(first.widget("force_reason"), "incident"),
                WidgetState(id=first.widget("force_confirm"), bool_value=True),
                WidgetState(id=first.widget("force_go"), trigger_value=True),
            )
            first.send(action)
            assert [(a["action"], a["who"]) for a in read_audit(db)] == [
                ("force set", "alice"),
                ("operator created", "ops@host"),
            ]

            first.send(action)  # the same bytes again, in the session that sent them
            assert len(read_audit(db)) == 2

        with session(address) as second:
            second.send(sign_in)  # the captured sign-in, secret and all, from a new session
            assert not any("Signed in as" in t for t in second.texts)
            assert any(re.search(r"-admin_sign_in_go_[0-9a-f]{16}$", i) for i in second.ids)  # still asked to sign in
            second.send(action)
            assert not any(re.search(r"-admin_force_go_", i) for i in second.ids)

    assert len(read_audit(db)) == 2
    assert [(o.kind, o.reason, o.set_by) for o in read_active(db)] == [("force", "incident", "alice")]

"""What routers read back from the store, whichever the backend: the marks (`model_status`) and the overrides in
effect, as statements both backends run and the values they become. The writes and the audit trail are in
app/store/overrides.py and app/store/model_status.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FORCE = "force"
DEFAULT = "default"
DISABLE = "disable"
KINDS = (FORCE, DEFAULT, DISABLE)

MODEL_STATUS_SQL = "SELECT * FROM model_status ORDER BY model"
ACTIVE_SQL = "SELECT * FROM overrides WHERE cleared_at IS NULL AND (expires_at IS NULL OR expires_at > ?) ORDER BY id"


@dataclass(frozen=True, slots=True)
class Override:
    id: int
    kind: str
    task: str | None  # force: None = every task; default: the task; disable: None
    model: str
    reason: str
    set_by: str
    set_at: str
    expires_at: str | None

    @property
    def source(self) -> str:
        """How the attempt log names it: `runtime force #12`."""
        return f"runtime {self.kind} #{self.id}"

    def to_json(self) -> dict[str, Any]:
        """As `taskrouter status --json`, `override --json` and the gateway's management API show it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "task": self.task,
            "model": self.model,
            "reason": self.reason,
            "set_by": self.set_by,
            "set_at": self.set_at,
            "expires_at": self.expires_at,
            "source": self.source,
        }

    def describe(self) -> str:
        scope = f" for {self.task}" if self.task else (" for every task" if self.kind == FORCE else "")
        until = f" until {self.expires_at}" if self.expires_at else ""
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.kind} {self.model}{scope}{until}, set by {self.set_by} at {self.set_at}{why}"


def override_from_row(r: Any) -> Override:
    return Override(
        r["id"], r["kind"], r["task"], r["model"], r["reason"] or "", r["set_by"], r["set_at"], r["expires_at"]
    )


@dataclass(frozen=True, slots=True)
class State:
    """Marks and overrides as a store's change feed publishes them (StoreBackend.state_feed)."""

    marks: list[dict[str, Any]]
    overrides: list[Override]
    read_at: float  # time.monotonic() when read

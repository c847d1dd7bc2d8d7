"""The shared daily budget on PostgreSQL: the `spend` row of each UTC day holds `spent`, kept by the writers in the
transactions that log the rows, and `reserved`, what the hosts hold for calls they are making or about to make;
`lease` takes a share for one host atomically, so hosts together never reserve past the limit."""

from __future__ import annotations

from dataclasses import dataclass

from app.store.postgres.connection import PgConnection, connect
from app.store.postgres.database import open_server
from app.store.target import PostgresTarget


def lease(conn: PgConnection, day: str, want: float, estimate: float, limit: float) -> tuple[float, float, float]:
    """Take up to `want` of the day's budget for this host, atomically against every host: nothing when spend plus
    reservations already reach `limit`; otherwise `want`, or what is left if less, but at least `estimate` (a call
    is let through while anything is left, as on one host). Returns (granted, spent, reserved by every host after).
    One transaction with the day's row locked: hosts asking at once are served one after the other."""
    with conn:
        conn.execute("INSERT INTO spend (day) VALUES (?) ON CONFLICT (day) DO NOTHING", (day,))
        row = conn.execute("SELECT spent, reserved FROM spend WHERE day = ? FOR UPDATE", (day,)).fetchone()
        spent, reserved = (float(row[0]), float(row[1])) if row is not None else (0.0, 0.0)
        left = limit - spent - reserved
        if left <= 0:
            return 0.0, spent, reserved
        granted = max(min(want, left), estimate)
        conn.execute("UPDATE spend SET reserved = reserved + ? WHERE day = ?", (granted, day))
    return granted, spent, reserved + granted


class LeaseSession:
    """Leases on one connection whose statements give up quickly (it is used on a router's event loop)."""

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn

    def lease(self, day: str, want: float, estimate: float, limit: float) -> tuple[float, float, float]:
        return lease(self.conn, day, want, estimate, limit)

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True, slots=True)
class SpendLedger:
    target: PostgresTarget

    def open(self) -> LeaseSession:
        open_server(self.target).conn.close()  # migrated: the first call may precede the writer's open
        return LeaseSession(connect(self.target, application="taskrouter-budget", quick=True))

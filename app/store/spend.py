"""Each UTC day's spend, as the daily budget (app/core/budget.py) and the dashboard read it.

SQLite: the sum of `cost_usd` in the attempt log, read incrementally by id. PostgreSQL: the `spend` row of the
day, kept by the writers in the transactions that log the rows, beside what the hosts have reserved (the shared
ledger, app/store/postgres/spend.py).
"""

from __future__ import annotations

from app.store.backend import backend_for
from app.store.target import Target


def spent_on(where: Target | str | None, day: str, after_id: int = 0) -> tuple[float, int]:
    """(logged cost for one UTC day 'YYYY-MM-DD' in rows with id > after_id, the highest id seen or after_id);
    see StoreBackend.spent_on. No store: nothing spent."""
    if where is None:
        return 0.0, after_id
    return backend_for(where).spent_on(day, after_id)

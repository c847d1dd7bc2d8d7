"""Hedged requests (HEDGE_AFTER_MS or `hedge_after_ms=`): when an attempt has not answered in that time, the
next usable model starts beside it (the same model again when the chain has no other), and the first good
answer wins. The slower call is cancelled and logged `hedge_lost`: not a failure of its model, with its tokens
and cost when it answered too. At most two calls are in flight; each holds its own budget reservation.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from app.errors import BudgetExceededError, TaskRouterError

if TYPE_CHECKING:
    from app.core.request import Answer, Pick, Request


async def race(request: Request, first: Pick) -> Answer | None:
    """The first good answer of `first` and, if it is slow, a hedge beside it; None when neither answered."""
    lost: dict[asyncio.Task[Any], bool] = {}
    assert request.hedge_after is not None
    reservation = request.reserve(first)
    tasks = {asyncio.ensure_future(request.call(first, reservation, lost))}
    try:
        done, pending = await asyncio.wait(tasks, timeout=min(request.hedge_after, max(request.remaining(), 0.0)))
        if done:
            return done.pop().result()
        partner = request.hedge_partner(first)
        if partner is not None:
            try:
                partner_reservation = request.reserve(partner)
            except BudgetExceededError:
                partner = None  # the budget has room for the first call only: no hedge, not a failed request
            else:
                tasks.add(asyncio.ensure_future(request.call(partner, partner_reservation, lost)))
        pending = tasks
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            answers = [answer for task in done if (answer := task.result()) is not None]
            if answers:
                winner, *late = sorted(answers, key=lambda a: a.latency_ms)
                for answer in late:
                    request.lost(answer)
                lost.update(dict.fromkeys(pending, True))
                return winner
        return None
    except TaskRouterError:  # the other call's error ends the request (the key refused...): not the caller
        lost.update((task, False) for task in tasks if not task.done())
        raise
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        # Every call is logged before the request returns, the loser's `hedge_lost` row too.
        await asyncio.gather(*tasks, return_exceptions=True)

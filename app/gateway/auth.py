"""Who may call the gateway: the API keys of `taskrouter keys` (app/store/api_keys.py), sent as
`Authorization: Bearer <key>`.

- 401 (`invalid_api_key`): no key, a key the store does not know, a revoked or an expired one;
- 403 (`model_not_allowed`): a task outside the key's own list (`keys create --tasks`);
- 429 (`insufficient_quota`): the key's own daily budget is spent (beside the global DAILY_BUDGET_USD);
- 503 (`key_store_unavailable`): the store cannot be read and the key was not read before (one that was is
  admitted as last read until the store answers again);
- the management API's writes need an admin key (`admin_name`, a FastAPI dependency giving the name to audit).

Keys live in the store, so every worker and host reads the same ones. A worker keeps what it read of a key for
CACHE_SECONDS, by the key's hash, so that a request costs a hash and a dictionary look-up, not a query; a revoke
reaches every worker within that time. A key's spend of the day is the sum of its attempt rows' costs in the store
(every worker's), read again every SPEND_SECONDS; in between, the worker adds the cost of the answers it gave. As
with the global budget, spend may pass a key's limit by what the calls in flight when it is reached cost.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta

from fastapi import Request

from app.clock import Clock, iso_millis
from app.errors import BudgetExceededError
from app.gateway.errors import INVALID_REQUEST, ErrorReply
from app.store.api_keys import KEY_PREFIX, ApiKey, KeyStoreUnreadable, find_api_key, hash_key, key_spent_on
from app.store.target import Target

_EPOCH = date(1970, 1, 1)
NO_AUTH = "no-auth"  # the caller's name under `taskrouter serve --no-auth` (loopback only)
_BEARER = "bearer "
_LONGEST = 200  # characters: a key is far shorter
_HOW = "send `Authorization: Bearer <key>` with a key from `taskrouter keys create NAME`"


class KeyRefused(Exception):
    """A request the key does not admit, answered with `reply` (OpenAI's error shape); never holds the key."""

    def __init__(self, reply: ErrorReply) -> None:
        super().__init__(reply.message)
        self.reply = reply


def _keys_unreadable() -> KeyRefused:
    message = "the gateway cannot read its API keys just now: try again shortly"
    return KeyRefused(ErrorReply(503, "server_error", "key_store_unavailable", message))


def _unauthorized(message: str) -> KeyRefused:
    return KeyRefused(ErrorReply(401, INVALID_REQUEST, "invalid_api_key", message))


@dataclass(slots=True)
class _Seen:
    key: ApiKey | None  # None: no key has this hash
    until: float  # on the clock's monotonic time


@dataclass(slots=True)
class _Spend:
    day: int  # UTC days since the epoch
    spent: float
    next_read: float  # monotonic


class Keys:
    """One worker's view of the store's keys and of each key's spend today (see the module docstring)."""

    CACHE_SECONDS = 2.0
    SPEND_SECONDS = 2.0
    MAX_CACHED = 10_000  # distinct hashes kept; past it the cache starts again, so random keys cannot fill memory

    def __init__(self, where: Target, clock: Clock) -> None:
        self._where = where
        self._clock = clock
        self._seen: dict[str, _Seen] = {}
        self._reading: dict[str, asyncio.Future[ApiKey | None]] = {}
        self._spend: dict[str, _Spend] = {}

    async def caller(self, authorization: str | None) -> ApiKey:
        """The key of a request's Authorization header; KeyRefused (401) when it is missing or admits nothing."""
        if not authorization:
            raise _unauthorized(f"no API key: {_HOW}")
        if authorization[: len(_BEARER)].lower() != _BEARER or not authorization[len(_BEARER) :].strip():
            raise _unauthorized(f"the Authorization header is not a bearer key: {_HOW}")
        given = authorization[len(_BEARER) :].strip()
        # Not the shape of a key: refused without a read of the store, which anyone could otherwise ask for.
        key = await self._lookup(given) if given.startswith(KEY_PREFIX) and len(given) <= _LONGEST else None
        if key is None:
            raise _unauthorized(f"the API key is not valid: {_HOW}")
        if key.revoked_at is not None:
            raise _unauthorized(f"the API key {key.name!r} was revoked: ask for a new one")
        if key.expires_at is not None and key.expired(iso_millis(self._clock.wall())):
            raise _unauthorized(f"the API key {key.name!r} expired at {key.expires_at}: ask for a new one")
        return key

    async def _lookup(self, key: str) -> ApiKey | None:
        digest = hash_key(key)
        seen = self._seen.get(digest)
        if seen is not None and self._clock.monotonic() < seen.until:
            return seen.key
        reading = self._reading.get(digest)
        if reading is None:  # one read of the store per key at a time, however many requests wait for it
            reading = self._reading[digest] = asyncio.ensure_future(asyncio.to_thread(find_api_key, self._where, key))
            reading.add_done_callback(lambda _: self._reading.pop(digest, None))
        try:
            found = await asyncio.shield(reading)  # a client leaving does not cancel the others' read
        except KeyStoreUnreadable:
            if seen is not None:  # a blip of the store: the key as last read, until it can be read again
                return seen.key
            raise _keys_unreadable() from None
        if len(self._seen) >= self.MAX_CACHED:
            self._seen.clear()
        self._seen[digest] = _Seen(found, self._clock.monotonic() + self.CACHE_SECONDS)
        return found

    async def admit(self, key: ApiKey, task: str) -> None:
        """KeyRefused (403) for a task the key may not use; BudgetExceededError (429) when its day's budget is
        spent. Before the call, as the global budget is checked."""
        if not key.may_use(task):
            raise KeyRefused(
                ErrorReply(
                    403,
                    "permission_error",
                    "model_not_allowed",
                    f"the API key {key.name!r} may not use the task {task!r}: it may use {', '.join(key.tasks or ())}",
                    "model",
                )
            )
        limit = key.daily_budget_usd
        if limit is None:
            return
        spent = await self._spent_today(key.name)
        if spent >= limit:
            raise BudgetExceededError(
                f"the API key {key.name!r} has spent its daily budget: ${spent:.6f} of ${limit:.6f} today (UTC); "
                "no provider was called",
                (),
                task_type=task,
            )

    async def _spent_today(self, name: str) -> float:
        day = self._day()
        now = self._clock.monotonic()
        state = self._spend.get(name)
        if state is not None and state.day == day:
            if now < state.next_read:
                return state.spent
            state.next_read = now + self.SPEND_SECONDS  # the requests meanwhile take the count as it is, unread
        logged = await asyncio.to_thread(key_spent_on, self._where, name, _iso_day(day))
        state = self._spend.get(name)  # another request may have counted an answer meanwhile
        if state is None or state.day != day:
            state = self._spend[name] = _Spend(day, logged, 0.0)
        # A read never lowers the count: this worker's last answers may not be written yet.
        state.spent = max(state.spent, logged)
        state.next_read = now + self.SPEND_SECONDS
        return state.spent

    def _day(self) -> int:
        """The UTC day, as days since the epoch: one division per request, where a date costs a datetime."""
        return int(self._clock.wall() // 86_400)

    def spent(self, key: ApiKey | None, cost: float | None) -> None:
        """Count an answer's cost against its key until the store's rows carry it."""
        if key is None or not cost or key.daily_budget_usd is None:
            return
        state = self._spend.get(key.name)
        if state is not None and state.day == self._day():
            state.spent += cost


def keys_of(request: Request) -> Keys | None:
    """The application's keys; None under --no-auth."""
    keys: Keys | None = request.app.state.keys
    return keys


async def caller_name(request: Request) -> str:
    """A FastAPI dependency: the name of the request's key (401 without a valid one); NO_AUTH under --no-auth."""
    keys = keys_of(request)
    if keys is None:
        return NO_AUTH
    return (await keys.caller(request.headers.get("authorization"))).name


async def admin_name(request: Request) -> str:
    """A FastAPI dependency for the management writes: the name of the request's admin key, for the audit (401
    without a valid key, 403 with a key that is not an admin's); NO_AUTH under --no-auth, on loopback only."""
    keys = keys_of(request)
    if keys is None:
        return NO_AUTH
    key = await keys.caller(request.headers.get("authorization"))
    if not key.admin:
        raise KeyRefused(
            ErrorReply(
                403,
                "permission_error",
                "admin_key_required",
                f"the API key {key.name!r} is not an admin key: changes need one (taskrouter keys create NAME --admin)",
            )
        )
    return key.name


def _iso_day(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).isoformat()

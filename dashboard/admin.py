"""Acting from the dashboard, on the Tasks page: for a signed-in person only, each action on exactly what was chosen.

Who may act: a named operator (`taskrouter operators create NAME`, app/store/operators.py) who signs in with the
name and its own secret; a user logged in through Streamlit's OIDC login (`st.login`, configured in
.streamlit/secrets.toml) whose e-mail is the name of an operator; or whoever enters DASHBOARD_ADMIN_TOKEN, recorded
as "admin-token". With neither a token nor an operator, the dashboard writes nothing and shows the CLI commands.

The sign-in lives in this browser session's server-side state only (nothing is stored in the browser); the secret
field is cleared once submitted. Failed sign-ins are throttled per client (dashboard/throttle.py) and logged without
the entered text. An operator revoked meanwhile can no longer act: the name is checked again on every run.

Why a captured websocket frame cannot be replayed: every widget key here ends in a random nonce of this session,
renewed after each sign-in and each action. A frame carries widget ids derived from those keys, so replayed from
another session (or again in this one) it names widgets that no longer exist, and Streamlit drops it.

Each action asks for a confirmation and a reason, writes its audit row with the person in `who` and the
dashboard's OS account only in `via` ("dashboard as root@host"), and the page is drawn again at once, so what is
shown is the state after the write. An override is ended by its id, never by what it shares with others.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from app.store import CLEARED, CLOSED, clear_model_status, open_database, read_model_status, utc_now_iso
from app.store.operators import LEGACY_TOKEN_NAME, read_operators, signed_in_operator, verify_operator
from app.store.overrides import DEFAULT, DISABLE, FORCE, Override, end_override, record_audit, set_override, who
from dashboard import fmt
from dashboard.throttle import SIGN_INS, client_of

if TYPE_CHECKING:
    from app.config import Settings
    from app.store.backend import Connection
    from app.store.target import Target

log = logging.getLogger("taskrouter.dashboard.admin")

CLI = """taskrouter override force MODEL [--task TASK] [--ttl 30m] --reason "..."
taskrouter override end ID --reason "..."          # exactly that override: `taskrouter override list` shows ids
taskrouter model disable MODEL [--ttl 2h] --reason "..."
taskrouter model enable MODEL --reason "..."
taskrouter status --clear MODEL --reason "..."
taskrouter operators create NAME   # lets NAME sign in here with a secret of its own"""

# Session state: who signed in (a SignedIn), the widget keys' nonce, the outcome of the last action.
IDENTITY = "admin_identity"
NONCE = "admin_nonce"
OUTCOME = "admin_outcome"

OPERATOR, TOKEN, OIDC = "operator", "token", "oidc"

# The sign-in throttle's clock (seconds, monotonic); a test sets its own, so that no attempt's wait runs out while
# a page is drawn.
CLOCK: Callable[[], float] = time.monotonic


@dataclass(frozen=True, slots=True)
class SignedIn:
    name: str
    how: str  # OPERATOR | TOKEN | OIDC
    client: str = ""  # the address it signed in from (dashboard/throttle.py's key); another one is signed out


def enabled(path: Target, settings: Settings | None) -> bool:
    """Whether anyone can act from this dashboard: DASHBOARD_ADMIN_TOKEN is set or an operator exists."""
    if settings is not None and settings.dashboard_admin_token is not None:
        return True
    return any(o.active for o in read_operators(path))


def oidc_email(user: Mapping[str, object]) -> str | None:
    """The e-mail of a user Streamlit's OIDC login vouches for (`st.user`), lower case; None when not logged in.
    Only `is_logged_in` True counts: without an [auth] section Streamlit may still fill in a placeholder e-mail."""
    email = user.get("email")
    if user.get("is_logged_in") is not True or not isinstance(email, str) or not email:
        return None
    return email.strip().lower()


def token_matches(settings: Settings | None, entered: str) -> bool:
    token = settings.dashboard_admin_token if settings is not None else None
    if token is None or not entered:
        return False
    return hmac.compare_digest(entered.encode(), token.get_secret_value().encode())


def verify(path: Target, settings: Settings | None, name: str, secret: str, client: str) -> SignedIn | None:
    """Who a name and secret sign in as: an operator, or (name empty or "admin-token") the token's holder."""
    if not secret:
        return None
    if name.strip().lower() in ("", LEGACY_TOKEN_NAME):
        return SignedIn(LEGACY_TOKEN_NAME, TOKEN, client) if token_matches(settings, secret) else None
    operator = verify_operator(path, name, secret)
    return SignedIn(operator, OPERATOR, client) if operator else None


def still_valid(path: Target, settings: Settings | None, person: SignedIn, client: str) -> bool:
    """A session's sign-in holds while its operator is not revoked (or the token is still configured), for the
    address it was made from: Streamlit lets a websocket that names a session's id take that session over."""
    if person.client != client:
        return False
    if person.how == TOKEN:
        return settings is not None and settings.dashboard_admin_token is not None
    return signed_in_operator(path, person.name) is not None


def _key(name: str) -> str:
    """A widget key of this session: `name` and the session's current nonce."""
    if NONCE not in st.session_state:
        st.session_state[NONCE] = secrets.token_hex(8)
    return f"admin_{name}_{st.session_state[NONCE]}"


def _renew_nonce() -> None:
    st.session_state[NONCE] = secrets.token_hex(8)


@contextlib.contextmanager
def _writing(path: Target) -> Iterator[Connection]:
    """The dashboard reads through a read-only connection; an action opens the store for writing, briefly."""
    db = open_database(path)
    try:
        yield db.conn
    finally:
        db.conn.close()


def render(
    path: Target, settings: Settings | None, runtime: Sequence[Override], models: Sequence[str], tasks: Sequence[str]
) -> None:
    st.subheader("Act")
    if not enabled(path, settings):
        st.session_state.pop(IDENTITY, None)
        st.caption(
            "Nobody can act from this dashboard: create an operator (`taskrouter operators create NAME`) or set "
            "DASHBOARD_ADMIN_TOKEN. The same from a shell, for every process on this database:"
        )
        st.code(CLI, language="bash")
        return
    person = current_person(path, settings)
    if person is None:
        _oidc_login()
        _sign_in(path, settings)
        st.caption("Or from a shell:")
        st.code(CLI, language="bash")
        return
    _signed_in_bar(person)
    outcome = st.session_state.pop(OUTCOME, None)
    if outcome:
        st.success(fmt.plain(outcome))
    act = Acting(path, person.name, f"dashboard as {who()}")
    left, right = st.columns(2)
    with left:
        act.force(models, tasks, [o for o in runtime if o.kind == FORCE])
        act.end([o for o in runtime if o.kind in (FORCE, DEFAULT)])
    with right:
        disabled = [o for o in runtime if o.kind == DISABLE]
        act.disable(models, disabled)
        act.enable(disabled)
        # Read only once someone is signed in: a dashboard nobody acts from does not pay for it on every render.
        act.lift_mark([r["model"] for r in read_model_status(path) if r["status"] not in (CLEARED, CLOSED)])


def current_person(path: Target, settings: Settings | None) -> SignedIn | None:
    """Who acts in this session: an OIDC login that names an operator, else this session's sign-in while valid."""
    email = oidc_email(st.user.to_dict())
    client = _client()
    if email is not None and signed_in_operator(path, email):
        return SignedIn(email, OIDC, client)
    person = st.session_state.get(IDENTITY)
    if isinstance(person, SignedIn) and still_valid(path, settings, person, client):
        return person
    st.session_state.pop(IDENTITY, None)
    if email is not None:
        st.info(
            f"You are logged in as {fmt.plain(email)}, who is not an operator here: an operator of that name "
            "(taskrouter operators create) lets you act; or sign in below."
        )
    return None


def _oidc_login() -> None:
    """With Streamlit's login configured (Streamlit then says `is_logged_in` False, not nothing), a way to it."""
    if st.user.to_dict().get("is_logged_in") is False and st.button(
        "Log in with your identity provider", key=_key("oidc_login")
    ):
        st.login()


def _sign_in(path: Target, settings: Settings | None) -> None:
    with st.form(_key("sign_in"), clear_on_submit=True):
        st.markdown("**Sign in to act** (every change is recorded under your name)")
        name = st.text_input("Operator name", key=_key("sign_in_name"), help="taskrouter operators create NAME")
        secret = st.text_input(
            "Secret",
            type="password",
            key=_key("sign_in_secret"),
            help="The secret printed when the operator was created; or DASHBOARD_ADMIN_TOKEN with no name",
        )
        if not st.form_submit_button("Sign in", key=_key("sign_in_go")):
            return
    if not secret:
        st.warning("Enter the secret (and the operator's name): nothing was checked.")
        return
    client = _client()
    now = CLOCK()
    wait = SIGN_INS.check(client, now)
    if wait > 0:
        st.error(f"Too many wrong sign-ins from {fmt.plain(client)}: try again in {math.ceil(wait):d} s.")
        return
    person = verify(path, settings, name, secret, client)
    if person is None:
        wait = SIGN_INS.failed(client, now)
        later = f" Next attempt in {math.ceil(wait):d} s." if wait > 0 else ""
        st.error(f"Wrong name or secret: nothing can be changed from here.{later}")
        return
    SIGN_INS.succeeded(client)
    log.info("dashboard sign-in: %s from %s", person.name, client)
    st.session_state[IDENTITY] = person
    _renew_nonce()
    st.rerun()


def _client() -> str:
    """This session's client for the throttle and the sign-in: its address (st.context.ip_address, a str when
    Streamlit knows it)."""
    address = st.context.ip_address
    return client_of(address if isinstance(address, str) else None)


def _signed_in_bar(person: SignedIn) -> None:
    how = {OPERATOR: "operator", TOKEN: "DASHBOARD_ADMIN_TOKEN", OIDC: "identity provider login"}[person.how]
    text, button = st.columns([4, 1])
    text.markdown(f"Signed in as **{fmt.plain(person.name)}** ({fmt.plain(how)}), in this browser tab only.")
    if not button.button("Sign out", key=_key("sign_out")):
        return
    if person.how == OIDC:
        st.logout()
    st.session_state.pop(IDENTITY, None)
    _renew_nonce()
    st.rerun()


@dataclass(frozen=True, slots=True)
class Acting:
    """The actions of one signed-in person: each writes, records who and why, then draws the page again."""

    path: Target
    by: str
    via: str

    def _done(self, outcome: str) -> None:
        st.session_state[OUTCOME] = outcome
        _renew_nonce()
        st.rerun()

    def force(self, models: Sequence[str], tasks: Sequence[str], forces: Sequence[Override]) -> None:
        with st.form(_key("force")):
            st.markdown("**Force a model** (no fallback while forced)")
            model = st.selectbox("Model", list(models), key=_key("force_model"))
            task = st.selectbox("Task", ["every task", *tasks], key=_key("force_task"))
            ttl = st.number_input(
                "Expires after (minutes, 0 = when ended)", min_value=0, value=30, key=_key("force_ttl")
            )
            reason = st.text_input("Why (required)", key=_key("force_reason"))
            sure = _confirmed("force", "force it for every process on this database")
            if not (st.form_submit_button("Force", key=_key("force_go")) and _ready(sure, model, reason)):
                return
        scope = None if task == "every task" else str(task)
        with _writing(self.path) as conn:
            made = set_override(
                conn,
                FORCE,
                str(model),
                task=scope,
                ttl_seconds=ttl * 60 if ttl else None,
                reason=reason.strip(),
                by=self.by,
                via=self.via,
            )
        replaced = _ids([o for o in forces if o.task == scope and o.id != made.id])
        self._done(
            f"Override #{made.id:d} set: {made.describe()}{f'; it replaces {replaced}' if replaced else ''}. "
            "Routers follow it within MODEL_STATUS_REFRESH_SECONDS."
        )

    def end(self, overrides: Sequence[Override]) -> None:
        outcome = self._end_one(
            "end",
            overrides,
            heading="End one override",
            aside="only the one chosen",
            choice="Override",
            button="End",
            sure_of="end this one override",
        )
        if outcome is None:
            return
        chosen, ended = outcome
        self._done(
            f"Ended override #{ended.id:d}: {ended.describe()}."
            if ended
            else f"{chosen} had already ended (cleared or expired): nothing was changed."
        )

    def disable(self, models: Sequence[str], disabled: Sequence[Override]) -> None:
        with st.form(_key("disable")):
            st.markdown("**Disable a model** (every router skips it until enabled)")
            model = st.selectbox("Model", list(models), key=_key("disable_model"))
            reason = st.text_input("Why (required)", key=_key("disable_reason"))
            sure = _confirmed("disable", "take it out of rotation for every process on this database")
            if not (st.form_submit_button("Disable", key=_key("disable_go")) and _ready(sure, model, reason)):
                return
        with _writing(self.path) as conn:
            made = set_override(conn, DISABLE, str(model), reason=reason.strip(), by=self.by, via=self.via)
        replaced = _ids([o for o in disabled if o.model == model])
        self._done(
            f"Override #{made.id:d}: {made.model} is disabled, every router skips it"
            f"{f' (it replaces {replaced})' if replaced else ''}."
        )

    def enable(self, disabled: Sequence[Override]) -> None:
        outcome = self._end_one(
            "enable",
            disabled,
            heading="Enable a disabled model",
            aside="",
            choice="Disabled",
            button="Enable",
            sure_of="put it back in rotation for every process on this database",
        )
        if outcome is None:
            return
        chosen, ended = outcome
        self._done(
            f"{ended.model} is enabled again (override #{ended.id:d} ended)."
            if ended
            else f"{chosen} had already ended (enabled or expired): nothing was changed."
        )

    def _end_one(
        self,
        action: str,
        overrides: Sequence[Override],
        *,
        heading: str,
        aside: str,
        choice: str,
        button: str,
        sure_of: str,
    ) -> tuple[str, Override | None] | None:
        """A form that ends the one override chosen, by its id, with a reason: (its label, the override ended or
        None when it had already ended), or None while nothing was submitted."""
        if not overrides:
            return None
        with st.form(_key(action)):
            st.markdown(f"**{fmt.plain(heading)}**" + (f" ({fmt.plain(aside)})" if aside else ""))
            labels = {_label(o): o.id for o in overrides}
            chosen = st.selectbox(fmt.plain(choice), list(labels), key=_key(f"{action}_which"))
            reason = st.text_input("Why (required)", key=_key(f"{action}_reason"))
            sure = _confirmed(action, sure_of)
            if not (
                st.form_submit_button(fmt.plain(button), key=_key(f"{action}_go")) and _ready(sure, chosen, reason)
            ):
                return None
        with _writing(self.path) as conn:
            ended = end_override(conn, labels[str(chosen)], reason=reason.strip(), by=self.by, via=self.via)
        return str(chosen), ended

    def lift_mark(self, marked: Sequence[str]) -> None:
        if not marked:
            return
        with st.form(_key("mark")):
            st.markdown("**Lift a mark** (deprecated, not found, cooling down, circuit open)")
            model = st.selectbox("Model", list(marked), key=_key("mark_model"))
            reason = st.text_input("Why (required)", key=_key("mark_reason"))
            sure = _confirmed("mark", "lift it: routers call the model again")
            if not (st.form_submit_button("Lift", key=_key("mark_go")) and _ready(sure, model, reason)):
                return
        with _writing(self.path) as conn:
            lifted = clear_model_status(conn, [str(model)], utc_now_iso())
            for name, row in lifted.items():
                record_audit(
                    conn,
                    "mark cleared",
                    name,
                    detail=f"was {row['status']}: {row['detail'] or ''}",
                    reason=reason.strip(),
                    by=self.by,
                    via=self.via,
                )
        self._done(f"Lifted the mark on {model}." if lifted else f"{model} had no mark to lift: nothing was changed.")


def _label(o: Override) -> str:
    scope = o.task or ("every task" if o.kind == FORCE else "")
    until = f", until {o.expires_at}" if o.expires_at else ""
    return f"#{o.id} {o.kind} {o.model}{f' for {scope}' if scope else ''}{until}"


def _ids(overrides: Sequence[Override]) -> str:
    return ", ".join(f"#{o.id:d}" for o in overrides)


def _confirmed(name: str, what: str) -> bool:
    return st.checkbox(f"Yes, {fmt.plain(what)}", key=_key(f"{name}_confirm"))


def _ready(sure: bool, choice: object, reason: str) -> bool:
    if choice is None:
        st.warning("Choose first: nothing was changed.")
        return False
    if not reason.strip():
        st.warning("Say why (the reason goes to the audit trail): nothing was changed.")
        return False
    if not sure:
        st.warning("Tick the confirmation first: nothing was changed.")
        return False
    return True

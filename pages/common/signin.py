"""Sign-in and the write switch, applied by the page frame on every page.

The rule itself is :mod:`core.serving.access`; this module only asks Streamlit who signed in and
where the server listens, and keeps the session's switch where core's write primitives read it
(:func:`core.base.paths.set_read_only_source`): a widget's callback and a fragment's rerun run
before, or without, the frame, so the switch is kept per session, not set per run only.
"""

from __future__ import annotations

import os
import signal
import sys

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.base.errors import UserError
from core.base.paths import set_read_only_source
from core.serving import access

SWITCH = "_hmd_read_only"  # None: this session may write; else why not
ACCESS = "_hmd_access"


def _session_switch() -> str | None:
    """The running session's switch; ``None`` outside a script run (the CLI, worker threads)."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None:
        return None
    state = ctx.session_state  # no .get(): it is not a dict
    return state[SWITCH] if SWITCH in state else None  # noqa: SIM401


set_read_only_source(_session_switch)


def server_address() -> str | None:
    return st.get_option("server.address")


def sign_in_configured() -> bool:
    """Whether ``[auth]`` is in the secrets (``.streamlit/secrets.toml`` or ``--secrets.files``)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets file at all
        return False


def current() -> access.Access:
    """This session's access (from the session when the frame already decided it this run)."""
    return st.session_state.get(ACCESS) or decide()


def can_write() -> bool:
    return current().can_write


def write_help(help_text: str | None = None) -> str | None:
    """A write button's help: the reason it is disabled for a read-only session, else ``help_text``."""
    found = current()
    return f"Read-only: {found.why_read_only}" if found.why_read_only and not found.can_write else help_text


def _roles() -> access.Roles:
    """The roles file; a malformed one stops the server with the one line at fault (and this page,
    where no server runs: a test)."""
    try:
        return access.load_roles()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        st.error(str(error))
        _stop_server()
        st.stop()
        raise  # unreachable: st.stop raises


def _stop_server() -> None:
    """Stop the server this page runs in (none under AppTest): Streamlit stops cleanly on SIGTERM."""
    if Runtime.exists():
        os.kill(os.getpid(), signal.SIGTERM)


def decide() -> access.Access:
    sign_in = sign_in_configured()
    roles = _roles()
    user = st.user
    email = user.get("email") if sign_in and user.get("is_logged_in") else None
    groups = (user.get("groups") or []) if email else []
    groups = [groups] if isinstance(groups, str) else groups  # a provider may send one as a string
    verified = user.get("email_verified") if email else None  # absent: the provider does not say
    return access.decide(
        server_address(),
        sign_in,
        email,
        [str(g) for g in groups],
        roles,
        verified if verified is None else bool(verified),
    )


def gate() -> access.Access:
    """Apply sign-in and the write switch for this run: signed out, only the sign-in button;
    not in the roles file, a refusal; else who and the role in the sidebar, and one line saying
    why the page is read-only when it is."""
    found = decide()
    st.session_state[ACCESS] = found
    st.session_state[SWITCH] = access.write_switch(found)
    sign_in = sign_in_configured()
    if found.role is None:
        if found.who == "nobody":
            st.title("How Much Data?")
            st.caption("Sign in to see the dashboard.")
            st.button("Sign in", type="primary", key="sign_in", on_click=st.login)
        else:
            st.error(f"Access refused: {found.why_read_only}. Ask an editor to add you.")
            st.button("Sign out", key="sign_out_refused", on_click=st.logout)
        st.stop()
    with st.sidebar:
        if sign_in:
            st.caption(f"Signed in as {found.who} ({found.role})")
            st.button("Sign out", key="sign_out", on_click=st.logout)
    if found.why_read_only:
        st.info(f"Read-only: {found.why_read_only}.", icon=":material/lock:")
    return found


def locked(help_text: str | None = None) -> dict:
    """Keyword arguments for a button that writes: disabled, with the reason as its help, for
    a read-only session (the write would be refused below the page anyway)."""
    if can_write():
        return {"help": help_text} if help_text else {}
    return {"disabled": True, "help": write_help(help_text)}


def typed_path(text: str) -> str:
    """A server path typed into a page, if this session may use it (editors; on a shared server
    only under ``HMD_DATA_ROOTS``); else the reason in one line, and an empty path."""
    if not text:
        return text
    try:
        return str(access.check_typed_path(current(), text))
    except UserError as error:
        st.error(str(error))
        return ""


def path_input(container, label: str, key: str) -> str:
    """A text box for a server path: disabled for a read-only session, and what is typed checked
    by :func:`typed_path`."""
    return typed_path(container.text_input(label, key=key, **locked()).strip())

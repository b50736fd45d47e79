"""Who may do what when the dashboard is served: the one place the rule is decided.

Two roles. A *viewer* sees every page and number and downloads reports; an *editor* also
launches, cancels, deletes and uploads. The rule is applied below the pages: :func:`applied`
switches writes off in :mod:`core.base.paths` for a read-only session, so a write attempted
through any page fails there, whatever the page shows.

- Served on this machine only (loopback) without sign-in: the one person at the keyboard edits,
  as the dashboard always did.
- Served beyond this machine without sign-in: read-only for everybody, and the page says why.
  Nobody can be told apart, so nobody may write.
- With sign-in: the roles file decides. Someone the file does not name is refused (unless it
  has a ``*`` line): with a public provider such as Google, anyone at all can sign in.

The roles file (``$HMD_ROLES``, else ``.streamlit/roles.txt``) holds one entry a line::

    # who = role
    alice@example.com = editor
    group:ml-team = viewer
    * = viewer

Typed dataset paths, when served beyond this machine, must lie under ``$HMD_DATA_ROOTS``
(folders separated by ``os.pathsep``), for editors too: a typed path reads the server's disk.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from core.base.errors import UserError
from core.base.paths import PROJECT_ROOT, read_only

DEFAULT_ROLES = PROJECT_ROOT / ".streamlit" / "roles.txt"
GROUP = "group:"
ANYONE = "*"


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"


@dataclass(frozen=True)
class Roles:
    """The roles file, read: entries by email (lower case), by group, and the ``*`` default."""

    emails: Mapping[str, Role] = field(default_factory=dict)
    groups: Mapping[str, Role] = field(default_factory=dict)
    anyone: Role | None = None
    source: str = "no roles file"

    def role_of(self, email: str | None, groups: Iterable[str] = ()) -> Role | None:
        """The role of a signed-in person: their email's entry, else the highest role of their
        groups, else the ``*`` line; ``None`` when the file names none of these."""
        if email and (role := self.emails.get(email.strip().lower())):
            return role
        found = {self.groups[g] for g in groups if g in self.groups}
        if found:
            return Role.EDITOR if Role.EDITOR in found else Role.VIEWER
        return self.anyone

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "emails": dict(self.emails),
            "groups": dict(self.groups),
            "anyone": self.anyone,
        }

    def describe(self) -> str:
        """The file's entries, one a line, as ``python -m core roles`` prints them."""
        lines = [f"{who} = {role}" for who, role in self.emails.items()]
        lines += [f"{GROUP}{name} = {role}" for name, role in self.groups.items()]
        lines += [f"{ANYONE} = {self.anyone}"] if self.anyone else []
        return "\n".join([f"{self.source}: {len(lines)} entr{'y' if len(lines) == 1 else 'ies'}", *lines])


@dataclass(frozen=True)
class Access:
    """What this session may do. ``role`` ``None``: nothing (signed out, or not in the roles
    file); ``why_read_only``: the one line a read-only session is shown, ``None`` when it may
    write; ``shared``: served beyond this machine (typed paths are then limited to the roots)."""

    who: str
    role: Role | None
    why_read_only: str | None
    shared: bool

    @property
    def can_write(self) -> bool:
        return self.role is Role.EDITOR and self.why_read_only is None


def roles_path() -> Path:
    return Path(os.environ.get("HMD_ROLES") or DEFAULT_ROLES)


def parse_roles(text: str, source: str) -> Roles:
    """Read the line format above.

    Raises:
        UserError: "<source> line N: ..." for the first line at fault.
    """
    emails: dict[str, Role] = {}
    groups: dict[str, Role] = {}
    anyone = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        who, equals, role = (part.strip() for part in line.partition("="))
        if not equals or not who or role not in set(Role):
            raise UserError(
                f"{source} line {number}: '{raw.strip()}' is not 'WHO = viewer' or 'WHO = editor' "
                "(WHO: an email, group:NAME or *)"
            )
        if who == ANYONE:
            anyone = Role(role)
        elif who.startswith(GROUP) and len(who) > len(GROUP):
            groups[who[len(GROUP) :]] = Role(role)
        elif "@" in who and " " not in who:
            emails[who.lower()] = Role(role)
        else:
            raise UserError(f"{source} line {number}: '{who}' is not an email, group:NAME or *")
    return Roles(emails, groups, anyone, source)


def load_roles(path: Path | None = None) -> Roles:
    """The roles file at ``path`` (default :func:`roles_path`); no file: nobody is named.

    Raises:
        UserError: the file is malformed (naming the file and the line).
    """
    path = path or roles_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Roles(source=f"{path} (missing)")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the roles file ({error})") from error
    return parse_roles(text, str(path))


def is_loopback(address: str | None) -> bool:
    """Whether a server bound to ``address`` is reachable from this machine only. No address
    means every interface."""
    if not address:
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def decide(
    address: str | None,
    sign_in: bool,
    email: str | None,
    groups: Iterable[str],
    roles: Roles,
    email_verified: bool | None = None,
) -> Access:
    """The access of one session, from where the server listens, whether sign-in is
    configured, who signed in (``email`` ``None``: nobody) and the roles file. An email the
    provider says it has not verified (``email_verified`` False) earns no role: anyone can type
    an address into an account they make."""
    shared = not is_loopback(address)
    if not sign_in:
        if not shared:
            return Access("you, on this machine", Role.EDITOR, None, shared)
        why = (
            f"served beyond this machine (address {address or 'all interfaces'}) without sign-in; "
            "configure [auth] in .streamlit/secrets.toml to let editors change things"
        )
        return Access("anyone", Role.VIEWER, why, shared)
    if not email:
        return Access("nobody", None, "not signed in", shared)
    if email_verified is False:
        return Access(email, None, f"the identity provider has not verified {email}", shared)
    role = roles.role_of(email, groups)
    if role is None:
        return Access(email, None, f"{email} is not in the roles file ({roles.source})", shared)
    why = None if role is Role.EDITOR else f"{email} is a viewer (roles file {roles.source})"
    return Access(email, role, why, shared)


@contextlib.contextmanager
def applied(access: Access) -> Iterator[None]:
    """Writes switched off inside the block unless ``access`` may write."""
    with read_only(write_switch(access)):
        yield


def write_switch(access: Access) -> str | None:
    """The value of the write switch for ``access`` (see :func:`core.base.paths.read_only`):
    ``None`` when it may write, else the reason."""
    return None if access.can_write else access.why_read_only or "no access"


def data_roots() -> tuple[Path, ...]:
    """The folders typed dataset paths must lie under when served beyond this machine."""
    text = os.environ.get("HMD_DATA_ROOTS", "")
    return tuple(Path(part).expanduser().resolve() for part in text.split(os.pathsep) if part.strip())


def check_typed_path(access: Access, path: str | Path, roots: tuple[Path, ...] | None = None) -> Path:
    """A dataset path someone typed, if this session may read it.

    Raises:
        UserError: a viewer typed it, or the server is shared and it lies outside the roots.
    """
    if not access.can_write:
        why = access.why_read_only or "no access"
        raise UserError(f"read-only: {why}; typing a server path is for editors")
    resolved = Path(path).expanduser().resolve()
    if not access.shared:
        return resolved
    roots = data_roots() if roots is None else roots
    if not any(resolved == root or root in resolved.parents for root in roots):
        allowed = ", ".join(map(str, roots)) or "none: set HMD_DATA_ROOTS"
        raise UserError(f"{path} is outside the dataset folders this shared server allows ({allowed})")
    return resolved

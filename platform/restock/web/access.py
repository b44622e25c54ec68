"""Who may use the review page and API: tokens with a role per org, and login sessions.

``config/access.yaml`` (beside the org files) lists the people or systems that may look and
decide; each has a token (a secret reference, ``${ENV}`` or ``file:PATH``, never the secret
itself) and a role per org (``viewer`` reads, ``approver`` also approves and rejects; ``"*"``
is every org)::

    users:
      alice:
        token: ${RESTOCK_TOKEN_ALICE}
        orgs: {acme: approver, "*": viewer}

A browser logs in with its token once and gets a session cookie; programs send
``Authorization: Bearer <token>``. Sessions are signed with the user's own token, so rotating a
token ends its sessions and several replicas accept each other's cookies without shared state.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from restock.config import SecretProblem, parse_yaml, resolve_secret
from restock.errors import ConfigError, SecretError

ACCESS_FILE = "access.yaml"
SESSION_SECONDS = 12 * 3600
ALL_ORGS = "*"


class Role(IntEnum):
    """What a user may do in an org; a higher role includes the lower ones."""

    VIEWER = 1
    APPROVER = 2


_ROLE_NAMES = {"viewer": Role.VIEWER, "approver": Role.APPROVER}


class _UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str
    orgs: dict[str, Annotated[str, Field(pattern="^(viewer|approver)$")]]


class _AccessFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,80}$")], _UserEntry]


@dataclass(frozen=True)
class User:
    """A person or system allowed in, with a role per org."""

    name: str
    token: SecretStr = field(repr=False)
    roles: dict[str, Role]

    def role(self, org: str) -> Role | None:
        """The user's role in ``org`` (an org's own entry wins over ``"*"``)."""
        return self.roles.get(org, self.roles.get(ALL_ORGS))

    def may(self, org: str, role: Role) -> bool:
        have = self.role(org)
        return have is not None and have >= role

    def sees_every_org(self) -> bool:
        return ALL_ORGS in self.roles


@dataclass(frozen=True)
class Access:
    """The users of one access file (none: nobody gets in)."""

    users: tuple[User, ...] = ()
    source: str = ""

    def by_token(self, token: str) -> User | None:
        """The user whose token this is (compared in constant time), or None."""
        found = None
        for user in self.users:
            if hmac.compare_digest(token.encode(), user.token.get_secret_value().encode()):
                found = user
        return found

    def by_name(self, name: str) -> User | None:
        return next((u for u in self.users if u.name == name), None)


class GuessLimit:
    """Wrong tokens per client address: after ``allowed`` of them within ``window`` seconds the
    address must wait until the oldest leaves the window, so tokens cannot be guessed at speed.

    Kept in memory by each process (replicas each count their own; a proxy in front can limit
    across them). At most ``clients`` addresses are remembered, the longest quiet go first.
    """

    def __init__(self, allowed: int = 10, window: float = 300.0, clients: int = 10_000,
                 clock=time.monotonic) -> None:
        if allowed < 1 or window <= 0 or clients < 1:
            raise ValueError("allowed and clients must be at least 1 and window above 0")
        self.allowed, self.window, self.clients, self.clock = allowed, window, clients, clock
        self._misses: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds ``client`` must wait before its next try (0: it may try now)."""
        with self._lock:
            recent = self._recent(client)
            if len(recent) < self.allowed:
                return 0.0
            return max(recent[-self.allowed] + self.window - self.clock(), 0.0)

    def missed(self, client: str) -> None:
        with self._lock:
            recent = self._recent(client)
            recent.append(self.clock())
            self._misses.pop(client, None)
            self._misses[client] = recent[-self.allowed:]     # newest last in the dict
            while len(self._misses) > self.clients:
                self._misses.pop(next(iter(self._misses)))

    def passed(self, client: str) -> None:
        with self._lock:
            self._misses.pop(client, None)

    def _recent(self, client: str) -> list[float]:
        since = self.clock() - self.window
        return [t for t in self._misses.get(client, ()) if t > since]


def load_access(config_dir: str | Path) -> Access:
    """The users of ``config_dir/access.yaml``; no file means nobody may get in."""
    path = Path(config_dir) / ACCESS_FILE
    if not path.is_file():
        return Access(source=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read file ({err})", file=str(path)) from None
    data, lines = parse_yaml(text, str(path))
    try:
        parsed = _AccessFile.model_validate(data if data is not None else {"users": {}})
    except ValidationError as err:
        raise _file_error(err, str(path), lines) from None
    users = tuple(_user(name, entry, path, lines) for name, entry in parsed.users.items())
    return Access(users=users, source=str(path))


def _user(name: str, entry: _UserEntry, path: Path, lines: dict[tuple, int]) -> User:
    try:
        token = resolve_secret(entry.token, base_dir=path.parent.resolve())
    except SecretProblem as err:
        raise SecretError(str(err), file=str(path), line=lines.get(("users", name, "token")),
                          field=f"users.{name}.token") from None
    return User(name, token, {org: _ROLE_NAMES[role] for org, role in entry.orgs.items()})


def _file_error(err: ValidationError, shown: str, lines: dict[tuple, int]) -> ConfigError:
    errors = err.errors()
    # A misspelt key also makes the real one "missing": name the misspelling, it is the cause.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(first["loc"])
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
    where = ".".join(str(part) for part in loc) or None
    message = first["msg"]
    if first["type"] == "string_pattern_mismatch" and len(loc) == 4:
        message = "a role is viewer or approver"
    elif first["type"] == "extra_forbidden":
        message = "unknown key (a user has token and orgs)" if len(loc) == 3 else \
            "unknown key (the file has users)"
    return ConfigError(message, file=shown, line=line, field=where)


# ---------------------------------------------------------------- sessions and CSRF

def _sign(user: User, purpose: str, payload: str) -> str:
    key = hashlib.sha256(b"restock-review\x1f" + user.token.get_secret_value().encode()).digest()
    return hmac.new(key, f"{purpose}\x1f{payload}".encode(), hashlib.sha256).hexdigest()[:40]


def new_session(user: User, now: float | None = None) -> str:
    """A cookie value naming the user until it expires, signed with the user's token."""
    expires = int((now or time.time()) + SESSION_SECONDS)
    payload = f"{user.name}:{expires}"
    return f"{payload}:{_sign(user, 'session', payload)}"


def session_user(access: Access, cookie: str | None, now: float | None = None) -> User | None:
    """The user a session cookie names, if its signature holds and it has not expired."""
    if not cookie or cookie.count(":") < 2:
        return None
    payload, _, signature = cookie.rpartition(":")
    name, _, expires = payload.rpartition(":")
    user = access.by_name(name)
    if user is None or not expires.isdigit() or int(expires) < (now or time.time()):
        return None
    expected = _sign(user, "session", payload)
    return user if hmac.compare_digest(signature, expected) else None


def csrf_token(user: User, session: str) -> str:
    """The token every form of this session must post back (bound to the session)."""
    return _sign(user, "csrf", session)


def csrf_ok(user: User, session: str | None, given: Any) -> bool:
    if not session or not isinstance(given, str):
        return False
    return hmac.compare_digest(given, csrf_token(user, session))

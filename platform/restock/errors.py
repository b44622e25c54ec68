"""restock's exceptions, grouped by what the caller should do about them.

::

    RestockError                    root: anything restock raises on purpose
    ├── ConfigError                 fix the file: carries file, line and field
    │   └── SecretError             a secret reference that cannot be resolved, or a literal secret
    ├── DataError                   quarantine the record and go on: carries the record's place
    ├── Retriable                   back off and try again later
    │   └── ConnectorUnavailable    a downstream/upstream system timed out, 5xx, 429, dropped
    └── Fatal                       stop this org's run, report it; other orgs go on
        ├── CredentialsRejected     401/403 from an external system
        ├── ConnectorError          an external system answered nonsense (bad JSON, missing fields)
        └── LedgerConflict          the order ledger refuses a transition (would duplicate an order)

A user mistake is always one of these, rendered as one line (``str(err)``) and never as a traceback.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


class RestockError(Exception):
    """Root of every error restock raises on purpose."""


def one_line(text: str) -> str:
    """``text`` with control characters (a newline in a YAML key...) shown escaped, not obeyed."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


class ConfigError(RestockError):
    """A configuration file is wrong. ``str()`` is ``file:line: field: message``."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.message, self.file, self.line, self.field = message, file, line, field
        super().__init__(self._render())

    def _render(self) -> str:
        place = ""
        if self.file:
            place = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        field = f"{self.field}: " if self.field else ""
        return one_line(f"{place}{field}{self.message}")


class SecretError(ConfigError):
    """A secret reference that cannot be resolved, or a secret written literally in YAML."""


class DataError(RestockError):
    """A record is unusable; it is quarantined with this reason and the run goes on."""

    def __init__(self, message: str, *, record: str | None = None) -> None:
        self.message, self.record = message, record
        super().__init__(one_line(f"{record}: {message}" if record else message))


class Retriable(RestockError):
    """Something failed that may work later: back off and try again."""


class ConnectorUnavailable(Retriable):
    """An external system did not answer usefully (timeout, 5xx, 429, connection dropped)."""

    def __init__(self, system: str, detail: str) -> None:
        self.system, self.detail = system, detail
        super().__init__(f"{system} unavailable: {detail}")


class Fatal(RestockError):
    """This org's run cannot go on; it is reported and other orgs are unaffected."""


class CredentialsRejected(Fatal):
    """An external system refused restock's credentials (401/403)."""

    def __init__(self, system: str, status: int | None = None) -> None:
        self.system, self.status = system, status
        suffix = f" (HTTP {status})" if status else ""
        super().__init__(f"credentials rejected by {system}{suffix}")


class ConnectorError(Fatal):
    """An external system answered something restock cannot use."""

    def __init__(self, system: str, detail: str) -> None:
        self.system, self.detail = system, detail
        super().__init__(f"{system}: {detail}")


class LedgerConflict(Fatal):
    """The order ledger refused a state transition (it would lose or duplicate an order)."""

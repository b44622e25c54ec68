"""The three connector contracts and the registry that finds implementations by name.

A connector package registers, under the entry-point group ``restock.connectors``, an object
(usually a module) with any of the attributes ``inventory_source``, ``order_sink`` and
``summary_sink``, each a subclass of the matching ABC below. YAML picks it by its registered name::

    source:
      connector: files
      path: ./warehouse

Every connector class declares ``Settings``, a pydantic model (``extra="forbid"``) of the keys it
accepts beside ``connector``; secrets in it are ``restock.config.SecretRef`` fields.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from restock.domain import PurchaseOrder, RunSummary, Snapshot
from restock.errors import ConfigError
from restock.log import get_logger

if TYPE_CHECKING:
    from restock.config import OrgConfig

log = get_logger("restock.connectors")

ENTRY_POINT_GROUP = "restock.connectors"
Role = Literal["inventory_source", "order_sink", "summary_sink"]


class ConnectorSettings(BaseModel):
    """Base of every connector's settings: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    def advice(self) -> list[str]:
        """What is worth knowing about these settings though it is not an error
        (``restock validate`` prints it)."""
        return []


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector may know about the run it serves (never another org's secrets)."""

    org: str
    config_dir: str = "."                 # relative paths in settings resolve against this
    currency: str = "EUR"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scope:
    """What to pull: all SKUs and locations unless narrowed; history from ``since``."""

    skus: tuple[str, ...] | None = None
    locations: tuple[str, ...] | None = None
    since: Any = None


@dataclass(frozen=True)
class SubmitResult:
    """What a downstream system said about one order."""

    accepted: bool
    external_id: str | None = None
    duplicate: bool = False        # the system already had this idempotency key
    detail: str = ""


class _Connector(abc.ABC):
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    name: ClassVar[str] = ""

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context

    def check(self) -> None:
        """Hook: raise a RestockError if the system is unreachable or rejects credentials."""

    def close(self) -> None:
        """Hook: release connections."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InventorySource(_Connector):
    """Reads catalog, offers, stock positions and consumption history."""

    @abc.abstractmethod
    def pull(self, scope: Scope) -> Snapshot:
        """Return a Snapshot; raise Retriable/Fatal subclasses for system failures."""


class OrderSink(_Connector):
    """Sends purchase orders downstream, exactly once per idempotency key."""

    @abc.abstractmethod
    def submit(self, order: PurchaseOrder, idempotency_key: str) -> SubmitResult:
        """Send one order carrying the key; a repeat of a known key must not create a second."""

    @abc.abstractmethod
    def lookup(self, idempotency_key: str) -> SubmitResult | None:
        """Ask the system whether it has an order with this key (None: it has not)."""


class SummarySink(_Connector):
    """Posts a run summary to a planning system, a chat, a mailbox or a file."""

    @abc.abstractmethod
    def post(self, summary: RunSummary) -> None:
        """Deliver the summary; raise Retriable when it should be tried again later."""


_ROLE_BASES: dict[str, type[_Connector]] = {
    "inventory_source": InventorySource,
    "order_sink": OrderSink,
    "summary_sink": SummarySink,
}
_extra: dict[str, object] = {}


def register(name: str, provider: object) -> None:
    """Register a connector provider at run time (tests, embedding); entry points also count."""
    _extra[name] = provider


def available(role: Role) -> dict[str, type[_Connector]]:
    """Every registered connector class for a role, by name."""
    found: dict[str, type[_Connector]] = {}
    providers = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for name in sorted(set(providers) | set(_extra)):
        try:
            cls = _class_for(name, role, providers)
        except ConfigError as err:        # one broken plugin must not hide all the others
            log.warning("connector_unusable", connector=name, error=str(err))
            continue
        if cls is not None:
            found[name] = cls
    return found


def org_context(config: OrgConfig) -> ConnectorContext:
    """What an org's connectors may know: its id, its currency, and its file's folder (against
    which relative paths in their settings resolve)."""
    base = str(Path(config.source_file).parent) if config.source_file else "."
    return ConnectorContext(org=config.org, config_dir=base, currency=config.currency)


def open_connector(config: OrgConfig, where: str) -> Any:
    """The connector an org file names at ``where`` (``source``, ``order_sink`` or
    ``summary_sinks.N``), with the settings the loader validated."""
    if where == "source":
        ref, role = config.source, "inventory_source"
    elif where == "order_sink":
        ref, role = config.order_sink, "order_sink"
    else:
        ref, role = config.summary_sinks[int(where.rsplit(".", 1)[1])], "summary_sink"
    cls = connector_class(ref.connector, role)  # type: ignore[arg-type]
    settings = config.connector_settings.get(where) or cls.Settings.model_validate(ref.options)
    return cls(settings, org_context(config))


def connector_class(name: str, role: Role) -> type[_Connector]:
    """The class registered as ``name`` for ``role``; ConfigError naming the choices if none."""
    providers = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    cls = _class_for(name, role, providers)
    if cls is None:
        choices = ", ".join(available(role)) or "none"
        raise ConfigError(f"unknown {role.replace('_', ' ')} connector {name!r} "
                          f"(available: {choices})", field="connector")
    return cls


def _load(name: str, entry_point: Any) -> object:
    try:
        return entry_point.load()
    except Exception as err:  # noqa: BLE001 - a third party's package may fail in any way
        raise ConfigError(f"connector {name!r} ({entry_point.value}) cannot be loaded: "
                          f"{err.__class__.__name__}: {err}") from None


def _class_for(name: str, role: Role, providers: dict) -> type[_Connector] | None:
    provider = _extra.get(name)
    if provider is None and name in providers:
        provider = _load(name, providers[name])
    cls = getattr(provider, role, None) if provider is not None else None
    if cls is not None and not (isinstance(cls, type) and issubclass(cls, _ROLE_BASES[role])):
        raise ConfigError(f"connector {name!r}: its {role} is not a subclass of "
                          f"{_ROLE_BASES[role].__name__}")
    return cls

"""Organisation configuration: one YAML file per org, validated with errors that name the place.

``load_org(path)`` returns an :class:`OrgConfig` or raises :class:`ConfigError` rendered as
``config/orgs/acme.yaml:14: policy.service_level: must be between 0.5 and 0.9999 (got 1.2)``.

Secrets are never written in YAML: a secret field holds a reference, ``${ENV_VAR}`` or
``file:/run/secrets/token`` (relative paths resolve against the YAML file's folder), resolved at
load into a ``SecretStr``. Every resolved value is remembered so logs can redact it.
"""

from __future__ import annotations

import contextvars
import hashlib
import math
import os
import re
import stat
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from restock.domain import Mode
from restock.errors import ConfigError, SecretError

# ---------------------------------------------------------------- secrets

_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_secret_values: set[str] = set()
_base_dir: contextvars.ContextVar[Path] = contextvars.ContextVar("restock_config_dir",
                                                                  default=Path("."))
# Digests of the secrets resolved while one org file loads (never the values themselves).
_loading_secrets: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "restock_loading_secrets", default=None)


class SecretProblem(ValueError):
    """A secret field's value is not a usable reference (never echoes the value)."""


def known_secret_values() -> frozenset[str]:
    """Every secret value resolved so far in this process (for redaction)."""
    return frozenset(_secret_values)


def remember_secret(value: str) -> None:
    """Remember a secret obtained at run time (e.g. an OAuth2 access token) so logs redact it."""
    if len(value) >= 4:
        _secret_values.add(value)


def resolve_secret(reference: str, base_dir: Path | None = None) -> SecretStr:
    """Resolve ``${ENV}`` or ``file:PATH``; anything else is refused as a literal secret."""
    if not isinstance(reference, str):
        raise SecretProblem("must be a secret reference like ${ENV_VAR} or file:/path")
    match = _ENV_REF.match(reference.strip())
    if match:
        value = os.environ.get(match.group(1))
        if value is None or value == "":
            raise SecretProblem(f"environment variable {match.group(1)} is not set")
    elif reference.startswith("file:"):
        path = Path(reference[5:]).expanduser()
        if not path.is_absolute():
            path = (base_dir or _base_dir.get()) / path
        if _world_writable(path):
            raise SecretProblem(f"secret file {path} is world-writable: anyone could put their "
                                "own secret there (chmod o-w it)")
        try:
            value = path.read_text().strip()
        except OSError as err:
            raise SecretProblem(f"secret file {path} cannot be read ({err.strerror})") from None
        if not value:
            raise SecretProblem(f"secret file {path} is empty")
    else:
        raise SecretProblem("literal secrets are refused: write a reference like ${ENV_VAR} or "
                         "file:/run/secrets/name, never the secret itself")
    if len(value) >= 4:   # redacting 1-3 characters would garble every log line
        _secret_values.add(value)
    collecting = _loading_secrets.get()
    if collecting is not None:
        collecting.add(hashlib.sha256(value.encode()).hexdigest())
    return SecretStr(value)


def _secret_before(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value
    return resolve_secret(value)


SecretRef = Annotated[SecretStr, BeforeValidator(_secret_before)]
"""A config field that holds a secret: only ``${ENV}`` or ``file:`` references are accepted."""


# ---------------------------------------------------------------- small validated types

def _between(low: float, high: float):
    def check(value: float) -> float:
        if not low <= value <= high:   # NaN fails this too
            raise ValueError(f"must be between {low} and {high}")
        return value
    return AfterValidator(check)


def _finite(value: float) -> None:
    if not math.isfinite(value):   # NaN or infinity would silently disable a limit
        raise ValueError("must be a finite number")


def _positive(value: float) -> float:
    _finite(value)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative(value: float) -> float:
    _finite(value)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _quantile_levels(levels: tuple[float, ...]) -> tuple[float, ...]:
    for level in levels:
        if not 0.0 < level < 1.0:      # NaN fails this too
            raise ValueError(f"{level} is not strictly between 0 and 1")
    if len(set(levels)) != len(levels):
        raise ValueError("a level is listed twice")
    return tuple(sorted(levels))


ServiceLevel = Annotated[float, _between(0.5, 0.9999)]
Positive = Annotated[float, AfterValidator(_positive)]
NonNegative = Annotated[float, AfterValidator(_non_negative)]


def _check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def _check_cron(expr: str) -> str:
    from restock.schedule import cron_trigger  # 5 fields, or 6 with seconds first
    try:
        cron_trigger(expr)
    except ValueError as err:
        raise ValueError(f"not a valid cron expression ({err})") from None
    return expr


def _check_currency(code: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError("must be an ISO 4217 code like EUR or USD")
    return code


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- policy

class Buffer(Strict):
    """How much safety stock to keep: exactly one of the three."""

    service_level: ServiceLevel | None = None
    units: NonNegative | None = None
    days_of_cover: NonNegative | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Buffer:
        if sum(v is not None for v in (self.service_level, self.units, self.days_of_cover)) != 1:
            raise ValueError("give exactly one of service_level, units, days_of_cover")
        return self


class MaxBid(Strict):
    """Highest unit price restock may commit to: a default, then category and SKU overrides."""

    default: Positive | None = None
    categories: dict[str, Positive] = Field(default_factory=dict)
    skus: dict[str, Positive] = Field(default_factory=dict)

    def for_item(self, sku: str, category: str | None) -> float | None:
        if sku in self.skus:
            return self.skus[sku]
        if category is not None and category in self.categories:
            return self.categories[category]
        return self.default


def _max_bid_shorthand(value: Any) -> Any:
    return {"default": value} if isinstance(value, (int, float)) else value


ServiceScope = Literal["item", "pooled"]
"""``item``: every item meets the service level itself; ``pooled``: the items meet it on
average, with the least stock value (see docs/policy.md)."""


def _not_pooled_alone(scope: str | None) -> str | None:
    if scope == "pooled":
        raise ValueError("a SKU cannot be pooled on its own: set service_scope: pooled on the "
                         "org or the SKU's category")
    return scope


class PolicyOverride(Strict):
    """Settings that may differ per category or SKU."""

    service_level: ServiceLevel | None = None
    service_measure: Literal["cycle", "fill_rate"] | None = None
    service_scope: ServiceScope | None = None
    buffer: Buffer | None = None
    review_period_days: Positive | None = None
    lead_time_days: Positive | None = None
    max_order_quantity: Positive | None = None


class SkuOverride(PolicyOverride):
    """A SKU's own settings; it may leave a pool (``service_scope: item``) but not form one."""

    service_scope: Annotated[ServiceScope | None, AfterValidator(_not_pooled_alone)] = None


class Overrides(Strict):
    categories: dict[str, PolicyOverride] = Field(default_factory=dict)
    skus: dict[str, SkuOverride] = Field(default_factory=dict)


class Policy(Strict):
    service_level: ServiceLevel = 0.95
    service_measure: Literal["cycle", "fill_rate"] = "cycle"
    service_scope: ServiceScope = "item"
    service_feedback: bool = True          # correct the level by the service delivered so far
    buffer: Buffer | None = None           # None: from service_level and the forecast's spread
    review_period_days: Positive = 7
    lead_time_days: Positive = 14          # when an offer does not say
    max_bid: Annotated[MaxBid, BeforeValidator(_max_bid_shorthand)] = MaxBid()
    budget: Positive | None = None         # per run, in the org's currency; None: unlimited
    max_order_value: Positive | None = None  # an order above this is held for approval
    max_order_quantity: Positive | None = None
    overrides: Overrides = Overrides()

    def for_item(self, sku: str, category: str | None) -> PolicyOverride:
        """The effective per-item settings: SKU over category over org defaults."""
        merged: dict[str, Any] = {
            "service_level": self.service_level, "service_measure": self.service_measure,
            "service_scope": self.service_scope, "buffer": self.buffer,
            "review_period_days": self.review_period_days,
            "lead_time_days": self.lead_time_days, "max_order_quantity": self.max_order_quantity}
        for layer in (self.overrides.categories.get(category or ""), self.overrides.skus.get(sku)):
            if layer is not None:
                merged.update({k: v for k, v in layer.model_dump(exclude_none=True).items()})
                if layer.buffer is not None:
                    merged["buffer"] = layer.buffer
        return PolicyOverride(**merged)


class ForecastSettings(Strict):
    freq: Literal["D", "W", "M"] = "D"
    season_length: Annotated[int, Field(ge=1)] | None = None   # None: 7 daily, 52 weekly, 12 monthly
    history_days: Annotated[int, Field(ge=1, le=36500, strict=True)] = 730
    # Model catalog rows of runs catalogued longer ago are deleted (the latest run's never);
    # None keeps them all. Strict: YAML's `yes` or `1.0` must not become a day of retention.
    catalog_days: Annotated[int, Field(ge=1, le=36500, strict=True)] | None = 400
    statsmodels_seconds: NonNegative = 30        # time budget for the slow models; 0: fast only
    # Levels of demand over each SKU's lead time + review given with its forecast reason
    quantiles: Annotated[tuple[float, ...], Field(max_length=9),
                         AfterValidator(_quantile_levels)] = (0.5, 0.9, 0.95)


class Guard(Strict):
    """What makes a line wait for a person even in auto mode."""

    max_multiple_of_usual: Positive = 4.0        # a line this many times its usual order size
    min_forecast_confidence: Annotated[float, _between(0.0, 1.0)] = 0.2
    approval_expires_hours: Positive = 72


# ---------------------------------------------------------------- connectors and org

class ConnectorRef(BaseModel):
    """``connector: NAME`` plus that connector's own keys, validated by its Settings model."""

    model_config = ConfigDict(extra="allow", frozen=True)
    connector: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OrgConfig(Strict):
    """One organisation's configuration (one YAML file)."""

    org: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    name: str = ""
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    currency: Annotated[str, AfterValidator(_check_currency)] = "EUR"
    schedule: Annotated[str, AfterValidator(_check_cron)] = "0 6 * * *"
    mode: Mode = Mode.APPROVAL
    source: ConnectorRef
    order_sink: ConnectorRef
    summary_sinks: list[ConnectorRef] = Field(default_factory=list)
    # Summaries of runs finished longer ago are deleted at each run (the run stays listed; the
    # newest few and any a sink is still owed are kept); None keeps them all. Strict as
    # catalog_days: YAML's `yes` must not become a day.
    summary_days: Annotated[int, Field(ge=1, le=36500, strict=True)] | None = 400
    policy: Policy = Policy()
    forecast: ForecastSettings = ForecastSettings()
    guard: Guard = Guard()
    # Filled by the loader, not by YAML:
    source_file: str | None = Field(default=None, exclude=True)
    connector_settings: dict[str, Any] = Field(default_factory=dict, exclude=True)
    secret_digests: frozenset[str] = Field(default_factory=frozenset, exclude=True)


# ---------------------------------------------------------------- loading with line numbers

def load_org(path: str | Path) -> OrgConfig:
    """Load and validate one org file; ConfigError names file, line and field."""
    path = Path(path)
    shown = _display_path(path)
    _refuse_world_writable(path, shown)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read file ({err})", file=shown) from None
    data, lines = parse_yaml(text, shown)
    if not isinstance(data, dict):
        raise ConfigError("the file must be a mapping of settings", file=shown, line=1)
    data.setdefault("org", path.stem)
    token = _base_dir.set(path.parent.resolve())
    digests: set[str] = set()
    collecting = _loading_secrets.set(digests)
    try:
        config = OrgConfig.model_validate(data)
        settings = _validate_connectors(config)
    except ValidationError as err:
        raise _config_error(err, shown, lines) from None
    except ConfigError as err:
        raise type(err)(err.message, file=shown, line=_line_for(lines, err.field),
                        field=err.field) from None
    finally:
        _base_dir.reset(token)
        _loading_secrets.reset(collecting)
    return config.model_copy(update={"source_file": str(path), "connector_settings": settings,
                                     "secret_digests": frozenset(digests)})


def load_orgs(directory: str | Path) -> tuple[dict[str, OrgConfig], list[ConfigError]]:
    """Every ``*.yaml``/``*.yml`` org file in a folder: the valid ones and the errors."""
    configs: dict[str, OrgConfig] = {}
    errors: list[ConfigError] = []
    for path in sorted(org_files(directory)):
        try:
            config = load_org(path)
        except ConfigError as err:
            errors.append(err)
            continue
        if config.org in configs:
            errors.append(ConfigError(f"org {config.org!r} is already defined in "
                                      f"{configs[config.org].source_file}",
                                      file=_display_path(path), field="org"))
            continue
        configs[config.org] = config
    errors += _refuse_shared_secrets(configs)
    return configs, errors


def _refuse_shared_secrets(configs: dict[str, OrgConfig]) -> list[ConfigError]:
    """Orgs whose files resolve the same secret are refused, each naming the other.

    Each org's tokens are for its own connectors only; a shared one is most often an org file
    copied without changing its token, which would send one org's orders with another's key.
    Removes the refused orgs from ``configs``.
    """
    owners: dict[str, set[str]] = {}
    for org, config in configs.items():
        for digest in config.secret_digests:
            owners.setdefault(digest, set()).add(org)
    sharing: dict[str, set[str]] = {}
    for orgs in owners.values():
        for org in orgs if len(orgs) > 1 else ():
            sharing.setdefault(org, set()).update(orgs - {org})
    errors = []
    for org, others in sorted(sharing.items()):
        config = configs.pop(org)
        names = ", ".join(repr(o) for o in sorted(others))
        shown = _display_path(Path(config.source_file)) if config.source_file else None
        errors.append(ConfigError(f"uses the same secret as org {names}: each org's tokens are "
                                  "used only by its own connectors (give it its own secret)",
                                  file=shown))
    return errors


def org_files(directory: str | Path) -> list[Path]:
    """The org files of a config folder (``DIR/orgs/*.yaml`` if that exists, else ``DIR/*.yaml``)."""
    root = Path(directory)
    folder = root / "orgs" if (root / "orgs").is_dir() else root
    if not folder.is_dir():
        raise ConfigError("no such configuration folder", file=str(folder))
    return [p for p in folder.iterdir()
            if p.suffix in (".yaml", ".yml") and p.stem != "restock" and p.is_file()]


def parse_yaml(text: str, shown: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML keeping each node's line; duplicate keys are errors, not silent overwrites."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"malformed YAML: {problem}", file=shown,
                          line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise ConfigError("malformed YAML: nested too deeply", file=shown) from None
    if node is None:
        return None, {}
    walk = _Walk(shown)
    return walk.construct(node, ()), walk.lines


_MAX_NODES = 100_000   # aliases can expand a small file exponentially ("billion laughs")


class _Walk:
    """Builds plain values from YAML nodes, remembering each one's line; refuses alias tricks."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.lines: dict[tuple, int] = {}
        self.active: set[int] = set()
        self.count = 0

    def construct(self, node: yaml.Node, loc: tuple) -> Any:
        self.lines[loc] = node.start_mark.line + 1
        self.count += 1
        if self.count > _MAX_NODES or len(loc) > 50:
            raise ConfigError("the document is too large or too deeply nested (aliases?)",
                              file=self.shown, line=node.start_mark.line + 1)
        if id(node) in self.active:
            raise ConfigError("an alias refers to itself", file=self.shown,
                              line=node.start_mark.line + 1)
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return _scalar(node, self.shown)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.construct(item, (*loc, i)) for i, item in enumerate(node.value)]
            return self._mapping(node, loc)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, loc: tuple) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, self.shown)
            if key in result:
                raise ConfigError(f"duplicate key {key!r}", file=self.shown,
                                  line=key_node.start_mark.line + 1,
                                  field=".".join(map(str, (*loc, key))))
            result[key] = self.construct(value_node, (*loc, key))
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
        return result


def _scalar(node: yaml.Node, shown: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError("a key must be a plain value", file=shown, line=node.start_mark.line + 1)
    try:
        return yaml.SafeLoader("").construct_object(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"malformed YAML value: {problem}", file=shown,
                          line=node.start_mark.line + 1) from None


def _validate_connectors(config: OrgConfig) -> dict[str, Any]:
    from restock.connectors import connector_class

    settings: dict[str, Any] = {}
    refs = [("source", "inventory_source", config.source),
            ("order_sink", "order_sink", config.order_sink)]
    refs += [(f"summary_sinks.{i}", "summary_sink", ref) for i, ref in enumerate(config.summary_sinks)]
    for where, role, ref in refs:
        try:
            cls = connector_class(ref.connector, role)  # type: ignore[arg-type]
        except ConfigError as err:
            raise ConfigError(err.message, field=f"{where}.connector") from None
        _refuse_header_credentials(ref.options, where)
        try:
            settings[where] = cls.Settings.model_validate(ref.options)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in (where, *first["loc"]))
            kind = SecretError if _is_secret_problem(first) else ConfigError
            raise kind(_message(first), field=loc) from None
    return settings


# Header names that carry credentials: such a value in YAML would be a literal secret.
_CREDENTIAL_HEADER = re.compile(r"^(proxy-)?authorization$|^cookie$|token|secret|passw|api[-_]?key",
                                re.IGNORECASE)


def _refuse_header_credentials(options: Any, where: str) -> None:
    """A ``headers:`` block (at any depth of a connector's keys) must not hold a credential."""
    if not isinstance(options, dict):
        return
    for key, value in options.items():
        if key == "headers" and isinstance(value, dict):
            for name in value:
                if _CREDENTIAL_HEADER.search(str(name)):
                    raise SecretError("a credential written literally in a header is refused; "
                                      "use auth (bearer, api_key or basic) with a ${ENV} or "
                                      "file: reference", field=f"{where}.headers.{name}")
        else:
            _refuse_header_credentials(value, f"{where}.{key}")


def _config_error(err: ValidationError, shown: str, lines: dict[tuple, int]) -> ConfigError:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    more = len(err.errors()) - 1
    message = _message(first) + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
    cls = SecretError if _is_secret_problem(first) else ConfigError
    return cls(message, file=shown, line=_line_for(lines, field), field=field)


def _is_secret_problem(error: dict[str, Any]) -> bool:
    return isinstance((error.get("ctx") or {}).get("error"), SecretProblem)


# Plain words for pydantic's type errors (its own messages speak of Python types).
_TYPE_MESSAGES = {
    "float_parsing": "must be a number", "float_type": "must be a number",
    "int_parsing": "must be a whole number", "int_type": "must be a whole number",
    "int_from_float": "must be a whole number", "bool_parsing": "must be true or false",
    "bool_type": "must be true or false", "string_type": "must be text",
    "dict_type": "must be a mapping of keys to values", "list_type": "must be a list",
    "tuple_type": "must be a list", "model_type": "must be a mapping of keys to values",
    "date_from_datetime_parsing": "must be a date like 2026-01-31",
    "date_parsing": "must be a date like 2026-01-31",
}


def _message(error: dict[str, Any]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return f"unknown key{_suggestion(error['loc'][-1])}"
    if kind == "missing":
        return "required but missing"
    if _is_secret_problem(error):
        return msg.removeprefix("Value error, ")   # never echo what was written in a secret field
    msg = _TYPE_MESSAGES.get(kind, msg)
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if msg.startswith("Input should be "):      # pydantic's wording, in the file's terms
        msg = "must be " + msg.removeprefix("Input should be ")
    value = error.get("input")
    if isinstance(value, (int, float, str, bool)) and len(str(value)) < 60:
        msg = f"{msg} (got {value!r})" if isinstance(value, str) else f"{msg} (got {value})"
    return msg


def _suggestion(key: object) -> str:
    """' (did you mean 'x'?)' for a key close to a known setting name, else a hint."""
    import difflib

    close = difflib.get_close_matches(str(key), sorted(_known_keys()), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else \
        " (check its spelling and where it sits)"


def _known_keys() -> set[str]:
    from restock.connectors import ConnectorSettings

    models: list[type[BaseModel]] = [OrgConfig, *Strict.__subclasses__(),
                                     *_all_subclasses(ConnectorSettings)]
    return {name for model in models for name in model.model_fields}


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


def _line_for(lines: dict[tuple, int], field: str | None) -> int | None:
    if not field:
        return None
    parts: list[Any] = [int(p) if p.isascii() and p.isdigit() else p for p in field.split(".")]
    while parts:
        if tuple(parts) in lines:
            return lines[tuple(parts)]
        parts.pop()
    return lines.get(())


def _refuse_world_writable(path: Path, shown: str) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        raise ConfigError("no such file", file=shown) from None
    if mode & stat.S_IWOTH:
        raise ConfigError("refusing a world-writable configuration file (chmod o-w it)",
                          file=shown)
    folder = path.resolve().parent
    if _world_writable(folder) and not folder.stat().st_mode & stat.S_ISVTX:
        # Anyone may replace the file in such a folder, whatever the file's own mode.
        raise ConfigError(f"refusing a configuration file in a world-writable folder ({folder}; "
                          "chmod o-w it)", file=shown)


def _world_writable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & stat.S_IWOTH)
    except OSError:
        return False


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)

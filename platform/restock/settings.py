"""Daemon-wide settings: where state lives, where org files are, how the daemon behaves.

Read, highest precedence first, from: command-line flags (keyword arguments to :func:`load_settings`),
environment variables prefixed ``RESTOCK_`` (``RESTOCK_HEALTH_ADDR=0.0.0.0:8787``), the optional
``restock.yaml`` in the config folder (or the file named by ``RESTOCK_SETTINGS_FILE``), then the
defaults below. A bad value is a :class:`ConfigError` naming the file and line, or the variable.
"""

from __future__ import annotations

import contextvars
import os
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from restock.errors import ConfigError

SETTINGS_FILE = "restock.yaml"
_yaml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar("restock_settings_file",
                                                                        default=None)


def split_addr(addr: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8787`` for IPv6) as a pair; ValueError saying what is wrong."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"must be HOST:PORT, like 127.0.0.1:8787 (got {addr!r})")
    return host.strip("[]"), int(port)


def _check_addr(addr: str) -> str:
    split_addr(addr)
    return addr


HostPort = Annotated[str, AfterValidator(_check_addr)]


def _default_replica() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """How the daemon runs; per-org behaviour lives in the org files, not here."""

    model_config = SettingsConfigDict(env_prefix="RESTOCK_", extra="forbid", frozen=True)

    state_url: str = "sqlite:///var/restock.sqlite"         # the same store `restock run` uses
    """SQLAlchemy URL of the state store; ``file:PATH`` reads it from a (secret) file."""
    config_dir: Path = Path("config")
    health_addr: HostPort = "127.0.0.1:8787"
    max_parallel_orgs: Annotated[int, Field(ge=1, le=512)] = 4
    reload_interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 2.0
    shutdown_timeout_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    misfire_grace_seconds: Annotated[int, Field(ge=1)] = 300
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    replica_id: Annotated[str, Field(min_length=1, max_length=120)] = Field(
        default_factory=_default_replica)
    trigger_token: SecretStr | None = None
    """When set, ``POST /trigger/{org}`` needs ``Authorization: Bearer <token>``;
    ``file:PATH`` reads it from a (secret) file."""

    @field_validator("trigger_token", mode="before")
    @classmethod
    def _token_from_file(cls, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("file:"):
            return _read_secret_file(value[5:])
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _yaml_path.get()
        if path is not None and path.is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    def resolved_state_url(self) -> str:
        """The store URL, read from its file when given as ``file:PATH``."""
        if not self.state_url.startswith("file:"):
            return self.state_url
        path = Path(self.state_url[5:]).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(f"cannot read the state URL file {path} ({err.strerror})",
                              field="state_url") from None

    @property
    def health_host_port(self) -> tuple[str, int]:
        return split_addr(self.health_addr)


def _read_secret_file(name: str) -> str:
    path = Path(name).expanduser()
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ValueError(f"cannot read the secret file {path} ({err.strerror})") from None


def settings_file(config_dir: str | Path | None = None) -> Path:
    """Where restock.yaml is looked for: RESTOCK_SETTINGS_FILE, else the config folder's."""
    explicit = os.environ.get("RESTOCK_SETTINGS_FILE")
    if explicit:
        return Path(explicit)
    folder = config_dir or os.environ.get("RESTOCK_CONFIG_DIR") or "config"
    return Path(folder) / SETTINGS_FILE


def load_settings(**overrides: Any) -> Settings:
    """Settings from flags (``overrides``; None means "not given"), environment and restock.yaml."""
    given = {key: value for key, value in overrides.items() if value is not None}
    path = settings_file(given.get("config_dir"))
    _check_yaml(path)
    token = _yaml_path.set(path)
    try:
        return Settings(**given)
    except ValidationError as err:
        raise _settings_error(err, path) from None
    finally:
        _yaml_path.reset(token)


def _check_yaml(path: Path) -> None:
    """Malformed YAML or a non-mapping is reported with its line before pydantic sees it."""
    from restock.config import parse_yaml

    if not path.is_file():
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read file ({err})", file=str(path)) from None
    data, _ = parse_yaml(text, str(path))
    if data is not None and not isinstance(data, dict):
        raise ConfigError("the file must be a mapping of settings", file=str(path), line=1)


def _settings_error(err: ValidationError, path: Path) -> ConfigError:
    from restock.config import parse_yaml

    first = err.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown setting (check its spelling)"
    env_name = f"RESTOCK_{(field or '').upper()}"
    if field and env_name in os.environ:
        return ConfigError(message, file=f"environment {env_name}")
    if path.is_file():
        try:
            _, lines = parse_yaml(path.read_text(encoding="utf-8"), str(path))
        except ConfigError as bad_yaml:
            return bad_yaml
        line = lines.get((field,)) if field else None
        return ConfigError(message, file=str(path), line=line, field=field)
    return ConfigError(message, field=field)

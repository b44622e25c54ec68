"""Hot reload of org files by polling: cheap, and it works on bind mounts and Kubernetes
ConfigMaps (whose files change by symlink swap, which inotify-style watchers often miss)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from restock.config import OrgConfig, load_org, org_files
from restock.errors import ConfigError


@dataclass
class Changes:
    """What one poll found: configs to (re)schedule, orgs to drop, files that were rejected."""

    loaded: list[OrgConfig] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rejected: list[ConfigError] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.loaded or self.removed or self.rejected)


class OrgFiles:
    """Tracks the org files of a config folder and the last valid config of each org."""

    def __init__(self, config_dir: str | Path) -> None:
        self.config_dir = Path(config_dir)
        self._stamps: dict[Path, tuple[int, int, int]] = {}
        self._org_of: dict[Path, str] = {}          # file -> org it last validly defined
        self.configs: dict[str, OrgConfig] = {}
        self.errors: dict[Path, ConfigError] = {}

    def poll(self) -> Changes:
        """Load what changed since the last poll; an invalid edit keeps the last valid config."""
        changes = Changes()
        current = {path: _stamp(path) for path in sorted(org_files(self.config_dir))}
        for path in [p for p in self._stamps if p not in current]:
            self._forget(path, changes)
        for path, stamp in current.items():
            if stamp is not None and self._stamps.get(path) != stamp:
                self._stamps[path] = stamp
                self._load(path, changes)
        return changes

    def _load(self, path: Path, changes: Changes) -> None:
        try:
            config = load_org(path)
            self._check_unique(path, config)
        except ConfigError as err:
            self.errors[path] = err
            changes.rejected.append(err)
            return
        self.errors.pop(path, None)
        previous = self._org_of.get(path)
        if previous is not None and previous != config.org:
            self._drop_org(previous, changes)
        self._org_of[path] = config.org
        self.configs[config.org] = config
        changes.loaded.append(config)

    def _check_unique(self, path: Path, config: OrgConfig) -> None:
        for other, org in self._org_of.items():
            if org == config.org and other != path:
                raise ConfigError(f"org {config.org!r} is already defined in {other}",
                                  file=str(path), field="org")

    def _forget(self, path: Path, changes: Changes) -> None:
        self._stamps.pop(path, None)
        self.errors.pop(path, None)
        org = self._org_of.pop(path, None)
        if org is not None:
            self._drop_org(org, changes)

    def _drop_org(self, org: str, changes: Changes) -> None:
        self.configs.pop(org, None)
        changes.removed.append(org)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:      # deleted between listing and stat: the next poll sees it gone
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino

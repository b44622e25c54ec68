"""docker/: the entrypoint really starts the daemon, answers the image's healthcheck and passes
SIGTERM through (exec); Dockerfile, compose file and systemd unit agree with the package and the
daemon's settings. (Docker itself cannot run here; what it would run is run directly.)"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.support.daemon_kit import wait_until, write_org

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entrypoint_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTOCK_")}
    env.update({"PATH": f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
                "RESTOCK_CONFIG_DIR": str(tmp_path / "config"),
                "RESTOCK_STATE_URL": f"sqlite:///{tmp_path / 'state' / 'restock.sqlite'}",
                "RESTOCK_HEALTH_ADDR": f"127.0.0.1:{port}", "RESTOCK_LOG_FORMAT": "json"})
    return env


def _healthcheck(env: dict[str, str]) -> int:
    return subprocess.run(["sh", str(DOCKER / "entrypoint.sh"), "healthcheck"], env=env,
                          capture_output=True, timeout=30, check=False).returncode


def test_entrypoint_runs_the_daemon_answers_the_healthcheck_and_forwards_sigterm(tmp_path):
    pytest.importorskip("restock.store", reason="the state store is not installed")
    (tmp_path / "config" / "orgs").mkdir(parents=True)
    write_org(tmp_path / "config" / "orgs", "acme", "0 3 1 1 *")
    env = _entrypoint_env(tmp_path, _free_port())
    assert _healthcheck(env) != 0                          # nothing listens yet
    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen(["sh", str(DOCKER / "entrypoint.sh")], env=env, cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: proc.poll() is not None or _healthcheck(env) == 0, 60,
                   "the healthcheck to pass")
        assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
        proc.send_signal(signal.SIGTERM)                   # exec: the signal reaches restock
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert b'"daemon.stopped"' in (tmp_path / "daemon.log").read_bytes()


def test_entrypoint_refuses_a_missing_config_folder(tmp_path):
    env = _entrypoint_env(tmp_path, _free_port())
    done = subprocess.run(["sh", str(DOCKER / "entrypoint.sh")], env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert f"no config folder at {tmp_path / 'config'}" in done.stderr


def test_dockerfile_installs_the_package_as_the_readme_does_and_runs_unprivileged():
    text = (DOCKER / "Dockerfile").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    installed = re.search(r"pip install '\.\[([a-z,]+)\]'", text)
    assert installed and set(installed.group(1).split(",")) <= set(extras)
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0"))
    assert "HEALTHCHECK" in text and "healthcheck" in (DOCKER / "entrypoint.sh").read_text()
    assert "/healthz" in (DOCKER / "entrypoint.sh").read_text()


def test_compose_mounts_config_read_only_and_passes_secrets_as_files():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    restock, db = compose["services"]["restock"], compose["services"]["db"]
    assert any(v.endswith(":/srv/restock/config:ro") for v in restock["volumes"])
    assert restock["environment"]["RESTOCK_STATE_URL"].startswith("file:/run/secrets/")
    assert set(restock["secrets"]) <= set(compose["secrets"])
    assert db["volumes"][0].split(":")[0] in compose["volumes"]
    assert restock["depends_on"]["db"]["condition"] == "service_healthy"
    grace = int(restock["stop_grace_period"].rstrip("s"))
    assert grace > float(restock["environment"]["RESTOCK_SHUTDOWN_TIMEOUT_SECONDS"])


def test_systemd_unit_stops_after_the_daemons_shutdown_timeout():
    unit = (DOCKER / "restock.service").read_text()
    settings = dict(re.findall(r"^Environment=(RESTOCK_\w+)=(\S+)", unit, re.MULTILINE))
    stop = int(re.search(r"^TimeoutStopSec=(\d+)", unit, re.MULTILINE).group(1))
    assert stop > float(settings["RESTOCK_SHUTDOWN_TIMEOUT_SECONDS"])
    assert re.search(r"^ExecStart=\S+/restock daemon", unit, re.MULTILINE)
    assert settings["RESTOCK_STATE_URL"].startswith("file:")

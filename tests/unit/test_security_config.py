"""Config files and secret files nobody else can swap: world-writable ones are refused.

A world-writable org file is refused (tests/unit/test_config_loading.py); so is one in a folder
anyone may write to (without the sticky bit, anyone could replace the file), and a secret file
anyone may write to (anyone could put their own token there, or point restock at their server
through one). The messages name the file, never the secret.
"""

from __future__ import annotations

import pytest

from restock.config import load_org
from restock.errors import ConfigError, SecretError

SECRET = "file-secret-0d9a4c2e71"


def _org(folder, token_ref: str = "${SECCFG_TOKEN}"):
    path = folder / "acme.yaml"
    path.write_text("org: acme\nsource: {connector: files, path: ./warehouse}\n"
                    "order_sink: {connector: webhook, url: 'https://erp.example.com/orders', "
                    f"token: '{token_ref}'}}\n")
    path.chmod(0o640)
    return path


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("SECCFG_TOKEN", "env-secret-77b1e0")


def test_an_org_file_in_a_folder_anyone_can_write_is_refused(tmp_path):
    folder = tmp_path / "orgs"
    folder.mkdir()
    path = _org(folder)
    folder.chmod(0o777)
    with pytest.raises(ConfigError, match="world-writable folder") as caught:
        load_org(path)
    assert "acme.yaml" in str(caught.value)


def test_a_sticky_shared_folder_is_accepted(tmp_path):
    folder = tmp_path / "orgs"
    folder.mkdir()
    path = _org(folder)
    folder.chmod(0o1777)         # like /tmp: only a file's owner may replace it
    assert load_org(path).org == "acme"


def test_a_world_writable_secret_file_is_refused_without_showing_it(tmp_path):
    secret = tmp_path / "erp_token"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o666)
    path = _org(tmp_path, "file:./erp_token")
    with pytest.raises(SecretError) as caught:
        load_org(path)
    message = str(caught.value)
    assert "erp_token" in message and "world-writable" in message
    assert SECRET not in message and "\n" not in message


def test_a_private_secret_file_loads(tmp_path):
    secret = tmp_path / "erp_token"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    config = load_org(_org(tmp_path, "file:./erp_token"))
    assert config.connector_settings["order_sink"].token.get_secret_value() == SECRET

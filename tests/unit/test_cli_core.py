"""`restock validate`, `restock run` argument handling and `restock demo-data`, in process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from restock.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_copy(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path / "config"


def test_validate_on_the_shipped_config_exits_0(config_copy, capsys):
    assert main(["validate", "--config", str(config_copy)]) == 0
    assert "ok  demo" in capsys.readouterr().out


def test_validate_notes_a_webhook_sink_that_cannot_look_orders_up(config_copy, capsys):
    sink = ("order_sink: {connector: webhook, url: 'https://erp.example/orders'%s}\n"
            "source: {connector: files, path: ./warehouse}\n")
    (config_copy / "orgs" / "blind.yaml").write_text("org: blind\n" + sink % "")
    (config_copy / "orgs" / "seeing.yaml").write_text(
        "org: seeing\n" + sink % ", lookup_url: 'https://erp.example/orders/{key}'")
    assert main(["validate", "--config", str(config_copy)]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note")]
    assert len(notes) == 1 and notes[0].startswith("note  blind  order_sink: no lookup_url")
    assert "ok  seeing" in out and "ok  blind" in out


def test_validate_on_a_broken_file_exits_2_with_file_line_field(config_copy, capsys):
    demo = (config_copy / "orgs" / "demo.yaml").read_text()
    broken = demo.replace("org: demo", "org: broken")
    (config_copy / "orgs" / "broken.yaml").write_text(
        broken.replace("service_level: 0.95", "service_level: 1.2"))
    assert main(["validate", "--config", "config"]) == 2
    out = capsys.readouterr()
    line = next(i for i, text in enumerate(demo.splitlines(), 1) if "service_level: 0.95" in text)
    assert out.err.strip() == (f"config/orgs/broken.yaml:{line}: policy.service_level: "
                               "must be between 0.5 and 0.9999 (got 1.2)")
    assert "ok  demo" in out.out


def test_validate_reports_every_broken_file(config_copy, capsys):
    (config_copy / "orgs" / "a.yaml").write_text("org: a\nsource: [\n")
    (config_copy / "orgs" / "b.yaml").write_text("org: b\ncolour: red\n")
    assert main(["validate", "--config", "config"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert [e.split(":")[0] for e in errors] == ["config/orgs/a.yaml", "config/orgs/b.yaml"]


def test_validate_checks_restock_yaml_syntax(config_copy, capsys):
    (config_copy / "restock.yaml").write_text("state_url: [\n")
    assert main(["validate", "--config", "config"]) == 2
    assert capsys.readouterr().err.startswith("config/restock.yaml:")


def test_validate_without_org_files_or_folder_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert main(["validate", "--config", "empty"]) == 2
    assert main(["validate", "--config", "nowhere"]) == 2
    assert "no such configuration folder" in capsys.readouterr().err


def test_run_of_an_unknown_org_is_a_usage_error(config_copy, capsys):
    assert main(["run", "--org", "nope", "--config", "config"]) == 2
    assert "no org 'nope' here (valid orgs: demo)" in capsys.readouterr().err


def test_run_of_a_broken_org_prints_its_error_and_exits_2(config_copy, capsys):
    path = config_copy / "orgs" / "demo.yaml"
    path.write_text(path.read_text().replace("mode: auto", "mode: yolo"))
    assert main(["run", "--org", "demo", "--config", "config"]) == 2
    assert capsys.readouterr().err.startswith("restock: config/orgs/demo.yaml:")


def test_demo_data_writes_a_readable_warehouse(tmp_path, capsys):
    assert main(["demo-data", "--out", str(tmp_path / "wh"), "--seed", "3", "--skus", "40"]) == 0
    assert "wrote 40 SKUs" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "wh").iterdir()} >= {
        "catalog.csv", "offers.csv", "positions.csv", "history.csv.gz", "open_orders.csv"}


def test_commands_read_the_state_url_as_the_daemon_does(config_copy, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.delenv("RESTOCK_STATE_URL", raising=False)
    secret = tmp_path / "state-url"
    secret.write_text(f"sqlite:///{tmp_path / 'from-file.sqlite'}\n")
    (config_copy / "restock.yaml").write_text(f"state_url: file:{secret}\n")
    assert main(["runs", "list", "--config", str(config_copy)]) == 0
    assert (tmp_path / "from-file.sqlite").is_file()


def test_the_console_script_keeps_blas_to_one_thread():
    # In a fresh process without thread settings, as a shell starts `restock`.
    code = ("import json, restock.cli as cli\n"
            "from threadpoolctl import threadpool_info\n"
            "cli.main = lambda: print(json.dumps([i['num_threads'] for i in threadpool_info()\n"
            "                                      if i['user_api'] == 'blas'])) or 0\n"
            "cli.run()\n")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True)
    threads = json.loads(done.stdout)
    assert threads and set(threads) == {1}

"""Cron schedules (crontab weekdays, seconds) and the daemon-wide settings' sources and errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from restock.errors import ConfigError
from restock.schedule import cron_trigger, crontab_weekdays, next_fire
from restock.settings import load_settings

MONDAY = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("field", "names"), [
    ("1-5", "mon,tue,wed,thu,fri"), ("0", "sun"), ("7", "sun"), ("0,6", "sun,sat"),
    ("mon-sun", "sun,mon,tue,wed,thu,fri,sat"), ("*/2", "sun,tue,thu,sat"), ("*", "*"),
    ("5-7", "sun,fri,sat")])
def test_weekdays_mean_what_they_mean_in_crontab(field, names):
    assert crontab_weekdays(field) == names


def test_weekday_schedule_skips_the_weekend():
    fires = []
    when = datetime(2026, 6, 5, 12, 0, tzinfo=UTC)                      # a Friday, after 06:00
    for _ in range(3):
        when = next_fire("0 6 * * 1-5", "UTC", when)
        fires.append(when.strftime("%a"))
        when = when.replace(minute=1)
    assert fires == ["Mon", "Tue", "Wed"]


def test_six_fields_put_seconds_first():
    assert next_fire("*/5 * * * * *", "UTC", MONDAY.replace(second=1)) == MONDAY.replace(second=5)


@pytest.mark.parametrize("bad", ["* * * *", "1 2 3 4 5 6 7", "0 6 * * 8", "0 6 * * 5-1",
                                 "0 6 * * fri-mon", "61 * * * *"])
def test_bad_schedules_are_refused(bad):
    with pytest.raises(ValueError):
        cron_trigger(bad)


def test_an_org_file_accepts_a_six_field_schedule(tmp_path):
    from restock.config import load_org
    from tests.support.daemon_kit import write_org

    config = load_org(write_org(tmp_path, "fast", "*/3 * * * * *"))
    assert config.schedule == "*/3 * * * * *"


@pytest.fixture
def settings_env(tmp_path: Path, monkeypatch):
    for name in ("RESTOCK_SETTINGS_FILE", "RESTOCK_CONFIG_DIR", "RESTOCK_STATE_URL",
                 "RESTOCK_HEALTH_ADDR", "RESTOCK_MAX_PARALLEL_ORGS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_defaults_then_yaml_then_environment_then_flags(settings_env, monkeypatch):
    folder = settings_env
    assert load_settings(config_dir=folder).health_addr == "127.0.0.1:8787"
    (folder / "restock.yaml").write_text("health_addr: 0.0.0.0:9000\nmax_parallel_orgs: 8\n"
                                         "state_url: sqlite:///x.db\n")
    settings = load_settings(config_dir=folder)
    assert (settings.health_addr, settings.max_parallel_orgs) == ("0.0.0.0:9000", 8)
    monkeypatch.setenv("RESTOCK_HEALTH_ADDR", "127.0.0.1:9100")
    assert load_settings(config_dir=folder).health_addr == "127.0.0.1:9100"
    assert load_settings(config_dir=folder, health_addr="127.0.0.1:0").health_host_port == \
        ("127.0.0.1", 0)


def test_the_shipped_restock_yaml_is_valid():
    root = Path(__file__).resolve().parents[2]
    settings = load_settings(config_dir=root / "config")
    assert settings.state_url.startswith("sqlite")


@pytest.mark.parametrize(("text", "expected"), [
    ("max_parallel_orgs: 0\n", "restock.yaml:1: max_parallel_orgs: Input should be greater"),
    ("health_addr: 8787\n", "restock.yaml:1: health_addr: Input should be a valid string"),
    ("state_url: x\nhealth_adr: 1:2\n", "restock.yaml:2: health_adr: unknown setting"),
    ("health_addr: localhost\n", "restock.yaml:1: health_addr: must be HOST:PORT"),
    ("a: [1\n", "restock.yaml:2: malformed YAML"),
])
def test_bad_settings_name_the_file_and_line(settings_env, text, expected):
    (settings_env / "restock.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(config_dir=settings_env)
    assert expected in str(err.value)


def test_a_bad_environment_variable_is_named(settings_env, monkeypatch):
    monkeypatch.setenv("RESTOCK_MAX_PARALLEL_ORGS", "many")
    with pytest.raises(ConfigError, match="environment RESTOCK_MAX_PARALLEL_ORGS: Input should"):
        load_settings(config_dir=settings_env)


def test_state_url_can_come_from_a_secret_file(settings_env):
    secret = settings_env / "state_url"
    secret.write_text("postgresql+psycopg://restock:s3cret@db/restock\n")
    settings = load_settings(config_dir=settings_env, state_url=f"file:{secret}")
    assert settings.resolved_state_url() == "postgresql+psycopg://restock:s3cret@db/restock"
    missing = load_settings(config_dir=settings_env, state_url="file:/nonexistent/x")
    with pytest.raises(ConfigError, match="cannot read the state URL file"):
        missing.resolved_state_url()


def test_trigger_token_can_come_from_a_secret_file(settings_env, monkeypatch):
    secret = settings_env / "token"
    secret.write_text("t0ken\n")
    monkeypatch.setenv("RESTOCK_TRIGGER_TOKEN", f"file:{secret}")
    assert load_settings(config_dir=settings_env).trigger_token.get_secret_value() == "t0ken"
    monkeypatch.setenv("RESTOCK_TRIGGER_TOKEN", "file:/nonexistent/token")
    with pytest.raises(ConfigError, match="environment RESTOCK_TRIGGER_TOKEN: cannot read the "
                                          "secret file /nonexistent/token"):
        load_settings(config_dir=settings_env)


def _fires(expression: str, tz: str, start: datetime, count: int) -> list[datetime]:
    fires, when = [], start
    for _ in range(count):
        when = next_fire(expression, tz, when)
        fires.append(when)
        when = when + timedelta(seconds=1)
    return fires


def test_a_fixed_hour_runs_once_when_clocks_go_back():
    # Berlin, 25 Oct 2026: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice.
    fires = _fires("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC), 3)
    assert [f.isoformat() for f in fires] == ["2026-10-25T00:30:00+00:00",
                                              "2026-10-26T01:30:00+00:00",
                                              "2026-10-27T01:30:00+00:00"]


def test_a_wildcard_hour_keeps_every_real_hour_when_clocks_go_back():
    fires = _fires("30 * * * *", "Europe/Berlin", datetime(2026, 10, 24, 23, 45, tzinfo=UTC), 3)
    assert [f.strftime("%H:%M") for f in fires] == ["00:30", "01:30", "02:30"]   # UTC


def test_a_time_skipped_when_clocks_go_forward_still_runs_that_day():
    # Berlin, 29 Mar 2026: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day.
    fires = _fires("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC), 2)
    assert [f.date().isoformat() for f in fires] == ["2026-03-29", "2026-03-30"]

import json
import subprocess
import sys
import tomllib
from dataclasses import MISSING, fields

import pytest

from fscommon.function_options import with_defaults
from fsd.config import ConfigError, FsdConfig, read_config_file
from fsd.settings import SETTINGS, settings_table
from tests.helpers import REPO


def test_file_keys_are_checked(tmp_path):
    good = tmp_path / "ok.toml"
    good.write_text('pulsar_url = "pulsar://h:6650"\nstop_timeout = 3\n')
    assert read_config_file(good) == {"pulsar_url": "pulsar://h:6650", "stop_timeout": 3}
    bad = tmp_path / "bad.toml"
    bad.write_text("stop_timout = 3\n")
    with pytest.raises(ConfigError, match="unknown key 'stop_timout'"):
        read_config_file(bad)
    bad.write_text('max_restarts = "many"\n')
    with pytest.raises(ConfigError, match=r"key 'max_restarts' .* must be a int"):
        read_config_file(bad)
    bad.write_text("[broker]\nport = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'broker'"):
        read_config_file(bad)
    bad.write_text("stop_timeout = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        read_config_file(bad)
    with pytest.raises(ConfigError, match="cannot read config file"):
        read_config_file(tmp_path / "missing.toml")


def test_values_are_range_checked():
    with pytest.raises(ConfigError, match="stop_timeout must be > 0"):
        FsdConfig.from_values({"stop_timeout": 0.0})
    with pytest.raises(ConfigError, match="pulsar_url must start with pulsar://"):
        FsdConfig.from_values({"pulsar_url": "http://x"})
    config = FsdConfig.from_values({"pulsar_url": "pulsar://broker:6650"})
    assert config.admin_url(None) == "http://broker:8080"
    assert config.admin_url(18080) == "http://127.0.0.1:18080"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"pulsar_port": 70000}, "pulsar_port must be a TCP port"),
        ({"pulsar_web_port": 0}, "pulsar_web_port must be a TCP port"),
        ({"pulsar_heap": "lots"}, "pulsar_heap must be a JVM size"),
        ({"pulsar_admin_url": "127.0.0.1:8080"}, "pulsar_admin_url must start with http"),
        ({"endpoint": "http://x"}, "endpoint must be ipc://PATH or tcp://HOST:PORT"),
        ({"log_level": "loud"}, "log_level must be debug"),
        ({"max_restarts": -1}, "max_restarts must be >= 0"),
        ({"stable_after": -1.0}, "stable_after must be >= 0"),
        ({"backoff_base": 5.0, "backoff_cap": 1.0}, "backoff_base must be > 0 and <= backoff_cap"),
        ({"default_timeout_ms": -5}, "default_timeout_ms: timeout-ms must be an integer"),
        ({"default_memory_limit": "huge"}, "default_memory_limit must be a size"),
        ({"default_memory_limit": "1k"}, "default_memory_limit: memory-limit must be"),
        ({"default_max_retries": 5000}, "default_max_retries: max-retries must be"),
        ({"default_retry_delay_ms": -1}, "default_retry_delay_ms: retry-delay-ms must be"),
    ],
)
def test_bad_values_name_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        FsdConfig.from_values(values)


def test_function_defaults():
    config = FsdConfig.from_values({})
    assert config.function_defaults() == {
        "timeout_ms": 5000,
        "memory_limit": 256 * 1024 * 1024,
        "max_retries": 3,
        "retry_delay_ms": 1000,
    }
    none = FsdConfig.from_values({"default_timeout_ms": 0, "default_memory_limit": "0"})
    assert none.function_defaults()["timeout_ms"] is None
    assert none.function_defaults()["memory_limit"] is None
    defaults = config.function_defaults()
    assert with_defaults(None, defaults) == defaults
    given = with_defaults({"timeout_ms": None, "max_retries": 0}, defaults)
    assert (given["timeout_ms"], given["max_retries"], given["retry_delay_ms"]) == (None, 0, 1000)
    assert with_defaults("garbage", defaults) == "garbage"  # rejected later, by from_dict


def test_settings_and_config_fields_agree():
    """Every setting is a field of FsdConfig with the same default, and the other way round."""
    by_field = {f.name: f for f in fields(FsdConfig)}
    assert set(by_field) == {s.name for s in SETTINGS}
    for setting in SETTINGS:
        default = by_field[setting.name].default
        expected = None if default is MISSING else default
        assert setting.default == expected, setting.name


def test_docs_table_matches_settings():
    """docs/configuration.md carries the table settings_table() makes from SETTINGS."""
    doc = (REPO / "docs" / "configuration.md").read_text()
    assert settings_table() in doc, (
        "docs/configuration.md is out of date: paste the output of\n"
        "python -c 'from fsd.settings import settings_table; print(settings_table())'"
    )


def _check_config(tmp_path, *args, **env):
    return subprocess.run(
        [sys.executable, "-m", "fsd", "--check-config", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        timeout=60,
    )


def test_precedence_flag_over_env_over_file(tmp_path):
    conf = tmp_path / "fsd.toml"
    conf.write_text("stop_timeout = 3\nmax_restarts = 7\nbackoff_cap = 9\n")
    out = _check_config(tmp_path, "--config", str(conf), "--max-restarts", "2", FS_STOP_TIMEOUT="4")
    assert out.returncode == 0, out.stderr
    got = tomllib.loads(out.stdout)
    assert (got["max_restarts"], got["stop_timeout"], got["backoff_cap"]) == (2, 4.0, 9.0)
    assert out.stdout.startswith(f"# config file: {conf}\n")


def test_check_config_output_is_a_config_file_and_json(tmp_path):
    """--check-config prints a file fsd accepts as is; --json the same values."""
    out = _check_config(tmp_path, "--pulsar-url", "pulsar://b:6650", "--default-max-retries", "9")
    assert out.returncode == 0, out.stderr
    assert "# pulsar_admin_url is not set" in out.stdout
    saved = tmp_path / "effective.toml"
    saved.write_text(out.stdout)
    assert read_config_file(saved)["default_max_retries"] == 9
    as_json = _check_config(tmp_path, "--config", str(saved), "--json")
    assert as_json.returncode == 0, as_json.stderr
    values = json.loads(as_json.stdout)
    assert values["pulsar_url"] == "pulsar://b:6650"
    assert values["pulsar_admin_url"] is None
    assert values["default_max_retries"] == 9


def test_system_config_file_is_read_when_present(tmp_path):
    """Under systemd, $CONFIGURATION_DIRECTORY/fsd.toml; without one, no file is fine."""
    (tmp_path / "fsd.toml").write_text('log_level = "debug"\n')
    out = _check_config(tmp_path, "--json", CONFIGURATION_DIRECTORY=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["log_level"] == "debug"
    absent = _check_config(tmp_path, CONFIGURATION_DIRECTORY=str(tmp_path / "nowhere"))
    assert absent.returncode == 0, absent.stderr
    assert absent.stdout.startswith("# config file: none\n")


def test_bad_config_is_an_error_naming_the_key(tmp_path):
    conf = tmp_path / "fsd.toml"
    conf.write_text("pulsar_prot = 6650\n")
    out = _check_config(tmp_path, "--config", str(conf))
    assert out.returncode != 0
    assert "unknown key 'pulsar_prot'" in out.stderr
    out = _check_config(tmp_path, FS_DEFAULT_MEMORY_LIMIT="lots")
    assert out.returncode == 1
    assert "default_memory_limit must be a size" in out.stderr
    out = _check_config(tmp_path, FS_PULSAR_PORT="abc")
    assert out.returncode == 2
    assert "--pulsar-port" in out.stderr


def test_shipped_default_config_is_valid(tmp_path):
    """systemd/fsd.toml parses, and every key it mentions (even commented out) exists."""
    shipped = REPO / "systemd" / "fsd.toml"
    read_config_file(shipped)
    uncommented = "\n".join(
        line[1:]
        for line in shipped.read_text().splitlines()
        if line.startswith("#") and " = " in line
    )
    keys = tomllib.loads(uncommented)
    assert set(keys) <= {s.name for s in SETTINGS}
    assert len(keys) >= 15

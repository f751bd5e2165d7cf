import subprocess
import sys

import pytest

from fsd.config import ConfigError, FsdConfig, read_config_file
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


def test_values_are_range_checked():
    with pytest.raises(ConfigError, match="stop_timeout must be > 0"):
        FsdConfig.from_values({"stop_timeout": 0.0})
    with pytest.raises(ConfigError, match="pulsar_url must start with pulsar://"):
        FsdConfig.from_values({"pulsar_url": "http://x"})
    config = FsdConfig.from_values({"pulsar_url": "pulsar://broker:6650"})
    assert config.admin_url(None) == "http://broker:8080"
    assert config.admin_url(18080) == "http://127.0.0.1:18080"


def test_precedence_flag_over_env_over_file(tmp_path):
    conf = tmp_path / "fsd.toml"
    conf.write_text("stop_timeout = 3\nmax_restarts = 7\nbackoff_cap = 9\n")

    def effective(*args, **env):
        out = subprocess.run(
            [sys.executable, "-m", "fsd", "--config", str(conf), "--check-config", *args],
            capture_output=True, text=True, cwd=REPO,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        return dict(line.split(" = ", 1) for line in out.stdout.splitlines())

    got = effective("--max-restarts", "2", FS_STOP_TIMEOUT="4")
    assert (got["max_restarts"], got["stop_timeout"], got["backoff_cap"]) == ("2", "4.0", "9.0")

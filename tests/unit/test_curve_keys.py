"""CURVE key files, fsctl keygen and the security settings' checks."""

from __future__ import annotations

import grp
import json
import os
import stat
from pathlib import Path

import pytest
import zmq
from click.testing import CliRunner

from fscommon.curve_keys import (
    Z85_KEY,
    KeyFileError,
    load_allowed_clients,
    read_public_key,
    read_secret_key,
    write_keypair,
)
from fsctl.cli import main as fsctl
from fsd.config import ConfigError, FsdConfig


def test_keygen_writes_a_z85_pair_with_a_private_secret(tmp_path: Path):
    result = CliRunner().invoke(fsctl, ["keygen", "--out", str(tmp_path / "k"), "--name", "alice"])
    assert result.exit_code == 0, result.output
    public_file, secret_file = tmp_path / "k" / "alice.key", tmp_path / "k" / "alice.key_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_file.stat().st_mode) == 0o644
    public_text = public_file.read_text().strip()
    secret_text = secret_file.read_text().strip()
    assert Z85_KEY.match(public_text) and Z85_KEY.match(secret_text)
    assert zmq.curve_public(secret_text.encode()) == public_text.encode()
    assert read_secret_key(secret_file) == (public_text.encode(), secret_text.encode())
    assert str(secret_file) in result.output


def test_keygen_json_names_both_files_and_the_public_key_only(tmp_path: Path):
    args = ["keygen", "--out", str(tmp_path), "--name", "bob", "--json"]
    result = CliRunner().invoke(fsctl, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["public_key_file"] == str(tmp_path / "bob.key")
    assert doc["secret_key_file"] == str(tmp_path / "bob.key_secret")
    assert doc["public_key"] == (tmp_path / "bob.key").read_text().strip()
    assert (tmp_path / "bob.key_secret").read_text().strip() not in result.output


def test_keygen_never_overwrites(tmp_path: Path):
    write_keypair(tmp_path, "fsd")
    before = (tmp_path / "fsd.key_secret").read_text()
    result = CliRunner().invoke(fsctl, ["keygen", "--out", str(tmp_path), "--name", "fsd"])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert (tmp_path / "fsd.key_secret").read_text() == before


def test_keygen_rejects_a_path_as_name(tmp_path: Path):
    result = CliRunner().invoke(fsctl, ["keygen", "--out", str(tmp_path), "--name", "../x"])
    assert result.exit_code == 2
    assert not any(tmp_path.parent.glob("x.key*"))


def test_secret_key_readable_by_others_is_refused(tmp_path: Path):
    _, secret = write_keypair(tmp_path, "fsd")
    secret.chmod(0o640)
    with pytest.raises(KeyFileError, match=f"chmod 600 {secret}"):
        read_secret_key(secret)


def test_malformed_and_missing_key_files(tmp_path: Path):
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    with pytest.raises(KeyFileError, match="does not hold a Z85 public key"):
        read_public_key(bad)
    with pytest.raises(KeyFileError, match="does not exist; create keys with 'fsctl keygen'"):
        read_public_key(tmp_path / "missing.key")


def test_zmq_certificate_files_are_read_too(tmp_path: Path):
    import zmq.auth

    public_file, secret_file = zmq.auth.create_certificates(str(tmp_path), "cert")
    os.chmod(secret_file, 0o600)
    public, _secret = read_secret_key(secret_file)
    assert read_public_key(public_file) == public


def test_allowed_clients_directory_takes_public_keys_only(tmp_path: Path):
    alice, _ = write_keypair(tmp_path, "alice")
    bob, _ = write_keypair(tmp_path, "bob")
    (tmp_path / "README").write_text("not a key")
    keys = load_allowed_clients(tmp_path)
    assert sorted(keys.values()) == ["alice", "bob"]
    assert read_public_key(alice) in keys and read_public_key(bob) in keys
    assert list(load_allowed_clients(alice).values()) == ["alice"]
    with pytest.raises(KeyFileError, match=r"curve_allowed_clients .* does not exist"):
        load_allowed_clients(tmp_path / "nope")


def _config(tmp_path: Path, **values) -> FsdConfig:
    return FsdConfig.from_values({"state_dir": str(tmp_path), **values})


def test_tcp_endpoint_needs_curve_settings(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        _config(tmp_path, endpoint="tcp://0.0.0.0:7070")
    for fragment in ("curve_secret_key", "curve_allowed_clients", "fsctl keygen"):
        assert fragment in str(info.value)
    _, secret = write_keypair(tmp_path, "fsd")
    with pytest.raises(ConfigError, match="curve_allowed_clients is not set"):
        _config(tmp_path, endpoint="tcp://0.0.0.0:7070", curve_secret_key=str(secret))
    clients = tmp_path / "clients"
    write_keypair(clients, "alice")
    config = _config(
        tmp_path,
        endpoint="tcp://0.0.0.0:7070",
        curve_secret_key=str(secret),
        curve_allowed_clients=str(clients),
    )
    curve = config.curve_server()
    assert curve is not None and curve.allowed_clients == clients


def test_other_security_settings_are_checked(tmp_path: Path):
    with pytest.raises(ConfigError, match="control_group 'no-such-group-x' does not exist"):
        _config(tmp_path, endpoint="ipc:///tmp/x.sock", control_group="no-such-group-x")
    with pytest.raises(ConfigError, match="endpoint must be ipc://PATH or tcp://HOST:PORT"):
        _config(tmp_path, endpoint="inproc://x")
    with pytest.raises(ConfigError, match="max_request_bytes must be from"):
        _config(tmp_path, endpoint="ipc:///tmp/x.sock", max_request_bytes=10)
    group = grp.getgrgid(os.getgid()).gr_name
    assert (
        _config(tmp_path, endpoint="ipc:///tmp/x.sock", control_group=group).curve_server() is None
    )

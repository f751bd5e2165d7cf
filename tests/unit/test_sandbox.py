"""Function sandbox: grant parsing and validation, and what a guest can reach (both lanes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime
from click.testing import CliRunner

from fscommon.function_options import (
    FunctionOptions,
    OptionError,
    parse_dir_grant,
    with_grants,
)
from fsctl import output
from fsctl.cli import main
from fsctl.create_flags import grants_from_flags
from fsworker.engine import new_engine
from fsworker.guest import open_guest
from fsworker.module_check import ModuleKind, classify
from fsworker.sandbox import NO_GRANTS, DirGrant, Sandbox

PROBE_DIR = Path(__file__).resolve().parents[1] / "sandbox_probe"


# --- the --allow-dir / --allow-env flags and their validation ------------------------------


def test_parse_dir_grant_defaults_to_read_write():
    assert parse_dir_grant("/srv/in:/data") == {"host": "/srv/in", "guest": "/data", "mode": "rw"}
    assert parse_dir_grant("/srv/in:/data:ro")["mode"] == "ro"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("/srv/in", "--allow-dir takes HOST:GUEST"),
        (":/data", "--allow-dir takes HOST:GUEST"),
        ("/a:/b:/c:ro", "--allow-dir takes HOST:GUEST"),
        ("/srv/in:/data:rx", "--allow-dir mode must be ro or rw, got 'rx'"),
    ],
)
def test_parse_dir_grant_errors(text, fragment):
    with pytest.raises(OptionError, match=fragment):
        parse_dir_grant(text)


def _dir(host: str, guest: str = "/data", mode: str = "rw") -> dict[str, str]:
    return {"host": host, "guest": guest, "mode": mode}


def test_valid_grants_roundtrip(tmp_path):
    raw = {"allow_dirs": [_dir(str(tmp_path), "/data", "ro")], "allow_env": ["HOME", "A_1=x=y"]}
    opts = FunctionOptions.from_dict(raw)
    assert opts.allow_dirs == raw["allow_dirs"] and opts.allow_env == raw["allow_env"]
    assert FunctionOptions.from_dict(opts.to_dict()) == opts
    assert FunctionOptions().allow_dirs == [] and FunctionOptions().allow_env == []


@pytest.mark.parametrize(
    ("grants", "fragment"),
    [
        ({"allow_dirs": [_dir("relative/dir")]}, "HOST must be an absolute path, got 'relative"),
        ({"allow_dirs": [_dir("/no/such/dir/x1")]}, "'/no/such/dir/x1' is not an existing dir"),
        ({"allow_dirs": [_dir("{tmp}/file")]}, "file' is not an existing directory"),
        ({"allow_dirs": [_dir("{tmp}", "data")]}, "GUEST must be an absolute path"),
        ({"allow_dirs": [_dir("{tmp}", "/a/../etc")]}, "without '..', got '/a/../etc'"),
        ({"allow_dirs": [_dir("{tmp}", mode="wo")]}, "mode must be ro or rw, got 'wo'"),
        ({"allow_dirs": [_dir("{tmp}"), _dir("{tmp}", "/data/")]}, "'/data/' is granted twice"),
        ({"allow_dirs": [{"host": "{tmp}"}]}, "must have host, guest and mode"),
        ({"allow_dirs": "{tmp}:/data"}, "allow-dirs must be a list"),
        ({"allow_env": ["1BAD"]}, "NAME must match [A-Za-z_][A-Za-z0-9_]*, got '1BAD'"),
        ({"allow_env": ["BAD-NAME=1"]}, "got 'BAD-NAME'"),
        ({"allow_env": ["=x"]}, "got ''"),
        ({"allow_env": ["A", "A=1"]}, "--allow-env A is given twice"),
        ({"allow_env": [3]}, "--allow-env takes NAME or NAME=VALUE, got 3"),
        ({"allow_env": ["A=x\0y"]}, "must not contain NUL"),
    ],
)
def test_bad_grants_name_the_flag_and_value(tmp_path, grants, fragment):
    (tmp_path / "file").write_text("x")

    def fill(value):
        if isinstance(value, str):
            return value.replace("{tmp}", str(tmp_path))
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    with pytest.raises(OptionError) as info:
        FunctionOptions.from_dict(fill(grants))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_with_grants_replaces_only_the_given_list(tmp_path):
    base = FunctionOptions.from_dict({"allow_env": ["A"], "max_retries": 7}).to_dict()
    updated = with_grants(base, {"allow_dirs": [_dir(str(tmp_path))]})
    assert updated["allow_env"] == ["A"] and updated["max_retries"] == 7
    assert updated["allow_dirs"] == [_dir(str(tmp_path))]
    assert with_grants(updated, {"allow_env": []})["allow_env"] == []
    for bad in ({}, {"max_retries": 1}, ["allow_env"]):
        with pytest.raises(OptionError, match="grants must be a map"):
            with_grants(base, bad)
    with pytest.raises(OptionError, match="not an existing directory"):
        with_grants(base, {"allow_dirs": [_dir("/no/such/dir/x1")]})


def test_cli_flags_to_grants():
    assert grants_from_flags((), ()) == {}
    got = grants_from_flags(("/a:/b:ro", "/c:/d"), ("HOME", "X=1"))
    assert got == {
        "allow_dirs": [_dir("/a", "/b", "ro"), _dir("/c", "/d")],
        "allow_env": ["HOME", "X=1"],
    }
    assert grants_from_flags(("none",), ("none",)) == {"allow_dirs": [], "allow_env": []}


def test_cli_bad_allow_dir_is_a_usage_error_before_fsd_is_asked(tmp_path):
    wasm = PROBE_DIR / "probe.wasm"
    args = ["--endpoint", f"ipc://{tmp_path}/nobody.sock", "create", "-n", "f", "-a", str(wasm)]
    result = CliRunner().invoke(main, [*args, "-i", "in", "--allow-dir", "/x"])
    assert result.exit_code == 2
    assert "--allow-dir takes HOST:GUEST" in result.output


def test_list_shows_grants_without_values():
    opts = {"allow_dirs": [_dir("/srv/in", "/data", "ro")], "allow_env": ["HOME", "TOKEN=s3cret"]}
    assert output.grants(opts) == "dir /srv/in:/data:ro, env HOME, env TOKEN"
    assert output.grants({}) == ""


def test_sandbox_env_from_fsd_environment_or_fixed(tmp_path):
    opts = FunctionOptions.from_dict(
        {"allow_dirs": [_dir(str(tmp_path), "/d", "ro")], "allow_env": ["A", "B=secret-b", "GONE"]}
    )
    sandbox = Sandbox.from_options(opts, environ={"A": "secret-a", "C": "secret-c"})
    assert sandbox.env == (("A", "secret-a"), ("B", "secret-b"))  # GONE is not set: left out
    assert sandbox.dirs == (DirGrant(str(tmp_path), "/d", True),)
    # The description (logged) names the variables, never their values.
    assert "env A, env B" in sandbox.describe() and "secret" not in sandbox.describe()
    assert Sandbox.from_options(FunctionOptions()) == NO_GRANTS


# --- what a guest can reach ----------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    return new_engine()


@pytest.fixture(params=["probe.wasm", "probe_stdio.wasm"])
def probe(request, engine, tmp_path):
    """Open the probe (ABI lane, then stdio lane) with a given sandbox; returns call(cmd)."""
    module = wasmtime.Module(engine, (PROBE_DIR / request.param).read_bytes())
    kind = classify(module)
    assert kind is (ModuleKind.ABI if request.param == "probe.wasm" else ModuleKind.WASI_STDIO)

    def opener(sandbox: Sandbox | None):
        guest = open_guest(engine, module, kind, tmp_path / "scratch", sandbox=sandbox)
        return lambda cmd: guest.call(cmd.encode())[0].decode()

    return opener


@pytest.fixture
def data_dir(tmp_path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("hello from the host")
    (tmp_path / "secret.txt").write_text("outside")
    (data / "link").symlink_to(tmp_path / "secret.txt")
    return data


def test_no_grants_no_files_no_environment(probe, data_dir, monkeypatch):
    monkeypatch.setenv("FS_SANDBOX_SECRET", "leak")
    call = probe(None)
    assert call(f"read {data_dir}/in.txt").startswith(f"read {data_dir}/in.txt: error")
    assert call("read /etc/passwd").startswith("read /etc/passwd: error")
    got = call("write /tmp/fs-sandbox-probe.txt x")
    assert got.startswith("write /tmp/fs-sandbox-probe.txt: error"), got
    assert not Path("/tmp/fs-sandbox-probe.txt").exists()
    assert call("env FS_SANDBOX_SECRET") == "env FS_SANDBOX_SECRET: unset"
    assert call("environ") == "environ: "


def test_granted_dir_read_write_and_read_only(probe, data_dir, tmp_path):
    rw = Sandbox(dirs=(DirGrant(str(data_dir), "/data", False),))
    call = probe(rw)
    assert call("read /data/in.txt") == "read /data/in.txt: hello from the host"
    assert call("write /data/out.txt written") == "write /data/out.txt: ok"
    assert (data_dir / "out.txt").read_text() == "written"
    # No way out of the granted directory: not by '..', not by a symlink.
    assert call("read /data/../secret.txt").startswith("read /data/../secret.txt: error")
    assert call("read /data/link").startswith("read /data/link: error")

    ro = probe(Sandbox(dirs=(DirGrant(str(data_dir), "/data", True),)))
    assert ro("read /data/in.txt") == "read /data/in.txt: hello from the host"
    assert ro("write /data/out.txt again").startswith("write /data/out.txt: error")
    assert ro("write /data/new.txt x").startswith("write /data/new.txt: error")
    assert (data_dir / "out.txt").read_text() == "written" and not (data_dir / "new.txt").exists()


def test_granted_environment(probe):
    call = probe(Sandbox(env=(("GREETING", "hi there"), ("EMPTY", ""))))
    assert call("env GREETING") == "env GREETING=hi there"
    assert call("env EMPTY") == "env EMPTY="
    assert call("environ") == "environ: GREETING,EMPTY"
    assert call("env HOME") == "env HOME: unset"


def test_a_vanished_granted_dir_is_a_clear_error(engine, tmp_path):
    from fsworker.guest import GuestInitError

    module = wasmtime.Module(engine, (PROBE_DIR / "probe.wasm").read_bytes())
    gone = Sandbox(dirs=(DirGrant(str(tmp_path / "gone"), "/data", True),))
    with pytest.raises(GuestInitError, match=r"cannot grant directory .*gone \(--allow-dir\)"):
        open_guest(engine, module, ModuleKind.ABI, tmp_path, sandbox=gone)

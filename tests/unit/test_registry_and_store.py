import hashlib

import pytest

from fsd.function_spec import FunctionSpec
from fsd.package_store import PackageStore
from fsd.registry import AlreadyExists, Registry


def _spec(name="f"):
    return FunctionSpec(
        name=name, package="ab" * 32, kind="abi", inputs=["in"], output="out", config={"k": "v"}
    )


def test_registry_persists_across_reopen(tmp_path):
    db = tmp_path / "r.sqlite3"
    reg = Registry(db)
    reg.add(_spec("a"))
    reg.add(_spec("b"))
    with pytest.raises(AlreadyExists):
        reg.add(_spec("a"))
    reg.close()
    reg = Registry(db)
    assert [s.name for s in reg.all()] == ["a", "b"]
    got = reg.get("a")
    assert got.inputs == ["in"] and got.config == {"k": "v"} and got.created_at > 0
    assert reg.remove("a") and not reg.remove("a")
    assert reg.get("a") is None


def test_package_store_is_content_addressed_and_immutable(tmp_path):
    store = PackageStore(tmp_path / "packages")
    sha = store.put(b"\0asm\1\0\0\0")
    assert sha == hashlib.sha256(b"\0asm\1\0\0\0").hexdigest()
    assert store.put(b"\0asm\1\0\0\0") == sha
    assert store.path(sha).read_bytes() == b"\0asm\1\0\0\0"
    assert not (store.path(sha).stat().st_mode & 0o222), "stored modules are read-only"

"""The cluster's stores on the real broker: registry topic, package topics, namespace setup."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pulsar
import pytest

from fscommon.logs import silent_pulsar_logger
from fscommon.protocol import Desired
from fsd.backlog import topic_path
from fsd.broker_admin import AdminError, admin_request
from fsd.cluster.admin import COMPACTION_THRESHOLD_BYTES, ensure_namespace
from fsd.cluster.naming import ClusterNames
from fsd.cluster.packages_topic import (
    PackageCorrupt,
    PackageFetcher,
    PackageMissing,
    PackageTopicStore,
    PackageUnavailable,
)
from fsd.cluster.registry_topic import (
    AlreadyExists,
    RegistryUnavailable,
    TopicRegistry,
    encode_record,
)
from fsd.function_spec import FunctionSpec
from fsd.package_store import PackageStore
from tests.helpers import EXAMPLES, free_port, unique, wait_for
from tests.streams import client

pytestmark = pytest.mark.integration

BIG_MODULE = EXAMPLES / "basic" / "python" / "basic.wasm"  # 18 MB componentize-py
SMALL_MODULE = EXAMPLES / "basic" / "c" / "basic.wasm"


@pytest.fixture(scope="module")
def admin_url(pulsar_url: str) -> str:
    return os.environ["FS_TEST_PULSAR_ADMIN_URL"]


@pytest.fixture
def names(admin_url: str) -> Iterator[ClusterNames]:
    """A cluster of its own in the default namespace, prepared as a member would.

    Its topics are deleted afterwards: the namespace's policies keep them forever.
    """
    cluster = ClusterNames(unique("cs"))
    ensure_namespace(admin_url, cluster)
    yield cluster
    _delete_topics(admin_url, cluster)


@pytest.fixture
def clients(pulsar_url: str) -> Iterator[tuple[pulsar.Client, pulsar.Client]]:
    """Two clients: two members' connections."""
    a, b = client(pulsar_url), client(pulsar_url)
    yield a, b
    a.close()
    b.close()


def spec(name: str, replicas: int = 1) -> FunctionSpec:
    return FunctionSpec(
        name=name,
        package="0" * 64,
        kind="abi",
        inputs=["in-" + name],
        output="out-" + name,
        replicas=replicas,
        config={"k": "v"},
        options={"timeout_ms": 100},
    )


def names_of(registry: TopicRegistry) -> list[str]:
    return [s.name for s in registry.all()]


# -- registry ----------------------------------------------------------------


def test_two_members_see_each_others_writes(names: ClusterNames, clients) -> None:
    a = TopicRegistry(clients[0], names.registry, member="a")
    b = TopicRegistry(clients[1], names.registry, member="b")
    try:
        a.add(spec("f1"))
        # Read-your-writes: no waiting on the writer's side.
        assert a.get("f1") is not None and names_of(a) == ["f1"]
        seen = wait_for(lambda: b.get("f1"), 10.0, "member b to see f1")
        assert seen.inputs == ["in-f1"] and seen.config == {"k": "v"}
        assert seen.options == {"timeout_ms": 100} and seen.created_at > 0

        changed = b.get("f1")
        changed.replicas = 4
        changed.desired = Desired.STOPPED
        changed.generation, changed.starts = 3, 2
        b.update(changed)
        assert b.get("f1").replicas == 4
        wait_for(lambda: a.get("f1").replicas == 4, 10.0, "member a to see the update")
        assert a.get("f1") == changed  # every field, created_at kept
        assert a.get("f1").desired is Desired.STOPPED

        b.add(spec("f0"))
        wait_for(lambda: names_of(a) == ["f0", "f1"], 10.0, "a to list both, by name")

        assert a.remove("f1") is True
        assert a.get("f1") is None and names_of(a) == ["f0"]
        wait_for(lambda: b.get("f1") is None and names_of(b) == ["f0"], 10.0, "b to see it gone")
    finally:
        a.close()
        b.close()


def test_returned_specs_are_copies(names: ClusterNames, clients) -> None:
    reg = TopicRegistry(clients[0], names.registry)
    try:
        reg.add(spec("f"))
        got = reg.get("f")
        got.replicas = 9
        got.inputs.append("more")
        reg.all()[0].config["k"] = "changed"
        reg.all()[0].options["timeout_ms"] = 1
        kept = reg.get("f")
        assert kept == dataclasses.replace(spec("f"), created_at=kept.created_at)
    finally:
        reg.close()


def test_add_existing_update_missing_remove_missing(names: ClusterNames, clients) -> None:
    a = TopicRegistry(clients[0], names.registry)
    b = TopicRegistry(clients[1], names.registry)
    try:
        a.add(spec("f"))
        with pytest.raises(AlreadyExists):
            a.add(spec("f"))
        wait_for(lambda: b.get("f"), 10.0, "b to see f")
        with pytest.raises(AlreadyExists):
            b.add(spec("f"))
        b.update(spec("ghost"))  # not registered: nothing is written
        assert a.get("ghost") is None and b.get("ghost") is None
        assert a.remove("ghost") is False
        assert a.remove("f") is True
        assert a.remove("f") is False
        a.add(spec("f", replicas=2))  # a deleted name can be created again
        assert a.get("f").replicas == 2
    finally:
        a.close()
        b.close()


def test_concurrent_writers_converge(names: ClusterNames, clients) -> None:
    """Last write wins: two members updating one function at once end up agreeing."""
    a = TopicRegistry(clients[0], names.registry, member="a")
    b = TopicRegistry(clients[1], names.registry, member="b")
    try:
        a.add(spec("f"))
        wait_for(lambda: b.get("f"), 10.0, "b to see f")

        def hammer(reg: TopicRegistry, base: int) -> None:
            for i in range(30):
                reg.update(spec("f", replicas=base + i))

        threads = [threading.Thread(target=hammer, args=(r, n)) for r, n in ((a, 100), (b, 200))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        wait_for(lambda: a.get("f").replicas == b.get("f").replicas, 10.0, "both members to agree")
        assert a.get("f").replicas in (129, 229)  # one of the two last writes
    finally:
        a.close()
        b.close()


def test_unreachable_broker_says_which_store() -> None:
    dead = pulsar.Client(
        f"pulsar://127.0.0.1:{free_port()}",
        operation_timeout_seconds=2,
        connection_timeout_ms=1000,
        logger=silent_pulsar_logger(),
    )
    names = ClusterNames("c1")
    try:
        with pytest.raises(RegistryUnavailable, match=f"cluster registry {names.registry}"):
            TopicRegistry(dead, names.registry)
        with pytest.raises(PackageUnavailable, match=f"package index {names.packages}"):
            PackageTopicStore(dead, names)
    finally:
        dead.close()


def _write_history(registry: TopicRegistry) -> None:
    for name in ("f1", "f2", "f3"):
        registry.add(spec(name))
    registry.update(spec("f2", replicas=3))
    registry.remove("f3")


def _check_current_state(registry: TopicRegistry) -> None:
    assert names_of(registry) == ["f1", "f2"]
    assert registry.get("f2").replicas == 3
    assert registry.get("f3") is None


def test_new_instance_reads_current_state(names: ClusterNames, clients, pulsar_url) -> None:
    a = TopicRegistry(clients[0], names.registry)
    b = TopicRegistry(clients[1], names.registry)
    _write_history(a)
    a.close()
    b.close()
    fresh_client = client(pulsar_url)
    try:
        fresh = TopicRegistry(fresh_client, names.registry)
        _check_current_state(fresh)
        fresh.close()
    finally:
        fresh_client.close()


def test_compaction_keeps_current_state_and_drops_deleted(
    names: ClusterNames, clients, admin_url: str
) -> None:
    reg = TopicRegistry(clients[0], names.registry)
    _write_history(reg)
    reg.close()
    compaction = f"{admin_url}/admin/v2/{topic_path(names.registry)}/compaction"
    admin_request("PUT", compaction)

    def compacted() -> bool:
        status = json.loads(admin_request("GET", compaction))
        assert status.get("status") != "ERROR", status
        return status.get("status") == "SUCCESS"

    wait_for(compacted, 60.0, "the broker to compact the registry topic", interval=0.5)
    reader = clients[1].create_reader(
        names.registry, pulsar.MessageId.earliest, is_read_compacted=True
    )
    keys = []
    while reader.has_message_available():
        keys.append(reader.read_next(5000).partition_key())
    reader.close()
    assert sorted(keys) == ["f1", "f2"], "compaction should leave only the live functions"
    fresh = TopicRegistry(clients[1], names.registry)
    try:
        _check_current_state(fresh)
    finally:
        fresh.close()


def test_delete_marker_alone_means_deleted(names: ClusterNames, clients) -> None:
    """A member that dies between the delete marker and the tombstone still deleted it."""
    live = TopicRegistry(clients[0], names.registry)
    try:
        for name in ("f", "g", "h"):
            live.add(spec(name))
        raw = clients[0].create_producer(names.registry, batching_enabled=False)
        raw.send(encode_record(None, "crashed", "w1"), partition_key="f")
        raw.send(b"not json", partition_key="g")  # junk from elsewhere: ignored, not fatal
        raw.close()
        fresh = TopicRegistry(clients[1], names.registry)
        try:
            # Both members agree: what a member started later sees, the running one sees.
            wait_for(lambda: names_of(live) == ["h"], 10.0, "the running member to drop f and g")
            assert names_of(fresh) == ["h"] and fresh.get("f") is None
        finally:
            fresh.close()
    finally:
        live.close()


def test_all_is_served_from_memory_and_changes_are_signalled(names: ClusterNames, clients) -> None:
    woken = threading.Event()
    reg = TopicRegistry(clients[0], names.registry, on_change=woken.set)
    other = TopicRegistry(clients[1], names.registry)
    try:
        reg.add(spec("f"))
        version = reg.version
        for _ in range(1000):  # a network round trip each would take seconds
            assert len(reg.all()) == 1
        assert reg.version == version
        # update() of a name not yet in its own view does nothing (a delete elsewhere must
        # not be undone), so the other member must have seen the add first. Under load its
        # view lagged past the add once in CI, the update was a no-op and nothing woke.
        wait_for(lambda: other.get("f") is not None, 30.0, "the other member to see f")
        woken.clear()
        other.update(spec("f", replicas=5))
        # A deadline, not a speed: under load the other client may take seconds to deliver.
        assert woken.wait(30), "a change by another member should wake this one"
        assert reg.version > version and reg.get("f").replicas == 5
    finally:
        reg.close()
        other.close()


# -- packages ----------------------------------------------------------------


@pytest.mark.parametrize("module", [SMALL_MODULE, BIG_MODULE], ids=["small", "18MB"])
def test_package_round_trip_across_members(
    names: ClusterNames, clients, module: Path, tmp_path: Path
) -> None:
    data = module.read_bytes()
    a = PackageTopicStore(clients[0], names, member="a")
    b = PackageTopicStore(clients[1], names, member="b")
    try:
        sha = a.publish(data)
        assert sha == hashlib.sha256(data).hexdigest()
        assert a.has(sha)
        assert a.publish(data) == sha  # idempotent
        dest = tmp_path / "got" / f"{sha}.wasm"
        assert b.fetch(sha, dest, timeout=60) == dest
        assert dest.read_bytes() == data
        assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temp file left
    finally:
        a.close()
        b.close()


def test_republish_writes_no_second_copy(names: ClusterNames, clients) -> None:
    data = SMALL_MODULE.read_bytes()
    store = PackageTopicStore(clients[0], names)
    try:
        sha = store.publish(data)
        store.publish(data)
        reader = clients[1].create_reader(names.package_data(sha), pulsar.MessageId.earliest)
        count = 0
        while reader.has_message_available():
            reader.read_next(5000)
            count += 1
        reader.close()
        assert count == 1  # one 20 KB chunk, written once
    finally:
        store.close()


def test_missing_package(names: ClusterNames, clients, tmp_path: Path) -> None:
    store = PackageTopicStore(clients[0], names)
    try:
        with pytest.raises(PackageMissing, match="is not in cluster"):
            store.fetch("1" * 64, tmp_path / "x.wasm", timeout=10)
        assert not (tmp_path / "x.wasm").exists()
    finally:
        store.close()


def _forge(names: ClusterNames, c: pulsar.Client, sha: str, chunks: list[bytes], size: int) -> None:
    """Write a package by hand, as a broken or malicious publisher could."""
    producer = c.create_producer(names.package_data(sha), batching_enabled=False)
    for i, chunk in enumerate(chunks):
        producer.send(chunk, partition_key=str(i), properties={"sha256": sha, "chunk": str(i)})
    producer.close()
    index = c.create_producer(names.packages, batching_enabled=False)
    manifest = {"sha256": sha, "size": size, "chunks": 2}
    index.send(json.dumps(manifest).encode(), partition_key=sha)
    index.close()


def test_corrupt_package(names: ClusterNames, clients, tmp_path: Path) -> None:
    sha = hashlib.sha256(b"the real module").hexdigest()
    _forge(names, clients[0], sha, [b"not the ", b"real module"], size=19)
    store = PackageTopicStore(clients[1], names)
    try:
        with pytest.raises(PackageCorrupt, match="corrupt"):
            store.fetch(sha, tmp_path / "x.wasm", timeout=10)
        assert list(tmp_path.iterdir()) == []
    finally:
        store.close()


def test_incomplete_package(names: ClusterNames, clients, tmp_path: Path) -> None:
    sha = hashlib.sha256(b"two chunks").hexdigest()
    _forge(names, clients[0], sha, [b"two "], size=10)  # the manifest says 2 chunks
    store = PackageTopicStore(clients[1], names)
    try:
        with pytest.raises(PackageCorrupt, match=r"incomplete.*\[1\]"):
            store.fetch(sha, tmp_path / "x.wasm", timeout=10)
    finally:
        store.close()


def test_fetcher_does_not_block_and_reports_failure(
    names: ClusterNames, clients, tmp_path: Path
) -> None:
    data = BIG_MODULE.read_bytes()
    a = PackageTopicStore(clients[0], names)
    b = PackageTopicStore(clients[1], names)
    local = PackageStore(tmp_path / "packages")
    fetcher = PackageFetcher(b, local, timeout=60)
    try:
        sha = a.publish(data)
        fetcher.request(sha)
        fetcher.request(sha)  # twice: one fetch
        path = wait_for(lambda: fetcher.poll(sha), 60.0, "the fetcher to bring the module")
        assert path == local.path(sha) and path.read_bytes() == data
        assert fetcher.error(sha) is None

        missing = "2" * 64
        fetcher.request(missing)
        error = wait_for(lambda: fetcher.error(missing), 20.0, "the fetch of a missing digest")
        assert isinstance(error, PackageMissing)
        with pytest.raises(PackageMissing):
            fetcher.poll(missing)
    finally:
        fetcher.close()
        a.close()
        b.close()


# -- namespace ---------------------------------------------------------------


def _delete_topics(admin_url: str, names: ClusterNames, prefix: str | None = None) -> None:
    """Best effort: delete the cluster's topics (or all with ``prefix``) on the broker."""
    base = f"{admin_url}/admin/v2"
    prefix = (
        prefix if prefix is not None else f"persistent://{names.tenant_namespace}/{names.cluster}-"
    )
    try:
        listing = admin_request("GET", f"{base}/namespaces/{names.tenant_namespace}/topics")
        for topic in json.loads(listing):
            if topic.startswith(prefix):
                admin_request("DELETE", f"{base}/{topic_path(topic)}?force=true")
    except (urllib.error.URLError, OSError, ValueError):
        pass


def _delete_namespace(admin_url: str, names: ClusterNames) -> None:
    """Best effort: topics first (a namespace with topics cannot be deleted)."""
    _delete_topics(admin_url, names, prefix="")
    with contextlib.suppress(urllib.error.URLError, OSError):
        admin_request("DELETE", f"{admin_url}/admin/v2/namespaces/{names.tenant_namespace}")


def test_namespace_is_created_with_policies(admin_url: str) -> None:
    names = ClusterNames("c1", f"public/{unique('fs-ns')}")
    base = f"{admin_url}/admin/v2"
    try:
        ensure_namespace(admin_url, names)
        ensure_namespace(admin_url, names)  # every member calls it at start
        assert names.tenant_namespace in json.loads(
            admin_request("GET", f"{base}/namespaces/public")
        )
        ns = f"{base}/namespaces/{names.tenant_namespace}"
        retention = json.loads(admin_request("GET", f"{ns}/retention"))
        assert retention == {"retentionTimeInMinutes": -1, "retentionSizeInMB": -1}
        inactive = json.loads(admin_request("GET", f"{ns}/inactiveTopicPolicies"))
        assert inactive["deleteWhileInactive"] is False
        for topic in names.compacted_topics:
            threshold = admin_request("GET", f"{base}/{topic_path(topic)}/compactionThreshold")
            assert json.loads(threshold) == COMPACTION_THRESHOLD_BYTES, topic
        members = json.loads(admin_request("GET", f"{base}/{topic_path(names.members)}/retention"))
        assert members["retentionTimeInMinutes"] > 0
    finally:
        _delete_namespace(admin_url, names)


def test_missing_tenant_says_which_and_what_to_do(admin_url: str) -> None:
    tenant = unique("no-such-tenant")
    with pytest.raises(AdminError) as err:
        ensure_namespace(admin_url, ClusterNames("c1", f"{tenant}/fs"))
    message = str(err.value)
    assert f"tenant {tenant!r} does not exist" in message
    assert "tenants create" in message and "\n" not in message


def test_unreachable_admin_api() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(AdminError, match=f"cannot reach the Pulsar admin API at {url}"):
        ensure_namespace(url, ClusterNames("c1"))

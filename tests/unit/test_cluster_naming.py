"""ClusterNames: the topics of one cluster, and the errors for bad names."""

from __future__ import annotations

import dataclasses

import pytest

from fsd.cluster.naming import DEFAULT_NAMESPACE, ClusterNameInvalid, ClusterNames

SHA = "ab" * 32


def test_default_namespace_topics() -> None:
    names = ClusterNames("prod")
    assert names.tenant_namespace == DEFAULT_NAMESPACE == "public/function-stream"
    assert (names.tenant, names.namespace) == ("public", "function-stream")
    assert names.registry == "persistent://public/function-stream/prod-registry"
    assert names.members == "persistent://public/function-stream/prod-members"
    assert names.assignments == "persistent://public/function-stream/prod-assignments"
    assert names.packages == "persistent://public/function-stream/prod-packages"
    assert names.package_data(SHA) == f"persistent://public/function-stream/prod-package-{SHA}"


def test_custom_namespace() -> None:
    names = ClusterNames("edge_1.eu", "acme/streams")
    assert (names.tenant, names.namespace) == ("acme", "streams")
    assert names.registry == "persistent://acme/streams/edge_1.eu-registry"


def test_compacted_topics_are_the_key_value_stores() -> None:
    names = ClusterNames("prod")
    assert names.compacted_topics == (
        names.registry,
        names.members,
        names.assignments,
        names.packages,
    )


def test_two_clusters_in_one_namespace_share_no_topic() -> None:
    a, b = ClusterNames("a"), ClusterNames("a-registry")
    topics_a = {*a.compacted_topics, a.package_data(SHA)}
    topics_b = {*b.compacted_topics, b.package_data(SHA)}
    assert not topics_a & topics_b
    assert len(topics_a) == 5


@pytest.mark.parametrize("bad", ["", "-lead", "has/slash", "a b", "x" * 65, "ünï", None, 7])
def test_bad_cluster_name_names_the_value(bad: object) -> None:
    with pytest.raises(ClusterNameInvalid) as err:
        ClusterNames(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(err.value)
    assert "cluster name" in str(err.value)


@pytest.mark.parametrize("bad", ["public", "a/b/c", "/ns", "tenant/", "a b/c", "", None])
def test_bad_namespace_names_the_value(bad: object) -> None:
    with pytest.raises(ClusterNameInvalid) as err:
        ClusterNames("prod", bad)  # type: ignore[arg-type]
    assert repr(bad) in str(err.value)
    assert "tenant/namespace" in str(err.value)


@pytest.mark.parametrize("bad", ["", "AB" * 32, "ab" * 31, "ab" * 32 + "0", "../etc/passwd"])
def test_bad_package_digest(bad: str) -> None:
    with pytest.raises(ClusterNameInvalid, match="sha256"):
        ClusterNames("prod").package_data(bad)


def test_frozen_and_comparable() -> None:
    names = ClusterNames("prod")
    assert names == ClusterNames("prod", "public/function-stream")
    assert hash(names) == hash(ClusterNames("prod"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        names.cluster = "other"  # type: ignore[misc]

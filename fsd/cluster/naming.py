"""The Pulsar names one cluster uses: its namespace and the topics of its stores.

Every topic is prefixed with the cluster name, so several clusters can share
one tenant/namespace without seeing each other's functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fsd.function_spec import NAME_RE

DEFAULT_NAMESPACE = "public/function-stream"
# Pulsar's rule for tenant and namespace names.
_NS_PART_RE = re.compile(r"^[A-Za-z0-9_.=:-]{1,128}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class ClusterNameInvalid(ValueError):
    """A cluster name, namespace or package digest has a bad value; the message names it."""


@dataclass(frozen=True)
class ClusterNames:
    """Topic names of one cluster in one tenant/namespace.

    ``ClusterNames("prod")`` or ``ClusterNames("prod", "acme/streams")``; raises
    ClusterNameInvalid naming the bad value.
    """

    cluster: str
    tenant_namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        if not isinstance(self.cluster, str) or not NAME_RE.fullmatch(self.cluster):
            raise ClusterNameInvalid(
                f"invalid cluster name {self.cluster!r}: use 1-64 letters, digits, '_', '.' "
                f"or '-', starting with a letter or digit"
            )
        ns = self.tenant_namespace
        parts = ns.split("/") if isinstance(ns, str) else []
        if len(parts) != 2 or not all(_NS_PART_RE.fullmatch(p) for p in parts):
            raise ClusterNameInvalid(
                f"invalid cluster namespace {ns!r}: give it as 'tenant/namespace', "
                f"e.g. {DEFAULT_NAMESPACE!r}"
            )

    @property
    def tenant(self) -> str:
        """The Pulsar tenant."""
        return self.tenant_namespace.split("/")[0]

    @property
    def namespace(self) -> str:
        """The namespace within the tenant (without the tenant)."""
        return self.tenant_namespace.split("/")[1]

    def _topic(self, suffix: str) -> str:
        return f"persistent://{self.tenant}/{self.namespace}/{self.cluster}-{suffix}"

    @property
    def registry(self) -> str:
        """Compacted: function name -> FunctionSpec JSON (empty value = deleted)."""
        return self._topic("registry")

    @property
    def members(self) -> str:
        """Compacted: member id -> heartbeat."""
        return self._topic("members")

    @property
    def assignments(self) -> str:
        """Written only by the leader (exclusive producer)."""
        return self._topic("assignments")

    @property
    def packages(self) -> str:
        """Compacted index: sha256 -> manifest of a package whose chunks are all written."""
        return self._topic("packages")

    def package_data(self, sha256: str) -> str:
        """The topic holding one package's chunks, named by its digest."""
        if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
            raise ClusterNameInvalid(
                f"invalid package digest {sha256!r}: expected 64 lowercase hex characters (sha256)"
            )
        return self._topic(f"package-{sha256}")

    @property
    def compacted_topics(self) -> tuple[str, ...]:
        """The topics read as key -> latest value, which the broker should compact."""
        return (self.registry, self.members, self.assignments, self.packages)

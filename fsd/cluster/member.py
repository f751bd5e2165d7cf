"""This fsd as a member of a cluster: the stores, the agent, placement and the merged view.

fsd's main loop talks to the cluster only through this object and only
without blocking on the network: the registry is a TableView (reads are
local), packages are fetched on a background thread, and membership,
leadership and assignments run in the agent's thread (agent.py, leader_role.py). Each tick
the loop hands over the registry and its replicas' status and reads back
the current view.
"""

from __future__ import annotations

from typing import Any

import pulsar
import structlog

from fscommon.logs import silent_pulsar_logger
from fscommon.protocol import Desired
from fsd.broker_admin import AdminError
from fsd.cluster.admin import ensure_namespace
from fsd.cluster.agent import ClusterAgent
from fsd.cluster.naming import ClusterNameInvalid, ClusterNames
from fsd.cluster.packages_topic import PackageError, PackageFetcher, PackageTopicStore
from fsd.cluster.registry_topic import RegistryUnavailable, TopicRegistry
from fsd.cluster.scheduler import ClusterFunction
from fsd.cluster.view import ClusterView
from fsd.config import FsdConfig
from fsd.function_spec import FunctionSpec
from fsd.package_store import PackageStore

log = structlog.get_logger("fsd.cluster")

# A replica the leader placed on a member that has not reported it yet.
PENDING = "PENDING"


class ClusterUnavailable(Exception):
    """This fsd cannot join its cluster; the message says what, where and what to do."""


class ClusterMember:
    """Everything this fsd does as one member of a cluster."""

    def __init__(
        self, config: FsdConfig, pulsar_url: str, admin_url: str | None, local: PackageStore
    ) -> None:
        assert config.cluster is not None
        try:
            names = ClusterNames(config.cluster, config.cluster_namespace)
        except ClusterNameInvalid as exc:
            raise ClusterUnavailable(str(exc)) from None
        if admin_url is None:
            raise ClusterUnavailable(
                f"cluster {config.cluster!r} needs the broker's admin URL to set up its "
                f"namespace: give --pulsar-admin-url http://HOST:8080"
            )
        try:
            ensure_namespace(admin_url, names)
        except AdminError as exc:
            raise ClusterUnavailable(f"cluster {config.cluster!r}: {exc}") from None
        self.names = names
        self.member_id = config.effective_member_id()
        self.client = pulsar.Client(
            pulsar_url,
            operation_timeout_seconds=10,
            connection_timeout_ms=5000,
            logger=silent_pulsar_logger(),
        )
        try:
            self.registry = TopicRegistry(self.client, names.registry, member=self.member_id)
            self.packages = PackageTopicStore(self.client, names, member=self.member_id)
            self.agent = ClusterAgent(
                self.client,
                names.members,
                names.assignments,
                self.member_id,
                config.endpoint,
                member_timeout=config.member_timeout,
                heartbeat_interval=config.member_heartbeat,
            )
            self.agent.start()
        except (RegistryUnavailable, PackageError, pulsar.PulsarException) as exc:
            self.client.close()
            raise ClusterUnavailable(f"cluster {config.cluster!r} at {pulsar_url}: {exc}") from None
        self.fetcher = PackageFetcher(self.packages, local)
        self.view = ClusterView(member_id=self.member_id)
        self._fetch_errors: dict[str, str] = {}  # function -> why its package is not here
        log.info(
            "joined cluster",
            cluster=config.cluster,
            namespace=config.cluster_namespace,
            member=self.member_id,
        )

    def publish_package(self, wasm: bytes) -> None:
        """Make a module fetchable by every member (the compiler thread calls this)."""
        self.packages.publish(wasm)

    def tick(self, specs: list[FunctionSpec], local_status: list[dict[str, Any]]) -> None:
        """Hand the agent the registry and this member's replicas; read back the view."""
        self.agent.update(
            [ClusterFunction(s.name, s.replicas, s.desired is Desired.RUNNING) for s in specs],
            [self._with_fetch_error(view, view["function"]) for view in local_status],
        )
        self.view = self.agent.snapshot()

    def placement(self, spec: FunctionSpec) -> set[int]:
        """The replicas of ``spec`` this member runs: assigned here, and its module is here.

        A module that cannot be fetched still places its replicas, so the worker
        fails to load it and the replica goes FATAL; the reason is in its status.
        """
        mine = set(self.view.mine.get(spec.name, frozenset()))
        if not mine:
            return mine
        self.fetcher.request(spec.package)
        try:
            here = self.fetcher.poll(spec.package)
        except PackageError as exc:
            self._fetch_errors[spec.name] = f"package {spec.package[:12]} cannot be fetched: {exc}"
            return mine
        self._fetch_errors.pop(spec.name, None)
        return mine if here is not None else set()

    def views(self, name: str, local: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every replica of a function in the cluster: this member's fresh, the others' reported.

        Placed but not yet reported replicas show as PENDING on their member;
        replicas still draining after a move are listed too.
        """
        placed = self.view.assignment.get(name, {})
        out: dict[tuple[str, int], dict[str, Any]] = {}
        for view in local:
            item = {**self._with_fetch_error(view, name), "member": self.member_id}
            out[(self.member_id, view["replica"])] = item
        for member_id, info in self.view.members.items():
            if member_id == self.member_id:
                continue
            for view in info.replicas:
                if view.get("function") == name:
                    out[(member_id, view["replica"])] = {**view, "member": member_id}
        for index, member_id in placed.items():
            out.setdefault(
                (member_id, index),
                {"replica": index, "state": PENDING, "pid": None, "member": member_id},
            )
        return sorted(
            out.values(), key=lambda v: (v["replica"], v["member"] != placed.get(v["replica"]))
        )

    def _with_fetch_error(self, view: dict[str, Any], function: str) -> dict[str, Any]:
        """A replica whose module could not be fetched says so, rather than 'file not found'."""
        error = self._fetch_errors.get(function)
        return {**view, "last_error": error} if error else view

    def members(self) -> dict[str, Any]:
        """What 'fsctl members' shows: every live member, the leader, each one's replicas."""
        view = self.view
        return {
            "cluster": self.names.cluster,
            "namespace": self.names.tenant_namespace,
            "member_id": view.member_id,
            "leader_id": view.leader_id,
            "epoch": view.epoch,
            "members": [view.members[m].to_public() for m in sorted(view.members)],
            "errors": list(view.errors),
        }

    def close(self) -> None:
        """Leave the cluster (the others see it at once) and close the client."""
        for step in (self.agent.stop, self.fetcher.close, self.packages.close, self.registry.close):
            try:
                step()
            except Exception as exc:  # leaving must not stop the rest of the shutdown
                log.warning("leaving the cluster", error=str(exc))
        self.client.close()

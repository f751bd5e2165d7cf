"""One handler per control command. Each validates its arguments field by field."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import structlog

from fscommon.function_options import Guarantee
from fscommon.protocol import Desired, ErrorCode
from fsd import waits
from fsd.control_server import Deferred, Handler, HandlerError
from fsd.dead_letters import make_dead_letter_handler
from fsd.function_spec import FunctionSpec, SpecInvalid, validate_name
from fsd.replica_state import ReplicaState

if TYPE_CHECKING:
    from fsd.daemon import Daemon
    from fsworker.state_store import StateStore

log = structlog.get_logger("fsd.handlers")

VERSION = "0.1.0"
# How long create waits for the replicas to report ready before answering.
CREATE_READY_TIMEOUT = 60.0
# How long a module may take to compile (an 18 MB component: a few seconds here).
COMPILE_TIMEOUT = 120.0
# How long `fsctl state put/delete` waits for a running batch's state lock (fsd's loop waits).
STATE_LOCK_WAIT_MS = 200


def make_handlers(daemon: Daemon) -> dict[str, Handler]:
    """The command table."""
    h = _Handlers(daemon)
    return {
        "ping": h.ping,
        "info": h.info,
        "create": h.create,
        "delete": h.delete,
        "list": h.list,
        "status": h.status,
        "stop": h.stop,
        "start": h.start,
        "scale": h.scale,
        "restart": h.restart,
        "update": h.update,
        "state": h.state,
        "logs": h.logs,
        "members": h.members,
        "dlq": make_dead_letter_handler(daemon),
    }


@contextlib.contextmanager
def _state_errors(name: str) -> Iterator[None]:
    """A state store's errors as replies: locked -> busy, anything else -> unavailable."""
    from fsworker.state_store import StateBusy, StateError

    try:
        yield
    except StateBusy:
        raise HandlerError(
            ErrorCode.BUSY, f"state of {name} is locked by a running batch; try again"
        ) from None
    except StateError as exc:
        raise HandlerError(ErrorCode.UNAVAILABLE, str(exc)) from None


def _require_name(args: dict[str, Any]) -> str:
    try:
        return validate_name(args.get("name"))
    except SpecInvalid as exc:
        raise HandlerError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None


class _Handlers:
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon

    def ping(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"pong": True, "pid": os.getpid(), "version": VERSION}

    def info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "version": VERSION,
            "pid": os.getpid(),
            "endpoint": self.d.config.endpoint,
            "pulsar_url": self.d.pulsar_url,
            "embedded_broker": self.d.broker is not None,
            "broker_pid": self.d.broker.pid if self.d.broker else None,
            "broker": self.d.broker_keeper.to_public() if self.d.broker_keeper else None,
            "transitions_endpoint": self.d.config.transitions_endpoint,
            "state_dir": str(self.d.config.state_dir),
            "cluster": self.d.config.cluster,
            "member_id": self.d.cluster.member_id if self.d.cluster else None,
            "uptime": time.monotonic() - self.d.started_mono,
        }

    def members(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.d.cluster is None:
            raise HandlerError(
                ErrorCode.INVALID_ARGUMENT,
                "this fsd is a single host, not a cluster member: start it with "
                "--cluster NAME --pulsar-url URL to join one (docs/cluster.md)",
            )
        return self.d.cluster.members()

    def create(self, args: dict[str, Any]) -> Deferred:
        pending = self.d.functions.begin_create(
            args, self.d.config.function_defaults(), prepare=self._prepare
        )
        name = pending.name
        wait = args.get("wait", True) is not False
        created: list[FunctionSpec] = []

        def poll() -> dict[str, Any] | None:
            if not created:
                spec = pending.poll()  # compiling off the loop, then registered once
                if spec is None:
                    return None
                created.append(spec)
                if not wait:
                    return self._function_status(name)
            return self._all_running(name)

        return Deferred(
            poll=poll,
            deadline=time.monotonic() + COMPILE_TIMEOUT + CREATE_READY_TIMEOUT,
            on_timeout=lambda: self._function_status(name),
        )

    def _prepare(self, spec: FunctionSpec) -> None:
        """effectively-once needs broker-side deduplication on the output topic."""
        if spec.options.get("guarantee") != Guarantee.EFFECTIVELY_ONCE or not spec.output:
            return
        from fsd.broker_admin import AdminError, enable_deduplication

        admin = self.d.admin_url
        if admin is None:
            raise HandlerError(
                ErrorCode.UNAVAILABLE,
                "effectively-once needs the broker's admin URL to enable deduplication: "
                "start fsd with --pulsar-admin-url",
            )
        try:
            enable_deduplication(admin, spec.output)
        except AdminError as exc:
            raise HandlerError(ErrorCode.UNAVAILABLE, str(exc)) from None

    def _waiting(self, name: str, poll: Any, timeout: float) -> Deferred:
        return Deferred(
            poll=poll,
            deadline=time.monotonic() + timeout,
            on_timeout=lambda: self._function_status(name),
        )

    def _all_running(self, name: str, rolled: bool = False) -> dict[str, Any] | None:
        """The status once every replica runs the current generation; raises on a failure."""
        spec = self.d.functions.registry.get(name)
        if spec is None:
            raise HandlerError(ErrorCode.CONFLICT, f"function '{name}' was deleted meanwhile")
        views = self.d.replica_views(name)
        try:
            done = waits.all_running(spec, views)
        except waits.ReplicaFailed as exc:
            raise HandlerError(ErrorCode.CONFLICT, f"function '{name}': {exc}") from None
        if not done:
            return None
        status = self._function_status(name)
        if rolled:
            status["rolled"] = [v["replica"] for v in views]
        return status

    def stop(self, args: dict[str, Any]) -> Deferred:
        name = _require_name(args)
        self.d.functions.stop(name)

        def poll() -> dict[str, Any] | None:
            stopped = waits.all_stopped(self.d.replica_views(name))
            return self._function_status(name) if stopped else None

        return self._waiting(name, poll, self.d.supervisor.policy.stop_timeout + 30)

    def start(self, args: dict[str, Any]) -> Deferred:
        name = _require_name(args)
        self.d.functions.start(name)
        return self._waiting(name, lambda: self._all_running(name), CREATE_READY_TIMEOUT)

    def scale(self, args: dict[str, Any]) -> Any:
        name = _require_name(args)
        # fsd/request_validation.py checked the type and range of replicas.
        spec = self.d.functions.scale(name, args["replicas"])
        if spec.desired is not Desired.RUNNING:
            return self._function_status(name)
        timeout = CREATE_READY_TIMEOUT + self.d.config.stop_timeout
        return self._waiting(name, lambda: self._all_running(name), timeout)

    def restart(self, args: dict[str, Any]) -> Deferred:
        name = _require_name(args)
        spec = self.d.functions.restart(name)
        return self._roll(spec)

    def update(self, args: dict[str, Any]) -> Deferred:
        name = _require_name(args)
        pending = self.d.functions.begin_update(name, args)
        updated: list[FunctionSpec] = []

        def poll() -> dict[str, Any] | None:
            if not updated:
                spec = pending.poll()
                if spec is None:
                    return None
                updated.append(spec)
                if spec.desired is not Desired.RUNNING:
                    return self._function_status(name)
            return self._all_running(name, rolled=True)

        return self._waiting(name, poll, COMPILE_TIMEOUT + self._roll_timeout(name))

    def _roll_timeout(self, name: str) -> float:
        per_replica = self.d.config.stop_timeout + self.d.config.ready_timeout
        return per_replica * max(1, len(self.d.replica_views(name))) + 10

    def _roll(self, spec: FunctionSpec) -> Deferred:
        name = spec.name
        return self._waiting(
            name, lambda: self._all_running(name, rolled=True), self._roll_timeout(name)
        )

    def delete(self, args: dict[str, Any]) -> Deferred:
        name = _require_name(args)
        purge = args.get("purge") is True
        pids = [v["pid"] for v in self.d.replica_views(name) if v.get("pid")]
        self.d.functions.delete(name)

        def done() -> dict[str, Any] | None:
            if self.d.replica_views(name):
                return None
            if purge:
                with _state_errors(name):
                    self.d.purge_state(name)
            return {"deleted": name, "stopped_pids": pids, "state_purged": purge}

        # The supervisor kills after stop_timeout, so this always completes.
        return Deferred(
            poll=done,
            deadline=time.monotonic() + self.d.supervisor.policy.stop_timeout + 30,
            on_timeout=lambda: {"deleted": name, "stopped_pids": pids, "still_stopping": True},
        )

    def state(self, args: dict[str, Any]) -> Any:
        """get / put / delete / list a function's state (also after delete, until purged).

        Never holds fsd's loop for long: a put or delete waits at most
        STATE_LOCK_WAIT_MS for a running batch's lock, then answers busy.
        """
        from fsworker.state_store import StateTransaction

        name = _require_name(args)
        # fsd/request_validation.py checked op, key, value, prefix and limit.
        op = args["op"]
        key = args.get("key")
        with _state_errors(name):
            store = self._state_store(name)
            try:
                if op == "get":
                    return {"key": key, "value": store.get(key)}
                if op in ("put", "delete"):
                    value = args.get("value")
                    tx = StateTransaction(store)
                    if op == "put":
                        tx.put(key, value)
                    else:
                        tx.delete(key)
                    tx.commit()
                    return {"key": key, "value": value if op == "put" else None}
                if op == "list":
                    prefix = args.get("prefix") or b""
                    limit = args.get("limit") or 100
                    return [{"key": k, "value": v} for k, v in store.scan(prefix, limit)]
                raise HandlerError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"state op must be get, put, delete or list: {op!r}",
                )
            finally:
                store.close()

    def _state_store(self, name: str) -> StateStore:
        """The function's state store, opened to wait briefly for locks; NOT_FOUND if none."""
        from fsworker.state_store import open_state_store

        url = self.d.config.state_url
        db = self.d.state_path(name)
        registered = self.d.functions.registry.get(name) is not None
        if not url and not registered and not db.exists():
            raise HandlerError(ErrorCode.NOT_FOUND, f"function '{name}' does not exist")
        store = open_state_store(name, path=db, url=url, lock_timeout_ms=STATE_LOCK_WAIT_MS)
        # In PostgreSQL a deleted function's kept state is its rows.
        try:
            if url and not registered and not store.scan(b"", 1):
                raise HandlerError(ErrorCode.NOT_FOUND, f"function '{name}' does not exist")
        except BaseException:
            store.close()
            raise
        return store

    def logs(self, args: dict[str, Any]) -> dict[str, Any]:
        """A function's worker log lines: the last N, or what came after a cursor (-f)."""
        from fscommon.protocol import LOGS_DEFAULT_LINES, LOGS_MAX_REPLY_BYTES
        from fsd.log_reader import read_logs

        name = _require_name(args)
        count = self.d.functions.get(name).replicas
        replica = args.get("replica")
        if replica is not None and not 0 <= replica < count:
            raise HandlerError(
                ErrorCode.INVALID_ARGUMENT,
                f"replica {replica!r} does not exist: function '{name}' has {count} "
                f"replica{'s' if count != 1 else ''} (0 to {count - 1})",
            )
        # fsd/request_validation.py checked the types and ranges of lines and cursor.
        lines = args.get("lines", LOGS_DEFAULT_LINES)
        cursor = args.get("cursor")
        replicas = [replica] if replica is not None else list(range(count))
        reply = read_logs(
            lambda index: self.d.supervisor.log_path(name, index),
            replicas,
            lines,
            cursor,
            LOGS_MAX_REPLY_BYTES,
        )
        return {"function": name, **reply}

    def list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for spec in self.d.functions.all():
            item = spec.to_public()
            views = self.d.replica_views(spec.name)
            item["running"] = sum(v["state"] == ReplicaState.RUNNING for v in views)
            out.append(item)
        return out

    def status(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        if args.get("name") is not None:
            name = _require_name(args)
            self.d.functions.get(name)
            return [self._function_status(name)]
        return [self._function_status(spec.name) for spec in self.d.functions.all()]

    def _autoscale_status(self, spec: FunctionSpec | None) -> dict[str, Any] | None:
        """Bounds, the last change (from the registry) and, where it is decided, the last
        decision; in a cluster only the leader decides (``decided_by``)."""
        if spec is None or not spec.autoscale:
            return None
        scaler = self.d.autoscaler
        cluster = self.d.cluster
        return {
            **spec.autoscale,
            "last_scaled": spec.last_scaled,
            "decision": scaler.status(spec.name) if scaler is not None else None,
            "decided_by": cluster.view.leader_id if cluster is not None else None,
        }

    def _function_status(self, name: str) -> dict[str, Any]:
        spec = self.d.functions.registry.get(name)
        backlog = self.d.backlog.get(name) if self.d.backlog is not None else None
        return {
            "name": name,
            "desired": str(spec.desired) if spec else None,
            "generation": spec.generation if spec else None,
            "package": spec.package if spec else None,
            "backlog": backlog,
            "inputs": spec.inputs if spec else [],
            "output": spec.output if spec else None,
            "kind": spec.kind if spec else None,
            "replicas_wanted": spec.replicas if spec else 0,
            "autoscale": self._autoscale_status(spec),
            "replicas": self.d.replica_views(name),
            # The embedded broker's phase (None with an external cluster): is it restarting?
            "broker": self.d.broker_keeper.to_public() if self.d.broker_keeper else None,
        }

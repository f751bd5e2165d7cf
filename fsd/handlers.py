"""One handler per control command. Each validates its arguments field by field."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import structlog

from fscommon.function_options import OptionError, with_defaults, with_grants
from fscommon.protocol import ErrorCode
from fsd.control_server import Deferred, Handler, HandlerError
from fsd.function_spec import (
    FunctionSpec,
    SpecInvalid,
    validate_config,
    validate_create_args,
    validate_name,
)
from fsd.registry import AlreadyExists
from fsd.replica_state import ReplicaState
from fsworker.module_cache import precompile
from fsworker.module_check import InvalidModule, classify

if TYPE_CHECKING:
    from fsd.daemon import Daemon

log = structlog.get_logger("fsd.handlers")

VERSION = "0.1.0"
# How long create waits for the replicas to report ready before answering.
CREATE_READY_TIMEOUT = 60.0


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
    }


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
            "uptime": time.monotonic() - self.d.started_mono,
        }

    def create(self, args: dict[str, Any]) -> Any:
        # Limits and retries the request leaves out come from fsd's configuration.
        options = with_defaults(args.get("options"), self.d.config.function_defaults())
        try:
            fields = validate_create_args({**args, "options": options})
        except SpecInvalid as exc:
            raise HandlerError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
        name = fields["name"]
        if self.d.registry.get(name) is not None:
            raise HandlerError(
                ErrorCode.ALREADY_EXISTS,
                f"function '{name}' already exists; delete it first or choose another name",
            )
        if name in self.d.supervisor.functions:
            raise HandlerError(
                ErrorCode.CONFLICT, f"function '{name}' is still being deleted; try again shortly"
            )
        package, kind = self._store_module(args, fuel=fields["options"].get("fuel") is not None)
        spec = FunctionSpec(package=package, kind=kind, **fields)
        if spec.options.get("guarantee") == "effectively-once" and spec.output:
            self._enable_deduplication(spec.output)
        try:
            self.d.registry.add(spec)
        except AlreadyExists:
            raise HandlerError(
                ErrorCode.ALREADY_EXISTS, f"function '{name}' already exists"
            ) from None
        log.info("function created", function=name, package=package, kind=kind)
        self.d.supervisor.start_function(spec)
        if args.get("wait", True) is False:
            return self._function_status(name)
        return self._wait_all_running(name, CREATE_READY_TIMEOUT)

    def _enable_deduplication(self, topic: str) -> None:
        """effectively-once needs broker-side deduplication on the output topic."""
        from fsd.broker_admin import AdminError, enable_deduplication

        admin = self.d.admin_url
        if admin is None:
            raise HandlerError(
                ErrorCode.UNAVAILABLE,
                "effectively-once needs the broker's admin URL to enable deduplication: "
                "start fsd with --pulsar-admin-url",
            )
        try:
            enable_deduplication(admin, topic)
        except AdminError as exc:
            raise HandlerError(ErrorCode.UNAVAILABLE, str(exc)) from None

    def _store_module(self, args: dict[str, Any], fuel: bool = False) -> tuple[str, str]:
        """Validate the module in a request, cache its compiled form, store it; (sha, kind)."""
        wasm = args.get("wasm")
        if not isinstance(wasm, bytes):
            raise HandlerError(
                ErrorCode.INVALID_ARGUMENT, "field 'wasm' must be the module's bytes"
            )
        source = str(args.get("wasm_name") or "module")
        try:
            module = precompile(self.d.engine(fuel), wasm, self.d.compiled_dir, fuel=fuel)
            kind = classify(module)
        except InvalidModule as exc:
            raise HandlerError(ErrorCode.INVALID_MODULE, f"{source}: {exc}") from None
        return self.d.packages.put(wasm), str(kind)

    def _existing(self, args: dict[str, Any]) -> tuple[str, FunctionSpec]:
        name = _require_name(args)
        spec = self.d.registry.get(name)
        if spec is None or name not in self.d.supervisor.functions:
            raise HandlerError(ErrorCode.NOT_FOUND, f"function '{name}' does not exist")
        return name, spec

    def _not_busy(self, name: str) -> None:
        busy = self.d.supervisor.functions[name].busy
        if busy:
            raise HandlerError(
                ErrorCode.CONFLICT, f"function '{name}': {busy}; wait for it to finish"
            )

    def _wait_all_running(self, name: str, timeout: float) -> Deferred:
        return Deferred(
            poll=lambda: self._wait_running(name),
            deadline=time.monotonic() + timeout,
            on_timeout=lambda: self._function_status(name),
        )

    def _wait_running(self, name: str) -> dict[str, Any] | None:
        runtime = self.d.supervisor.functions.get(name)
        if runtime is None:
            raise HandlerError(ErrorCode.CONFLICT, f"function '{name}' was deleted while starting")
        for replica in runtime.replicas:
            if replica.state in (ReplicaState.FATAL, ReplicaState.BACKOFF):
                reason = replica.last_error or replica.last_exit or "worker exited"
                raise HandlerError(
                    ErrorCode.CONFLICT,
                    f"function '{name}' was created but replica {replica.index} is "
                    f"{replica.state}: {reason}; see 'fsctl status -n {name}'",
                )
        if len(runtime.replicas) == runtime.spec.replicas and all(
            r.state is ReplicaState.RUNNING for r in runtime.replicas
        ):
            return self._function_status(name)
        return None

    def stop(self, args: dict[str, Any]) -> Any:
        name, spec = self._existing(args)
        spec.desired = "stopped"
        self.d.registry.update(spec)
        self.d.supervisor.functions[name].spec.desired = "stopped"
        self.d.supervisor.stop_function(name)
        return Deferred(
            poll=lambda: (
                self._function_status(name) if self.d.supervisor.is_stopped(name) else None
            ),
            deadline=time.monotonic() + self.d.supervisor.policy.stop_timeout + 30,
            on_timeout=lambda: self._function_status(name),
        )

    def start(self, args: dict[str, Any]) -> Any:
        name, spec = self._existing(args)
        self._not_busy(name)
        spec.desired = "running"
        self.d.registry.update(spec)
        self.d.supervisor.functions[name].spec.desired = "running"
        self.d.supervisor.start_replicas(name)
        return self._wait_all_running(name, CREATE_READY_TIMEOUT)

    def scale(self, args: dict[str, Any]) -> Any:
        name, spec = self._existing(args)
        replicas = args["replicas"]  # fsd/request_validation.py checked type and range
        self._not_busy(name)
        spec.replicas = replicas
        self.d.registry.update(spec)
        self.d.supervisor.scale(name, replicas)
        if spec.desired != "running":
            return self._function_status(name)
        return self._wait_all_running(name, CREATE_READY_TIMEOUT + self.d.config.stop_timeout)

    def restart(self, args: dict[str, Any]) -> Any:
        name, spec = self._existing(args)
        if spec.desired != "running":
            raise HandlerError(
                ErrorCode.CONFLICT, f"function '{name}' is stopped; use 'fsctl start -n {name}'"
            )
        self._not_busy(name)
        return self._roll(name)

    def update(self, args: dict[str, Any]) -> Any:
        name, spec = self._existing(args)
        if all(args.get(key) is None for key in ("wasm", "config", "grants")):
            raise HandlerError(
                ErrorCode.INVALID_ARGUMENT,
                "nothing to update: give a new module, --config, --allow-dir or --allow-env",
            )
        self._not_busy(name)
        if args.get("config") is not None:
            try:
                spec.config = validate_config(args["config"])
            except SpecInvalid as exc:
                raise HandlerError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
        if args.get("grants") is not None:
            try:
                spec.options = with_grants(spec.options, args["grants"])
            except OptionError as exc:
                raise HandlerError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
        if args.get("wasm") is not None:
            fuel = spec.options.get("fuel") is not None
            spec.package, spec.kind = self._store_module(args, fuel=fuel)
        self.d.registry.update(spec)
        runtime = self.d.supervisor.functions[name]
        runtime.spec = spec
        log.info("function updated", function=name, package=spec.package)
        if spec.desired != "running":
            return self._function_status(name)
        return self._roll(name)

    def _roll(self, name: str) -> Deferred:
        rollout = self.d.supervisor.begin_rollout(name)
        per_replica = self.d.config.stop_timeout + self.d.config.ready_timeout
        count = len(self.d.supervisor.functions[name].replicas)

        def poll() -> dict[str, Any] | None:
            if not rollout.done:
                return None
            if rollout.error:
                raise HandlerError(ErrorCode.CONFLICT, f"function '{name}': {rollout.error}")
            return {**self._function_status(name), "rolled": rollout.rolled}

        return Deferred(
            poll=poll,
            deadline=time.monotonic() + per_replica * count + 10,
            on_timeout=lambda: self._function_status(name),
        )

    def delete(self, args: dict[str, Any]) -> Any:
        name = _require_name(args)
        purge = args.get("purge") is True
        if not self.d.registry.remove(name):
            raise HandlerError(ErrorCode.NOT_FOUND, f"function '{name}' does not exist")
        pids = []
        if name in self.d.supervisor.functions:
            pids = [r.pid for r in self.d.supervisor.functions[name].replicas if r.pid]
            self.d.supervisor.stop_function(name)
        log.info("function deleted", function=name)

        def done() -> dict[str, Any] | None:
            if not self.d.supervisor.is_stopped(name):
                return None
            self.d.supervisor.forget(name)
            if purge:
                db = self.d.state_path(name)
                for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                    path.unlink(missing_ok=True)
            return {"deleted": name, "stopped_pids": pids, "state_purged": purge}

        # The supervisor kills after stop_timeout, so this always completes.
        return Deferred(
            poll=done,
            deadline=time.monotonic() + self.d.supervisor.policy.stop_timeout + 30,
            on_timeout=lambda: {"deleted": name, "stopped_pids": pids, "still_stopping": True},
        )

    def state(self, args: dict[str, Any]) -> Any:
        """get / put / delete / list a function's state (also after delete, until purged)."""
        from fsworker.state_store import SqliteStateStore, StateTransaction

        name = _require_name(args)
        db = self.d.state_path(name)
        if self.d.registry.get(name) is None and not db.exists():
            raise HandlerError(ErrorCode.NOT_FOUND, f"function '{name}' does not exist")
        # fsd/request_validation.py checked op, key, value, prefix and limit.
        op = args["op"]
        key = args.get("key")
        store = SqliteStateStore(db)
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
                ErrorCode.INVALID_ARGUMENT, f"state op must be get, put, delete or list: {op!r}"
            )
        finally:
            store.close()

    def logs(self, args: dict[str, Any]) -> dict[str, Any]:
        """A function's worker log lines: the last N, or what came after a cursor (-f)."""
        from fscommon.protocol import LOGS_DEFAULT_LINES, LOGS_MAX_REPLY_BYTES
        from fsd.log_reader import read_logs

        name, _spec = self._existing(args)
        count = len(self.d.supervisor.functions[name].replicas)
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
        for spec in self.d.registry.all():
            item = spec.to_public()
            runtime = self.d.supervisor.functions.get(spec.name)
            item["running"] = (
                sum(r.state is ReplicaState.RUNNING for r in runtime.replicas) if runtime else 0
            )
            out.append(item)
        return out

    def status(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        if args.get("name") is not None:
            name = _require_name(args)
            if self.d.registry.get(name) is None:
                raise HandlerError(ErrorCode.NOT_FOUND, f"function '{name}' does not exist")
            return [self._function_status(name)]
        return [self._function_status(spec.name) for spec in self.d.registry.all()]

    def _function_status(self, name: str) -> dict[str, Any]:
        spec = self.d.registry.get(name)
        runtime = self.d.supervisor.functions.get(name)
        backlog = self.d.backlog.get(name) if self.d.backlog is not None else None
        return {
            "name": name,
            "desired": spec.desired if spec else None,
            "package": spec.package if spec else None,
            "backlog": backlog,
            "inputs": spec.inputs if spec else [],
            "output": spec.output if spec else None,
            "kind": spec.kind if spec else None,
            "replicas_wanted": spec.replicas if spec else 0,
            "replicas": [r.to_public() for r in runtime.replicas] if runtime else [],
            # The embedded broker's phase (None with an external cluster): is it restarting?
            "broker": self.d.broker_keeper.to_public() if self.d.broker_keeper else None,
        }

"""FunctionService: the one writer of every function's desired state.

create / update / scale / start / stop / restart / delete change the registry
(and the package store) and nothing else; the supervisor reconciles the
replicas toward what the registry says (fsd/supervisor.py ``reconcile``),
on every tick and right after each write. Restoring functions at start is
the same reconcile. The registry is SQLite on one host, a compacted Pulsar
topic in a cluster (fsd/registry.py ``RegistryBackend``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from fscommon.function_options import OptionError, with_defaults, with_grants
from fscommon.protocol import ErrorCode
from fsd.control_server import HandlerError
from fsd.function_spec import (
    Desired,
    FunctionSpec,
    SpecInvalid,
    check_one_replica,
    validate_autoscale,
    validate_config,
    validate_create_args,
)
from fsd.module_compiler import Compilation, ModuleCompiler, StoredModule
from fsd.registry import AlreadyExists, RegistryBackend

log = structlog.get_logger("fsd.functions")


def _invalid(exc: Exception) -> HandlerError:
    return HandlerError(ErrorCode.INVALID_ARGUMENT, str(exc))


class FunctionService:
    """Validates and writes desired state; ``on_change`` asks for a reconcile at once."""

    def __init__(
        self,
        registry: RegistryBackend,
        compiler: ModuleCompiler,
        on_change: Callable[[], None],
        busy: Callable[[str], str | None] = lambda name: None,
        still_running: Callable[[str], bool] = lambda name: False,
        no_state: str | None = None,
    ) -> None:
        self.registry = registry
        self._compiler = compiler
        self._on_change = on_change
        self._busy = busy
        self._still_running = still_running
        # Why a module that imports the state API is refused here, if it is.
        self._no_state = no_state
        self._creating: set[str] = set()  # names whose module is compiling

    # --- reads -------------------------------------------------------------------------------

    def get(self, name: str) -> FunctionSpec:
        """A registered function; NOT_FOUND otherwise."""
        spec = self.registry.get(name)
        if spec is None:
            raise HandlerError(ErrorCode.NOT_FOUND, f"function '{name}' does not exist")
        return spec

    def all(self) -> list[FunctionSpec]:
        """Every registered function, by name."""
        return self.registry.all()

    # --- create ------------------------------------------------------------------------------

    def begin_create(
        self,
        args: dict[str, Any],
        defaults: dict[str, Any],
        prepare: Callable[[FunctionSpec], None] | None = None,
    ) -> PendingCreate:
        """Check a create request and start compiling its module; finish with ``PendingCreate``.

        ``prepare`` runs in the compiler's thread too (e.g. the broker admin calls
        effectively-once needs), with the spec as it will be registered.
        """
        options = with_defaults(args.get("options"), defaults)
        try:
            fields = validate_create_args({**args, "options": options})
        except SpecInvalid as exc:
            raise _invalid(exc) from None
        name = fields["name"]
        if self.registry.get(name) is not None or name in self._creating:
            raise HandlerError(
                ErrorCode.ALREADY_EXISTS,
                f"function '{name}' already exists; delete it first or choose another name",
            )
        if self._still_running(name):
            raise HandlerError(
                ErrorCode.CONFLICT, f"function '{name}' is still being deleted; try again shortly"
            )
        draft = FunctionSpec(package="", kind="", **fields)
        before = (lambda: prepare(draft)) if prepare is not None else None
        compilation = self._compile(args, fuel=draft.options.get("fuel") is not None, before=before)
        self._creating.add(name)
        return PendingCreate(self, fields, compilation)

    def check_module(self, name: str, module: StoredModule) -> None:
        """Refuse a module this platform cannot run correctly (state without a shared store)."""
        if module.uses_state and self._no_state:
            raise HandlerError(
                ErrorCode.INVALID_MODULE,
                f"function '{name}': the module imports the state API (fs.state_*), "
                f"but {self._no_state}",
            )

    def _register(self, fields: dict[str, Any], module: StoredModule) -> FunctionSpec:
        self.check_module(fields["name"], module)
        spec = FunctionSpec(package=module.package, kind=module.kind, **fields)
        try:
            self.registry.add(spec)
        except AlreadyExists:
            raise HandlerError(
                ErrorCode.ALREADY_EXISTS, f"function '{spec.name}' already exists"
            ) from None
        log.info("function created", function=spec.name, package=spec.package, kind=spec.kind)
        self._on_change()
        return spec

    def _compile(
        self, args: dict[str, Any], fuel: bool, before: Callable[[], None] | None = None
    ) -> Compilation:
        wasm = args.get("wasm")
        if not isinstance(wasm, bytes):
            raise HandlerError(
                ErrorCode.INVALID_ARGUMENT, "field 'wasm' must be the module's bytes"
            )
        return self._compiler.submit(wasm, str(args.get("wasm_name") or "module"), fuel, before)

    # --- changes -----------------------------------------------------------------------------

    def stop(self, name: str) -> FunctionSpec:
        """Desired: stopped (survives fsd restarts)."""
        spec = self.get(name)
        spec.desired = Desired.STOPPED
        return self._write(spec, "function stopped")

    def start(self, name: str) -> FunctionSpec:
        """Desired: running; FATAL replicas get a fresh restart budget."""
        spec = self.get(name)
        self._not_busy(name)
        spec.desired = Desired.RUNNING
        spec.starts += 1
        return self._write(spec, "function started")

    def scale(self, name: str, replicas: int) -> FunctionSpec:
        """Desired: ``replicas`` replicas (request_validation checked the range).

        Refused while the function is autoscaled: the autoscaler owns its count.
        """
        spec = self.get(name)
        bounds = spec.bounds()
        if bounds is not None:
            raise HandlerError(
                ErrorCode.CONFLICT,
                f"function '{name}' is autoscaled between {bounds.min_replicas} and "
                f"{bounds.max_replicas} replicas: change the bounds with 'fsctl update -n {name} "
                f"--min-replicas N --max-replicas M', or fix the count with 'fsctl update -n "
                f"{name} --no-autoscale' and then 'fsctl scale'",
            )
        try:
            check_one_replica(name, spec.options.get("guarantee"), replicas, 1)
        except SpecInvalid as exc:
            raise _invalid(exc) from None
        self._not_busy(name)
        spec.replicas = replicas
        return self._write(spec, "function scaled")

    def autoscale(self, name: str, replicas: int, reason: str) -> FunctionSpec | None:
        """The autoscaler's write: None (nothing written) if the function is no longer
        autoscaled and running, or is busy with an update or restart."""
        spec = self.registry.get(name)
        bounds = spec.bounds() if spec is not None else None
        if spec is None or bounds is None or spec.desired is not Desired.RUNNING:
            return None
        if self._busy(name) or spec.replicas == bounds.clamp(replicas):
            return None
        spec.last_scaled = {
            "time": time.time(),
            "old": spec.replicas,
            "new": bounds.clamp(replicas),
            "reason": reason,
        }
        spec.replicas = bounds.clamp(replicas)
        self.registry.update(spec)
        log.info("function autoscaled", function=name, replicas=spec.replicas, reason=reason)
        self._on_change()
        return spec

    def restart(self, name: str) -> FunctionSpec:
        """A new generation: every replica is rolled, one at a time."""
        spec = self.get(name)
        if spec.desired is not Desired.RUNNING:
            raise HandlerError(
                ErrorCode.CONFLICT, f"function '{name}' is stopped; use 'fsctl start -n {name}'"
            )
        self._not_busy(name)
        spec.generation += 1
        return self._write(spec, "rolling restart requested")

    def begin_update(self, name: str, args: dict[str, Any]) -> PendingUpdate:
        """Check an update; its module (if any) compiles in the background."""
        spec = self.get(name)
        if all(args.get(key) is None for key in (*ROLLING_CHANGES, "autoscale", "autoscale_off")):
            raise HandlerError(
                ErrorCode.INVALID_ARGUMENT,
                "nothing to update: give a new module, --config, --allow-dir, --allow-env, "
                "--min-replicas/--max-replicas or --no-autoscale",
            )
        self._not_busy(name)
        changes: dict[str, Any] = _autoscale_changes(spec, args)
        if args.get("config") is not None:
            try:
                changes["config"] = validate_config(args["config"])
            except SpecInvalid as exc:
                raise _invalid(exc) from None
        if args.get("grants") is not None:
            try:
                changes["options"] = with_grants(spec.options, args["grants"])
            except OptionError as exc:
                raise _invalid(exc) from None
        compilation = None
        if args.get("wasm") is not None:
            compilation = self._compile(args, fuel=spec.options.get("fuel") is not None)
        roll = any(args.get(key) is not None for key in ROLLING_CHANGES)
        return PendingUpdate(self, name, changes, compilation, roll)

    def delete(self, name: str) -> None:
        """Unregister; the supervisor drains and forgets the replicas."""
        if not self.registry.remove(name):
            raise HandlerError(ErrorCode.NOT_FOUND, f"function '{name}' does not exist")
        log.info("function deleted", function=name)
        self._on_change()

    def _write(self, spec: FunctionSpec, what: str) -> FunctionSpec:
        self.registry.update(spec)
        log.info(what, function=spec.name, replicas=spec.replicas, desired=str(spec.desired))
        self._on_change()
        return spec

    def _not_busy(self, name: str) -> None:
        busy = self._busy(name)
        if busy:
            raise HandlerError(
                ErrorCode.CONFLICT, f"function '{name}': {busy}; wait for it to finish"
            )


# Update fields that change what the replicas run, so they are rolled.
ROLLING_CHANGES = ("wasm", "config", "grants")


def _autoscale_changes(spec: FunctionSpec, args: dict[str, Any]) -> dict[str, Any]:
    """An update's autoscaling fields as spec changes (bounds given: replicas moved into them)."""
    if args.get("autoscale_off") is True:
        if args.get("autoscale") is not None:
            raise HandlerError(
                ErrorCode.INVALID_ARGUMENT,
                "give new bounds (--min-replicas/--max-replicas) or --no-autoscale, not both",
            )
        # The count stays where the autoscaler left it, fixed from now on.
        return {"autoscale": None}
    if args.get("autoscale") is None:
        return {}
    raw = args["autoscale"]
    if spec.autoscale and isinstance(raw, dict):
        raw = {**spec.autoscale, **raw}  # e.g. only --max-replicas: keep the rest
    try:
        bounds = validate_autoscale(raw)
        check_one_replica(spec.name, spec.options.get("guarantee"), 1, bounds.max_replicas)
    except SpecInvalid as exc:
        raise _invalid(exc) from None
    return {"autoscale": bounds.to_dict(), "replicas": bounds.clamp(spec.replicas)}


class PendingCreate:
    """A create whose module compiles in the background; ``poll()`` until it returns a spec."""

    def __init__(
        self, service: FunctionService, fields: dict[str, Any], compilation: Compilation
    ) -> None:
        self._service = service
        self._fields = fields
        self._compilation = compilation
        self.name: str = fields["name"]

    def poll(self) -> FunctionSpec | None:
        """None while compiling; then registers the function (once) and returns its spec."""
        try:
            module = self._compilation.result()
        except HandlerError:
            self._service._creating.discard(self.name)
            raise
        if module is None:
            return None
        self._service._creating.discard(self.name)
        return self._service._register(self._fields, module)


class PendingUpdate:
    """An update waiting for its module (if it has one) to compile."""

    def __init__(
        self,
        service: FunctionService,
        name: str,
        changes: dict[str, Any],
        compilation: Compilation | None,
        roll: bool = True,
    ) -> None:
        self._service = service
        self.name = name
        self._changes = changes
        self._compilation = compilation
        self._roll = roll

    def poll(self) -> FunctionSpec | None:
        """None while compiling; then writes the changes (a new generation if they roll)."""
        changes = dict(self._changes)
        if self._compilation is not None:
            module = self._compilation.result()
            if module is None:
                return None
            self._service.check_module(self.name, module)
            changes.update(package=module.package, kind=module.kind)
        # Applied to the spec as it is now: a scale or stop during the compile stays.
        spec = self._service.registry.get(self.name)
        if spec is None:
            raise HandlerError(
                ErrorCode.CONFLICT, f"function '{self.name}' was deleted while updating"
            )
        for key, value in changes.items():
            setattr(spec, key, value)
        if self._roll:
            spec.generation += 1
        return self._service._write(spec, "function updated")

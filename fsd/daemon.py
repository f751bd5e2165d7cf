"""fsd's main loop: one thread, one poller, signals only enqueue.

It owns the registry, package store, embedded broker, control server, the
worker event socket and the supervisor, and restores every registered
function at start.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import zmq

from fscommon.protocol import MAX_EVENT_BYTES, ProtocolError, decode_event
from fscommon.worker_spec import WorkerSpec
from fsd import dead_letters
from fsd.autoscaler import Autoscaler
from fsd.backlog import BacklogPoller
from fsd.broker import EmbeddedPulsar
from fsd.broker_keeper import EmbeddedBrokerKeeper
from fsd.config import FsdConfig
from fsd.control_access import EndpointInUse
from fsd.control_server import ControlServer
from fsd.function_spec import FunctionSpec
from fsd.functions import FunctionService
from fsd.handlers import make_handlers
from fsd.metrics import MetricsServer, parse_endpoint
from fsd.module_compiler import ModuleCompiler
from fsd.notices import Notices
from fsd.package_store import PackageStore
from fsd.registry import Registry, RegistryBackend
from fsd.replica import Replica
from fsd.replica_state import ReplicaState
from fsd.sd_notify import Notifier
from fsd.stall import StallDetector
from fsd.supervisor import Supervisor
from fsworker.engine import new_engine

if TYPE_CHECKING:
    from fsd.cluster.member import ClusterMember

log = structlog.get_logger("fsd")

TICK_MS = 100


def subscription_name(function: str) -> str:
    """The Shared subscription a function's replicas consume with."""
    return f"fs-{function}"


class Daemon:
    """The supervisor daemon."""

    def __init__(self, config: FsdConfig) -> None:
        self.config = config
        self.started_mono = time.monotonic()
        state = config.state_dir
        state.mkdir(parents=True, exist_ok=True)
        self.packages = PackageStore(state / "packages")
        self.compiled_dir = state / "compiled"
        # One engine per setting that changes the generated code (fuel on or off).
        self._engines = {False: new_engine(fuel=False), True: new_engine(fuel=True)}
        self.compiler = ModuleCompiler(self._engines, self.compiled_dir, self.packages)
        self.broker: EmbeddedPulsar | None = None
        self.broker_keeper: EmbeddedBrokerKeeper | None = None
        self.pulsar_url = config.pulsar_url or ""
        self.supervisor = Supervisor(
            self._worker_spec,
            log_dir=state / "logs",
            policy=config.supervision_policy(),
            on_transition=self._notify_transition,
        )
        # Cluster mode: the registry is the cluster's topic, opened once Pulsar is up.
        self.cluster: ClusterMember | None = None
        self.functions = self._function_service(
            None if config.cluster else Registry(state / "registry.sqlite3")
        )
        self._status_due = 0.0
        self.backlog: BacklogPoller | None = None
        self.admin_url: str | None = None
        self._stop_requested = False
        self._ctx: zmq.Context | None = None
        self.notices: Notices | None = None
        self.metrics: MetricsServer | None = None
        self.autoscaler: Autoscaler | None = None
        self._specs: list[FunctionSpec] = []
        self.stalls = StallDetector(config.stall_timeout)

    def state_path(self, function: str) -> Path:
        """The function's state database (kept after delete unless purged)."""
        return self.config.state_dir / "state" / f"{function}.sqlite3"

    def engine(self, fuel: bool) -> Any:
        """The wasmtime engine for functions with fuel metering on or off."""
        return self._engines[fuel]

    def _function_service(self, registry: RegistryBackend | None) -> FunctionService:
        return FunctionService(
            registry,  # type: ignore[arg-type]  # None only until the cluster's is open
            self.compiler,
            on_change=self.reconcile,
            busy=self._busy,
            still_running=lambda name: not self.supervisor.is_stopped(name),
            no_state=(
                "in cluster mode state must be shared by every member: start every fsd "
                "with --state-url postgresql://... (docs/state.md)"
                if self.config.cluster and not self.config.state_url
                else None
            ),
        )

    def reconcile(self) -> None:
        """Move the replicas this host runs toward the registry (every tick, and on change)."""
        specs = self._specs = self.functions.all()
        if self.cluster is None:
            self.supervisor.reconcile(specs)
            return
        now = time.monotonic()
        if now >= self._status_due:
            # The agent only sends it with a heartbeat; psutil is not free.
            self._status_due = now + self.config.member_heartbeat / 2
            local = [{**r.to_public(), "function": r.function} for r in self.supervisor.replicas()]
            self.cluster.tick(specs, local)
        else:
            self.cluster.view = self.cluster.agent.snapshot()
        self.supervisor.reconcile(specs, self.cluster.placement)

    def _local_views(self, name: str) -> list[dict[str, Any]]:
        runtime = self.supervisor.functions.get(name)
        if runtime is None:
            return []
        return [r.to_public() for r in runtime.ordered()]

    def replica_views(self, name: str) -> list[dict[str, Any]]:
        """The public status of every replica of a function (in a cluster: on every member)."""
        local = self._local_views(name)
        return self.cluster.views(name, local) if self.cluster is not None else local

    def purge_state(self, name: str) -> None:
        """Remove a deleted function's state ('fsctl delete --purge'); StateError if it cannot."""
        from fsworker.state_store import open_state_store

        url = self.config.state_url
        if not url and not self.state_path(name).exists():
            return
        store = open_state_store(name, path=self.state_path(name), url=url, lock_timeout_ms=200)
        try:
            store.purge()
        finally:
            store.close()

    def _busy(self, name: str) -> str | None:
        runtime = self.supervisor.functions.get(name)
        return runtime.busy if runtime is not None else None

    def _notify_transition(
        self, replica: Replica, old: ReplicaState, new: ReplicaState, reason: str
    ) -> None:
        """Every replica state change goes out on the notices socket (fsctl events)."""
        if self.notices is not None:
            self.notices.replica(replica, old, new, reason)

    def _worker_spec(self, spec: FunctionSpec, replica: int) -> WorkerSpec:
        return WorkerSpec(
            function=spec.name,
            replica=replica,
            wasm_path=str(self.packages.path(spec.package)),
            wasm_sha256=spec.package,
            kind=spec.kind,
            inputs=list(spec.inputs),
            output=spec.output,
            subscription=subscription_name(spec.name),
            pulsar_url=self.pulsar_url,
            events_endpoint=self.config.events_endpoint,
            cache_dir=str(self.compiled_dir),
            parent_pid=os.getpid(),
            log_level=self.config.log_level,
            config=dict(spec.config),
            options=dict(spec.options),
            # A shared PostgreSQL store (state_url) wins over the per-host SQLite file.
            state_path=None if self.config.state_url else str(self.state_path(spec.name)),
            state_url=self.config.state_url,
            attempts_path=str(self.config.state_dir / "attempts" / f"{spec.name}.sqlite3"),
            member=self.cluster.member_id if self.cluster is not None else None,
            # Several beats per timeout, so one late beat is not a hang.
            heartbeat_interval=min(1.0, self.config.heartbeat_timeout / 5),
            stop_timeout=self.config.stop_timeout,
        )

    def _check_state_store(self) -> str | None:
        """At start: None if the state store is usable, else the one-line reason."""
        if not self.config.state_url:
            return None
        from fsworker.state_postgres import check_reachable
        from fsworker.state_store import StateError

        try:
            check_reachable(self.config.state_url)
        except StateError as exc:
            return str(exc)
        return None

    def run(self) -> int:
        """Start everything, serve until SIGTERM/SIGINT, stop everything; return exit code."""
        # Before anything starts: replicas could not keep state without the store.
        problem = self._check_state_store()
        if problem is not None:
            log.error(problem)
            print(f"fsd: {problem}", file=sys.stderr, flush=True)
            return 1
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)

        def request_stop(signum: int, _frame: object) -> None:
            self._stop_requested = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        # SIGCHLD only needs to wake the poller (via the wakeup fd); the loop reaps.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        # Read (and hide from workers and the JVM) systemd's NOTIFY_SOCKET/WATCHDOG_USEC.
        notifier = Notifier.from_environment()

        # Claim the endpoint first: a second fsd must fail before it touches the broker.
        # Requests that arrive while the broker starts wait in the socket.
        self._ctx = zmq.Context()
        self.config.runtime_dir.mkdir(parents=True, exist_ok=True)
        control = ControlServer(
            self._ctx,
            self.config.endpoint,
            make_handlers(self),
            group=self.config.control_group,
            curve=self.config.curve_server(),
            max_request_bytes=self.config.max_request_bytes,
        )
        try:
            self._start_metrics()
        except BaseException:
            control.close()
            self._ctx.term()
            raise
        if not self.config.pulsar_url:
            notifier.status("starting the embedded Pulsar standalone")
            self.broker = EmbeddedPulsar(
                data_dir=self.config.state_dir / "pulsar",
                broker_port=self.config.pulsar_port,
                web_port=self.config.pulsar_web_port,
                heap=self.config.pulsar_heap,
            )
            try:
                self.broker.start()
                self.broker.wait_ready()
            except BaseException:
                self.broker.stop()
                control.close()
                self._ctx.term()
                raise
            self.pulsar_url = self.broker.url
            # From here on a dead broker is restarted step by step from the loop.
            self.broker_keeper = EmbeddedBrokerKeeper(self.broker)

        events = self._ctx.socket(zmq.PULL)
        events.setsockopt(zmq.LINGER, 0)
        events.setsockopt(zmq.MAXMSGSIZE, MAX_EVENT_BYTES)
        events_path = Path(self.config.events_endpoint[len("ipc://") :])
        events_path.unlink(missing_ok=True)
        events.bind(self.config.events_endpoint)
        os.chmod(events_path, 0o600)
        self.notices = Notices(
            self._ctx, self.config.transitions_endpoint, self.config.control_group
        )

        self.admin_url = self.config.admin_url(self.broker.web_port if self.broker else None)
        if self.admin_url:
            self.backlog = BacklogPoller(self.admin_url, self.config.autoscale_interval)
            self.backlog.start()

        if self.config.cluster:
            self._join_cluster()
        self.autoscaler = Autoscaler(
            self.functions, self.replica_views, self.backlog, self.notices.scale
        )
        restored = self.functions.all()
        notifier.status(f"restoring {len(restored)} function(s)")
        for spec in restored:
            log.info("restoring function", function=spec.name, replicas=spec.replicas)
        self.reconcile()  # restoring is the same reconcile as every tick

        log.info("fsd ready", endpoint=self.config.endpoint, pulsar_url=self.pulsar_url)
        # Really ready: control socket bound, broker accepting producers, every
        # registered function restored with its replicas spawned (docs/systemd.md).
        notifier.ready(f"serving {self.config.endpoint}; {len(restored)} function(s) restored")

        poller = zmq.Poller()
        poller.register(control.socket, zmq.POLLIN)
        if control.zap_socket is not None:
            poller.register(control.zap_socket, zmq.POLLIN)
        poller.register(events, zmq.POLLIN)
        poller.register(wake_r.fileno(), zmq.POLLIN)
        shutdown_deadline: float | None = None
        try:
            while True:
                # Wake up for the next restart or kill, not just on the tick.
                timeout = TICK_MS
                deadline = self.supervisor.next_deadline()
                if deadline is not None:
                    until = (deadline - time.monotonic()) * 1000
                    timeout = int(min(TICK_MS, max(0.0, until)))
                ready = dict(poller.poll(timeout))
                notifier.pet_watchdog()
                if wake_r.fileno() in ready:
                    _drain(wake_r)
                if control.zap_socket is not None and control.zap_socket in ready:
                    control.handle_zap()
                if control.socket in ready:
                    control.handle_readable()
                if events in ready:
                    self._drain_events(events)
                self.reconcile()
                self.supervisor.tick()
                control.poll_pending()
                self._watch_load()
                if self.broker_keeper is not None and not self._stop_requested:
                    self.broker_keeper.step()
                if self._stop_requested and shutdown_deadline is None:
                    log.info("stopping: asking every worker to drain and exit")
                    notifier.stopping("draining workers")
                    self.supervisor.stop_all()
                    shutdown_deadline = time.monotonic() + self.config.stop_timeout + 5
                if shutdown_deadline is not None and (
                    self.supervisor.all_stopped() or time.monotonic() > shutdown_deadline
                ):
                    break
        finally:
            if self.metrics is not None:
                self.metrics.stop()
            if self.backlog is not None:
                self.backlog.stop()
            control.close()
            events.close()
            events_path.unlink(missing_ok=True)
            if self.notices is not None:
                self.notices.close()
                self.notices = None
            self._ctx.term()
            if self.broker_keeper is not None:
                self.broker_keeper.close()
            if self.broker is not None:
                self.broker.stop()
            self.compiler.close()
            dead_letters.shutdown()
            if self.cluster is not None:
                self.cluster.close()  # closes the cluster's registry too
            elif self.functions.registry is not None:
                self.functions.registry.close()
        log.info("fsd stopped")
        return 0

    def _watch_load(self) -> None:
        """Backlog targets, autoscaling decisions and the metrics snapshot (every tick)."""
        specs = self._specs  # read by this tick's reconcile
        if self.backlog is not None:
            # Every registered function: a cluster's leader decides for replicas elsewhere too.
            self.backlog.set_targets(
                [(s.name, tuple(s.inputs), subscription_name(s.name)) for s in specs]
            )
            self._watch_stalls(specs)
        if self.autoscaler is not None:
            deciding = self.cluster is None or self.cluster.view.is_leader
            self.autoscaler.tick(specs, deciding)
        if self.metrics is not None:
            self.metrics.refresh(self.supervisor, self.backlog, specs, self.autoscaler)

    def _watch_stalls(self, specs: list[FunctionSpec]) -> None:
        """Restart local replicas that take nothing while their backlog waits (fsd/stall.py)."""
        assert self.backlog is not None
        now = time.monotonic()
        for spec in specs:
            runtime = self.supervisor.functions.get(spec.name)
            replicas = runtime.ordered() if runtime is not None else []
            running = [r for r in replicas if r.state is ReplicaState.RUNNING]
            sample = self.backlog.sample(spec.name)
            backlog = sample[0] if sample is not None else None
            if backlog is not None:  # messages held for delayed delivery are not a stall
                backlog -= self.backlog.delayed(spec.name)
            progress = tuple((r.pid, r.counters.get("received", 0)) for r in running)
            busy = any(r.busy_for > 0 for r in running) or len(running) < len(replicas)
            # A nacked message waits retry_delay_ms before it comes back: not a stall either.
            patience = 2 * spec.options.get("retry_delay_ms", 0) / 1000
            if self.stalls.observe(spec.name, now, backlog, progress, busy, patience):
                reason = (
                    f"no message taken for {self.stalls.timeout:.0f}s while {backlog} wait(s) "
                    f"on the subscription; restarting (stall_timeout)"
                )
                log.warning("replicas stalled", function=spec.name, backlog=backlog)
                self.supervisor.restart_stalled(spec.name, reason)
        self.stalls.forget({s.name for s in specs})

    def _join_cluster(self) -> None:
        """Open the cluster's stores and start the agent (raises ClusterUnavailable)."""
        from fsd.cluster.member import ClusterMember

        self.cluster = ClusterMember(self.config, self.pulsar_url, self.admin_url, self.packages)
        self.functions = self._function_service(self.cluster.registry)
        self.compiler.publish = self.cluster.publish_package
        if self.metrics is not None:
            self.metrics.member = (self.cluster.names.cluster, self.cluster.member_id)

    def _start_metrics(self) -> None:
        """Serve /metrics if metrics_endpoint is set (a taken port stops fsd, clearly)."""
        where = parse_endpoint(self.config.metrics_endpoint)
        if where is None:
            return
        server = MetricsServer(*where)
        try:
            server.start()
        except OSError as exc:
            raise EndpointInUse(
                f"cannot serve metrics at {where[0]}:{where[1]}: {exc.strerror or exc}; "
                f"choose another metrics_endpoint or set it to 'off'"
            ) from None
        self.metrics = server

    def _drain_events(self, events: zmq.Socket) -> None:
        while True:
            try:
                frame = events.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                event = decode_event(frame)
            except ProtocolError as exc:
                log.warning("bad worker event", error=exc.message)
                continue
            self.supervisor.on_event(event)


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except BlockingIOError:
        pass

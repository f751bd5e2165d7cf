"""fsd's main loop: one thread, one poller, signals only enqueue.

It owns the registry, package store, embedded broker, control server, the
worker event socket and the supervisor, and restores every registered
function at start. It wires them together and runs the loop; what each part
does lives in its own module (e.g. fsd/load_watch.py for the per-tick load
watching, fsd/worker_specs.py for what a worker is spawned with).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import zmq

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
from fsd.function_state import check_state_store, purge_state, state_path
from fsd.functions import FunctionService
from fsd.handlers import make_handlers
from fsd.load_watch import LoadWatch
from fsd.metrics import MetricsServer, parse_endpoint
from fsd.module_compiler import ModuleCompiler
from fsd.notices import Notices
from fsd.package_store import PackageStore
from fsd.registry import Registry, RegistryBackend
from fsd.replica import Replica
from fsd.replica_state import ReplicaState
from fsd.sd_notify import Notifier
from fsd.signal_wakeup import SignalWakeup
from fsd.supervisor import Supervisor
from fsd.worker_events import WorkerEvents
from fsd.worker_specs import build_worker_spec
from fsworker.engine import new_engine

if TYPE_CHECKING:
    from fsd.cluster.member import ClusterMember

log = structlog.get_logger("fsd")

TICK_MS = 100


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
        self.notices: Notices | None = None
        self.metrics: MetricsServer | None = None
        self.autoscaler: Autoscaler | None = None
        self.load_watch: LoadWatch | None = None
        self._specs: list[FunctionSpec] = []

    def state_path(self, function: str) -> Path:
        """The function's state database (kept after delete unless purged)."""
        return state_path(self.config.state_dir, function)

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
        purge_state(name, self.state_path(name), self.config.state_url)

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
        return build_worker_spec(
            self.config,
            spec,
            replica,
            wasm_path=self.packages.path(spec.package),
            cache_dir=self.compiled_dir,
            state_path=self.state_path(spec.name),
            pulsar_url=self.pulsar_url,
            member=self.cluster.member_id if self.cluster is not None else None,
        )

    def run(self) -> int:
        """Start everything, serve until SIGTERM/SIGINT, stop everything; return exit code."""
        # Before anything starts: replicas could not keep state without the store.
        problem = check_state_store(self.config.state_url)
        if problem is not None:
            log.error(problem)
            print(f"fsd: {problem}", file=sys.stderr, flush=True)
            return 1
        wakeup = SignalWakeup(on_stop=self._request_stop)
        # Read (and hide from workers and the JVM) systemd's NOTIFY_SOCKET/WATCHDOG_USEC.
        notifier = Notifier.from_environment()
        ctx = zmq.Context()
        control = self._open_control(ctx)
        self._start_broker(notifier, ctx, control)
        events = WorkerEvents(ctx, self.config.events_endpoint)
        self.notices = Notices(ctx, self.config.transitions_endpoint, self.config.control_group)
        self._start_watchers(self.notices)
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
        poller.register(events.socket, zmq.POLLIN)
        poller.register(wakeup.fileno(), zmq.POLLIN)
        try:
            self._serve(poller, wakeup, control, events, notifier)
        finally:
            self._shutdown(ctx, control, events)
        log.info("fsd stopped")
        return 0

    def _request_stop(self) -> None:
        """SIGTERM/SIGINT (in the signal handler): the loop stops on its next turn."""
        self._stop_requested = True

    def _open_control(self, ctx: zmq.Context) -> ControlServer:
        """Bind the control endpoint, then serve /metrics (raises EndpointInUse)."""
        # Claim the endpoint first: a second fsd must fail before it touches the broker.
        # Requests that arrive while the broker starts wait in the socket.
        self.config.runtime_dir.mkdir(parents=True, exist_ok=True)
        control = ControlServer(
            ctx,
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
            ctx.term()
            raise
        return control

    def _start_broker(self, notifier: Notifier, ctx: zmq.Context, control: ControlServer) -> None:
        """Start the embedded Pulsar unless pulsar_url names one; wait until it is ready."""
        if self.config.pulsar_url:
            return
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
            ctx.term()
            raise
        self.pulsar_url = self.broker.url
        # From here on a dead broker is restarted step by step from the loop.
        self.broker_keeper = EmbeddedBrokerKeeper(self.broker)

    def _start_watchers(self, notices: Notices) -> None:
        """Backlog poller, cluster membership, autoscaler and the per-tick load watch."""
        self.admin_url = self.config.admin_url(self.broker.web_port if self.broker else None)
        if self.admin_url:
            self.backlog = BacklogPoller(self.admin_url, self.config.autoscale_interval)
            self.backlog.start()

        if self.config.cluster:
            self._join_cluster()
        self.autoscaler = Autoscaler(
            self.functions, self.replica_views, self.backlog, notices.scale
        )
        self.load_watch = LoadWatch(
            self.supervisor,
            self.backlog,
            self.autoscaler,
            self.metrics,
            self.config.stall_timeout,
            # Alone, this fsd decides; in a cluster only the leader does, for every member.
            deciding=lambda: self.cluster is None or self.cluster.view.is_leader,
        )

    def _poll_timeout(self) -> int:
        """Milliseconds to poll: one tick, or less if a restart or kill is due sooner."""
        # Wake up for the next restart or kill, not just on the tick.
        timeout = TICK_MS
        deadline = self.supervisor.next_deadline()
        if deadline is not None:
            until = (deadline - time.monotonic()) * 1000
            timeout = int(min(TICK_MS, max(0.0, until)))
        return timeout

    def _serve(
        self,
        poller: zmq.Poller,
        wakeup: SignalWakeup,
        control: ControlServer,
        events: WorkerEvents,
        notifier: Notifier,
    ) -> None:
        """The main loop: poll, handle what is ready, tick; return once stopping is done."""
        shutdown_deadline: float | None = None
        while True:
            ready = dict(poller.poll(self._poll_timeout()))
            notifier.pet_watchdog()
            if wakeup.fileno() in ready:
                wakeup.drain()
            if control.zap_socket is not None and control.zap_socket in ready:
                control.handle_zap()
            if control.socket in ready:
                control.handle_readable()
            if events.socket in ready:
                events.drain(self.supervisor.on_event)
            self._tick(control)
            if self._stop_requested and shutdown_deadline is None:
                log.info("stopping: asking every worker to drain and exit")
                notifier.stopping("draining workers")
                self.supervisor.stop_all()
                shutdown_deadline = time.monotonic() + self.config.stop_timeout + 5
            if shutdown_deadline is not None and (
                self.supervisor.all_stopped() or time.monotonic() > shutdown_deadline
            ):
                break

    def _tick(self, control: ControlServer) -> None:
        """Once per turn of the loop: reconcile, supervise, answer, watch load, keep the broker."""
        self.reconcile()
        self.supervisor.tick()
        control.poll_pending()
        if self.load_watch is not None:
            self.load_watch.tick(self._specs)  # the specs this tick's reconcile read
        if self.broker_keeper is not None and not self._stop_requested:
            self.broker_keeper.step()

    def _shutdown(self, ctx: zmq.Context, control: ControlServer, events: WorkerEvents) -> None:
        """Stop everything run() started, in order: servers, sockets, broker, stores."""
        if self.metrics is not None:
            self.metrics.stop()
        if self.backlog is not None:
            self.backlog.stop()
        control.close()
        events.close()
        if self.notices is not None:
            self.notices.close()
            self.notices = None
        ctx.term()
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

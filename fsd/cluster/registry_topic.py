"""The function registry of a cluster: a compacted Pulsar topic and a key -> latest value view.

Drop-in for fsd.registry.Registry (same methods, same AlreadyExists). The topic is
keyed by function name; a value is a JSON record::

    {"v": 1, "spec": {...FunctionSpec...}, "updated_at": 1.7e9, "member": "m1", "write": "<uuid>"}

A delete writes a ``{"deleted": true, ...}`` record and then an empty payload (the
tombstone, which compaction turns into "no such key"). Reads never touch the
network: a compacted Reader on the registry's own thread keeps a dict of parsed
specs up to date (the TableView of pulsar-client, with a Python listener,
crashed the process on close once: see ``__init__``), so ``all()`` can run many
times a second.

Consistency (any member answers fsctl, so writers are concurrent):

- Last write wins per function, in the topic's order.
- ``add`` checks this member's view first, which lags other members by
  milliseconds: two creates of one name on two members inside that window both
  succeed and the later one in the topic stands.
- ``update`` of a name that is not in the view does nothing (as in SQLite), so a
  delete on another member is not undone by a late update seen after it.
- Read-your-writes: every write carries a unique id and returns only once this
  member's view has applied it (bounded by ``write_timeout``), so the next ``get``
  here sees it, or something written after it. Another member sees it as soon as
  its view receives it (milliseconds on one broker).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pulsar
import structlog

from fsd.function_spec import FunctionSpec
from fsd.registry import AlreadyExists

log = structlog.get_logger("fsd.cluster.registry")

RECORD_VERSION = 1
_SPEC_FIELDS = {f.name for f in dataclasses.fields(FunctionSpec)}

__all__ = ["AlreadyExists", "RegistryUnavailable", "TopicRegistry"]


class RegistryUnavailable(Exception):
    """A registry write was not confirmed by the broker or not seen back in time."""


def _copy(spec: FunctionSpec) -> FunctionSpec:
    """A copy the caller may mutate without touching the view."""
    return dataclasses.replace(
        spec,
        inputs=list(spec.inputs),
        config=dict(spec.config),
        options=json.loads(json.dumps(spec.options)),
        autoscale=dict(spec.autoscale) if spec.autoscale else None,
        last_scaled=dict(spec.last_scaled) if spec.last_scaled else None,
    )


def encode_record(spec: FunctionSpec | None, member: str, write_id: str) -> bytes:
    """The JSON value of one registry write (``spec`` None: the delete marker)."""
    record: dict[str, Any] = {
        "v": RECORD_VERSION,
        "updated_at": time.time(),
        "member": member,
        "write": write_id,
    }
    if spec is None:
        record["deleted"] = True
    else:
        # Every field (to_public leaves some out); desired as its string value.
        fields = {name: getattr(spec, name) for name in sorted(_SPEC_FIELDS)}
        fields["desired"] = str(spec.desired)
        record["spec"] = fields
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def decode_record(name: str, value: bytes) -> tuple[FunctionSpec | None, str | None]:
    """(spec or None if deleted, write id) of one value; ValueError if it is not a record."""
    if not value:
        return None, None
    record = json.loads(value)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    write_id = record.get("write")
    if record.get("deleted"):
        return None, write_id
    fields = record.get("spec")
    if not isinstance(fields, dict):
        raise ValueError("no 'spec' object")
    # Fields a newer fsd added are ignored; the key is the name whatever the value says.
    known = {k: v for k, v in fields.items() if k in _SPEC_FIELDS}
    known["name"] = name
    return FunctionSpec(**known), write_id


def _cannot_open(topic: str, exc: Exception) -> str:
    return (
        f"cannot open the cluster registry {topic}: {exc}; check the Pulsar URL and that "
        f"the broker is running"
    )


class TopicRegistry:
    """CRUD over registered functions, shared by every member through one compacted topic."""

    def __init__(
        self,
        client: pulsar.Client,
        topic: str,
        member: str = "",
        write_timeout: float = 5.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """Open the view (reads the topic to its end) and a producer.

        ``on_change`` is called after every change the view applies, on the view's
        thread: it must only wake the caller (e.g. write to a socketpair), not block.
        """
        self.topic = topic
        self._notify = on_change
        self.member = member
        self.write_timeout = write_timeout
        self._lock = threading.Lock()
        self._applied = threading.Condition(self._lock)
        self._specs: dict[str, FunctionSpec] = {}
        self._sorted: list[FunctionSpec] = []
        self._waiting: set[str] = set()  # write ids this instance waits to see
        self._seen: set[str] = set()
        self._version = 0
        try:
            self._producer = client.create_producer(
                topic,
                batching_enabled=False,
                send_timeout_millis=int(write_timeout * 1000),
            )
        except Exception as exc:
            raise RegistryUnavailable(_cannot_open(topic, exc)) from None
        # Our own compacted Reader on our own thread, not the client's TableView with a
        # listener: its Python callback, run from the client's thread, crashed the
        # process (SIGSEGV) when the view was closed in a CI run. Here the client never
        # calls into Python; this thread pulls.
        self._stopping = threading.Event()
        try:
            self._reader = client.create_reader(
                topic, pulsar.MessageId.earliest, is_read_compacted=True
            )
            while self._reader.has_message_available():  # to the end before serving reads
                self._apply(self._reader.read_next(int(write_timeout * 1000)))
        except Exception as exc:
            self._producer.close()
            raise RegistryUnavailable(_cannot_open(topic, exc)) from None
        self._thread = threading.Thread(target=self._follow, name="registry-view", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        """Apply what other members write, until close()."""
        while not self._stopping.is_set():
            try:
                msg = self._reader.read_next(100)
            except pulsar.Timeout:
                continue
            except Exception as exc:  # closed under us, or the broker is gone for now
                if self._stopping.is_set():
                    return
                log.warning("registry view: read failed; retrying", error=str(exc))
                self._stopping.wait(1.0)
                continue
            self._apply(msg)

    def _apply(self, msg: pulsar.Message) -> None:
        self._on_change(msg.partition_key(), msg.data())

    # -- the view ---------------------------------------------------------

    def _on_change(self, name: str, value: bytes) -> None:
        """Apply one key's new value (runs on the view's thread: never raise)."""
        try:
            spec, write_id = decode_record(name, value)
        except (ValueError, TypeError) as exc:
            # Absent, not "the value before": a member started later only ever sees
            # this latest value, and every member must agree.
            log.warning(
                "registry value is not a record: function ignored", name=name, error=str(exc)
            )
            spec, write_id = None, None
        with self._lock:
            if spec is None:
                self._specs.pop(name, None)
            else:
                self._specs[name] = spec
            self._sorted = [self._specs[k] for k in sorted(self._specs)]
            self._version += 1
            if write_id in self._waiting:
                self._seen.add(write_id)
                self._applied.notify_all()
        if self._notify is not None:
            try:
                self._notify()
            except Exception as exc:  # the caller's bug must not stop the view
                log.warning("registry on_change failed", error=str(exc))

    @property
    def version(self) -> int:
        """Grows by one with every change the view applies (cheap 'did anything change?')."""
        return self._version

    # -- Registry's interface ---------------------------------------------

    def close(self) -> None:
        """Stop reading and writing (the client stays open: it is the caller's)."""
        self._stopping.set()
        self._thread.join(5.0)
        for closer in (self._reader.close, self._producer.close):
            try:
                closer()
            except Exception as exc:  # already closed, or the client is gone
                log.debug("registry close", error=str(exc))

    def add(self, spec: FunctionSpec) -> None:
        """Register a new function; raises AlreadyExists if this member's view has it."""
        if self.get(spec.name) is not None:
            raise AlreadyExists(spec.name)
        spec.created_at = time.time()
        self._write(spec.name, spec)

    def update(self, spec: FunctionSpec) -> None:
        """Overwrite a function's fields (all but its name and creation time)."""
        current = self.get(spec.name)
        if current is None:
            return
        self._write(spec.name, dataclasses.replace(spec, created_at=current.created_at))

    def remove(self, name: str) -> bool:
        """Unregister; False if it was not registered (in this member's view)."""
        if self.get(name) is None:
            return False
        # The marker makes the delete visible here at once (read-your-writes); the
        # empty payload after it is what compaction understands as "gone".
        self._write(name, None)
        try:
            self._send(name, b"")
        except RegistryUnavailable as exc:  # deleted all the same: the marker says so
            log.warning("registry tombstone not written", name=name, error=str(exc))
        return True

    def get(self, name: str) -> FunctionSpec | None:
        """One function, or None."""
        with self._lock:
            spec = self._specs.get(name)
        return _copy(spec) if spec is not None else None

    def all(self) -> list[FunctionSpec]:
        """Every function, by name (from memory: no network round trip)."""
        with self._lock:
            specs = self._sorted
        return [_copy(s) for s in specs]

    # -- writing ----------------------------------------------------------

    def _send(self, name: str, payload: bytes) -> None:
        try:
            self._producer.send(payload, partition_key=name)
        except Exception as exc:  # pulsar raises its own hierarchy; all mean "not written"
            raise RegistryUnavailable(
                f"cannot write function {name!r} to the cluster registry {self.topic}: {exc}; "
                f"check that the Pulsar broker is reachable"
            ) from None

    def _write(self, name: str, spec: FunctionSpec | None) -> None:
        """Send one record and wait until this member's view has applied it."""
        write_id = uuid.uuid4().hex
        with self._lock:
            self._waiting.add(write_id)
        try:
            self._send(name, encode_record(spec, self.member, write_id))
            deadline = time.monotonic() + self.write_timeout
            with self._lock:
                while write_id not in self._seen:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise RegistryUnavailable(
                            f"the write of function {name!r} to {self.topic} was confirmed by "
                            f"the broker but not seen back within {self.write_timeout:.0f}s; "
                            f"check the broker's health and retry"
                        )
                    self._applied.wait(left)
        finally:
            with self._lock:
                self._waiting.discard(write_id)
                self._seen.discard(write_id)

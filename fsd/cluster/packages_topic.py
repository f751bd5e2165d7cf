"""Wasm modules shared by every member: content-addressed chunks on Pulsar topics.

Pulsar's own packages service (``enablePackagesManagement``) is not used: the
provisioned broker lacks its default BookKeeper storage jar (the broker does not
start with it on), its filesystem storage keeps a package on one broker's disk,
and it must be switched on in the broker's config, which a cluster we are given
may not allow. Plain topics work on any unmodified broker.

Layout, per cluster (fsd.cluster.naming.ClusterNames):

- ``<cluster>-package-<sha256>``: the module in ordered chunks of CHUNK_SIZE bytes,
  message key and property ``chunk`` = the chunk's index. Kept by the namespace's
  retention (fsd.cluster.admin), never by a subscription.
- ``<cluster>-packages`` (compacted): sha256 -> manifest {size, chunks, ...},
  written only after every chunk is confirmed, so a manifest means "complete".

A retried publish may leave duplicate chunks; readers key chunks by index and
check the whole module against its sha256 before anything is written to disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import tempfile
import threading
import time
from pathlib import Path

import pulsar
import structlog

from fsd.cluster.naming import ClusterNames
from fsd.package_store import PackageStore

log = structlog.get_logger("fsd.cluster.packages")

CHUNK_SIZE = 512 * 1024
MANIFEST_VERSION = 1
# Bounds the memory a fetch holds in the client's queue (chunks, not messages of 100 bytes).
_READER_QUEUE = 16


class PackageError(Exception):
    """A package could not be published or fetched; the message says which and why."""


class PackageMissing(PackageError):
    """No complete package with that digest exists in the cluster."""


class PackageCorrupt(PackageError):
    """The package's chunks are missing or do not hash to its digest."""


class PackageUnavailable(PackageError):
    """The broker did not answer in time, or refused a write."""


def _cannot_open(topic: str, exc: Exception) -> str:
    return (
        f"cannot open the cluster package index {topic}: {exc}; check the Pulsar URL and "
        f"that the broker is running"
    )


def _parse_manifest(value: bytes | None) -> dict | None:
    """A manifest from the index, or None for no value (or one that is not a manifest)."""
    if not value:
        return None
    try:
        manifest = json.loads(value)
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) else None


class PackageTopicStore:
    """Publish a module once; fetch it by digest on any member."""

    def __init__(
        self,
        client: pulsar.Client,
        names: ClusterNames,
        member: str = "",
        write_timeout: float = 30.0,
    ) -> None:
        self._client = client
        self.names = names
        self.member = member
        self.write_timeout = write_timeout
        try:
            self._index_producer = client.create_producer(
                names.packages,
                batching_enabled=False,
                send_timeout_millis=int(write_timeout * 1000),
            )
        except Exception as exc:
            raise PackageUnavailable(_cannot_open(names.packages, exc)) from None
        try:
            self._index = client.create_table_view(names.packages)
        except Exception as exc:
            self._index_producer.close()
            raise PackageUnavailable(_cannot_open(names.packages, exc)) from None

    def close(self) -> None:
        """Stop reading the index (the client stays open: it is the caller's)."""
        for closer in (self._index.close, self._index_producer.close):
            try:
                closer()
            except Exception as exc:  # already closed, or the client is gone
                log.debug("package store close", error=str(exc))

    def manifest(self, sha256: str) -> dict | None:
        """The manifest of a complete package, from this member's view of the index."""
        return _parse_manifest(self._index.get(sha256))

    def has(self, sha256: str) -> bool:
        """True if a complete package with this digest is in the cluster (no round trip)."""
        return self.manifest(sha256) is not None

    # -- publish ----------------------------------------------------------

    def publish(self, data: bytes) -> str:
        """Store ``data`` in the cluster and return its sha256 (cheap if it is there already)."""
        sha = hashlib.sha256(data).hexdigest()
        if self.has(sha):
            return sha
        topic = self.names.package_data(sha)
        chunks = [data[i : i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)]
        failures: list[str] = []

        def sent(result: pulsar.Result, _msg_id: object) -> None:
            if result != pulsar.Result.Ok:
                failures.append(f"a chunk was not written: {result}")

        try:
            producer = self._client.create_producer(
                topic,
                batching_enabled=False,
                compression_type=pulsar.CompressionType.LZ4,
                send_timeout_millis=int(self.write_timeout * 1000),
            )
        except Exception as exc:
            raise PackageUnavailable(
                f"cannot publish package {sha} to {topic}: {exc}; check the Pulsar broker"
            ) from None
        try:
            for index, chunk in enumerate(chunks):
                producer.send_async(
                    chunk,
                    sent,
                    partition_key=str(index),
                    properties={"sha256": sha, "chunk": str(index), "chunks": str(len(chunks))},
                )
            producer.flush()
        except Exception as exc:
            failures.append(str(exc))
        finally:
            producer.close()
        if failures:
            raise PackageUnavailable(
                f"cannot publish package {sha} to {topic}: {failures[0]}; check the Pulsar broker"
            )
        manifest = {
            "v": MANIFEST_VERSION,
            "sha256": sha,
            "size": len(data),
            "chunks": len(chunks),
            "chunk_size": CHUNK_SIZE,
            "published_at": time.time(),
            "member": self.member,
        }
        try:
            self._index_producer.send(
                json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode(),
                partition_key=sha,
            )
        except Exception as exc:
            raise PackageUnavailable(
                f"cannot record package {sha} in {self.names.packages}: {exc}; check the broker"
            ) from None
        self._wait_indexed(sha)
        return sha

    def _wait_indexed(self, sha: str) -> None:
        """Read-your-writes: return once this member's index view has the manifest."""
        deadline = time.monotonic() + self.write_timeout
        while not self.has(sha):
            if time.monotonic() > deadline:
                raise PackageUnavailable(
                    f"package {sha} was written but not seen in {self.names.packages} within "
                    f"{self.write_timeout:.0f}s; check the broker's health and retry"
                )
            time.sleep(0.005)

    # -- fetch ------------------------------------------------------------

    def fetch(self, sha256: str, dest: Path, timeout: float = 120.0) -> Path:
        """Write the package to ``dest`` (checked, atomically); return ``dest``.

        Raises PackageMissing, PackageCorrupt or PackageUnavailable.
        """
        topic = self.names.package_data(sha256)  # also validates the digest
        manifest = self.manifest(sha256) or self._read_manifest(sha256)
        if manifest is None:
            raise PackageMissing(
                f"package {sha256} is not in cluster {self.names.cluster!r} "
                f"({self.names.packages}): create the function again to publish its module"
            )
        try:
            count, size = int(manifest["chunks"]), int(manifest["size"])
        except (KeyError, TypeError, ValueError):
            raise PackageCorrupt(f"package {sha256} has a malformed manifest: {manifest}") from None
        chunks = self._read_chunks(sha256, topic, count, time.monotonic() + timeout, timeout)
        digest = hashlib.sha256()
        for index in range(count):
            digest.update(chunks[index])
        total = sum(len(c) for c in chunks.values())
        if total != size or digest.hexdigest() != sha256:
            raise PackageCorrupt(
                f"package {sha256} from {topic} is corrupt: got {total} bytes hashing to "
                f"{digest.hexdigest()}, expected {size} bytes; publish the module again"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                for index in range(count):
                    out.write(chunks[index])
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest

    def _read_manifest(self, sha256: str) -> dict | None:
        """Ask the broker (not the view, which may lag by milliseconds) for a manifest."""
        reader = self._reader(self.names.packages, compacted=True)
        found: bytes | None = None
        try:
            while reader.has_message_available():
                msg = reader.read_next(5000)
                if msg.partition_key() == sha256:
                    found = msg.data()
        except Exception as exc:
            raise PackageUnavailable(
                f"cannot read the package index {self.names.packages}: {exc}; check the broker"
            ) from None
        finally:
            reader.close()
        return _parse_manifest(found)

    def _reader(self, topic: str, compacted: bool = False) -> pulsar.Reader:
        try:
            return self._client.create_reader(
                topic,
                pulsar.MessageId.earliest,
                receiver_queue_size=_READER_QUEUE,
                is_read_compacted=compacted,
            )
        except Exception as exc:
            raise PackageUnavailable(f"cannot read {topic}: {exc}; check the broker") from None

    def _read_chunks(
        self, sha256: str, topic: str, count: int, deadline: float, timeout: float
    ) -> dict[int, bytes]:
        """Chunks 0..count-1 of the package, read from the start of its topic."""
        chunks: dict[int, bytes] = {}
        reader = self._reader(topic)
        try:
            while len(chunks) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PackageUnavailable(
                        f"fetching package {sha256} from {topic} took longer than {timeout:.0f}s "
                        f"({len(chunks)} of {count} chunks); check the broker, or raise the timeout"
                    )
                if not reader.has_message_available():
                    missing = sorted(set(range(count)) - set(chunks))
                    raise PackageCorrupt(
                        f"package {sha256} is incomplete in {topic}: chunk(s) {missing[:5]} of "
                        f"{count} missing; publish the module again"
                    )
                try:
                    msg = reader.read_next(int(min(left, 5.0) * 1000))
                except pulsar.Timeout:
                    continue
                props = msg.properties()
                if props.get("sha256") != sha256:
                    continue
                try:
                    index = int(props.get("chunk", ""))
                except ValueError:
                    continue
                if 0 <= index < count:
                    chunks[index] = msg.data()
        except PackageError:
            raise
        except Exception as exc:
            raise PackageUnavailable(f"cannot read {topic}: {exc}; check the broker") from None
        finally:
            reader.close()
        return chunks


class PackageFetcher:
    """Fetches packages into the local PackageStore on a background thread.

    For fsd's main loop, which must never block on the network: ``request`` a
    digest, then ``poll`` it on later turns. A failed fetch stays failed (its
    error is kept) until ``retry``.
    """

    def __init__(self, store: PackageTopicStore, local: PackageStore, timeout: float = 120.0):
        self.store = store
        self.local = local
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._errors: dict[str, PackageError] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="package-fetcher", daemon=True)
        self._thread.start()

    def request(self, sha256: str) -> None:
        """Start fetching unless it is here, on its way, or failed (see retry)."""
        with self._lock:
            if sha256 in self._pending or sha256 in self._errors or self.local.has(sha256):
                return
            self._pending.add(sha256)
        self._queue.put(sha256)

    def retry(self, sha256: str) -> None:
        """Forget a failure and fetch again."""
        with self._lock:
            self._errors.pop(sha256, None)
        self.request(sha256)

    def poll(self, sha256: str) -> Path | None:
        """The module's local path once it is here; None while on its way; raises its error."""
        with self._lock:
            error = self._errors.get(sha256)
        if error is not None:
            raise error
        return self.local.path(sha256) if self.local.has(sha256) else None

    def error(self, sha256: str) -> PackageError | None:
        """Why the fetch failed, or None."""
        with self._lock:
            return self._errors.get(sha256)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after the fetch in progress (queued ones are dropped)."""
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            sha = self._queue.get()
            if sha is None or self._stopping.is_set():
                return
            error: PackageError | None = None
            try:
                if not self.local.has(sha):
                    started = time.monotonic()
                    self.store.fetch(sha, self.local.path(sha), self.timeout)
                    log.info("package fetched", sha256=sha, seconds=time.monotonic() - started)
            except PackageError as exc:
                error = exc
            except Exception as exc:  # a bug or the disk: still reported, never a dead thread
                error = PackageError(f"fetching package {sha} failed: {exc}")
            with self._lock:
                self._pending.discard(sha)
                if error is not None:
                    log.warning("package fetch failed", sha256=sha, error=str(error))
                    self._errors[sha] = error

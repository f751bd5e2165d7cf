"""What fsd tells an fsworker to run: one JSON document on the worker's command line."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


class SpecError(ValueError):
    """The worker spec is malformed; the worker exits BAD_CONFIG."""


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one replica needs; built by fsd from the registry."""

    function: str
    replica: int
    wasm_path: str
    wasm_sha256: str
    kind: str  # fsworker.module_check.ModuleKind value
    inputs: list[str]
    output: str | None
    subscription: str
    pulsar_url: str
    events_endpoint: str
    cache_dir: str | None = None
    parent_pid: int | None = None
    log_level: str = "info"
    config: dict[str, str] = field(default_factory=dict)
    # FunctionOptions.to_dict(), including the WASI grants (allow_dirs, allow_env).
    options: dict[str, Any] = field(default_factory=dict)
    state_path: str | None = None  # the function's SQLite state database
    state_url: str | None = None  # PostgreSQL state store shared by hosts (wins over state_path)
    # The function's attempt ledger on this host (fsworker/attempts.py), shared by its replicas.
    attempts_path: str | None = None
    member: str | None = None  # cluster mode: the member running it, on every log line
    # How many queued messages one loop turn takes at most (see DESIGN: batches).
    max_batch: int = 1000
    heartbeat_interval: float = 1.0
    # How long a drain may take once fsd is gone before the worker ends itself.
    stop_timeout: float = 10.0

    def to_json(self) -> str:
        """Serialize for the worker's command line."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        """Parse and type-check a spec; raises SpecError with the offending field."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"worker spec is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise SpecError("worker spec must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SpecError(f"worker spec has unknown fields: {', '.join(unknown)}")
        try:
            spec = cls(**raw)
        except TypeError as exc:
            raise SpecError(f"worker spec is incomplete: {exc}") from None
        spec.validate()
        return spec

    def validate(self) -> None:
        """Check field types and values."""
        if not isinstance(self.function, str) or not self.function:
            raise SpecError("spec.function must be a non-empty string")
        if not isinstance(self.replica, int) or self.replica < 0:
            raise SpecError(f"spec.replica must be an integer >= 0, got {self.replica!r}")
        pattern = isinstance(self.options, dict) and self.options.get("input_pattern")
        if (
            not isinstance(self.inputs, list)
            or not (self.inputs or pattern)
            or not all(isinstance(t, str) and t for t in self.inputs)
        ):
            raise SpecError(
                f"spec.inputs must be a non-empty list of topics (or options.input_pattern "
                f"set), got {self.inputs!r}"
            )
        if self.output is not None and (not isinstance(self.output, str) or not self.output):
            raise SpecError(f"spec.output must be a topic or null, got {self.output!r}")
        if not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise SpecError(f"spec.max_batch must be an integer >= 1, got {self.max_batch!r}")

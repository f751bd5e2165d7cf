"""A registered function and the validation of what fsctl sends to create one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fscommon.function_options import FunctionOptions, Guarantee, OptionError
from fscommon.protocol import Desired
from fsd.autoscale import AutoscaleBounds, AutoscaleInvalid

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# A topic is a short name ('example-input') or a full persistent/non-persistent URL.
TOPIC_RE = re.compile(
    r"^((persistent|non-persistent)://[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/)?[A-Za-z0-9_.=:-]{1,200}$"
)
MAX_REPLICAS = 64


class SpecInvalid(ValueError):
    """A field of a function spec has a bad value; the message names field and value."""


@dataclass
class FunctionSpec:
    """What the registry stores for one function."""

    name: str
    package: str  # sha256 of the wasm in the package store
    kind: str  # fsworker.module_check.ModuleKind value
    inputs: list[str]
    output: str | None
    replicas: int = 1
    config: dict[str, str] = field(default_factory=dict)
    desired: Desired = Desired.RUNNING  # survives fsd restarts
    options: dict[str, Any] = field(default_factory=dict)  # FunctionOptions.to_dict()
    created_at: float = 0.0
    # Bumped by every change that needs the replicas rolled (update, restart): the
    # supervisor rolls each replica spawned at an older generation.
    generation: int = 0
    # Bumped by 'fsctl start': replicas in FATAL are given a fresh restart budget.
    starts: int = 0
    # AutoscaleBounds.to_dict() when fsd sets the replicas itself (fsd/autoscaler.py).
    autoscale: dict[str, Any] | None = None
    # The autoscaler's last change, for status on every member: time, old, new, reason.
    last_scaled: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.desired = Desired(self.desired)

    def to_public(self) -> dict[str, Any]:
        """The fields shown by ``fsctl list``."""
        return {
            "name": self.name,
            "package": self.package,
            "kind": self.kind,
            "inputs": list(self.inputs),
            "output": self.output,
            "replicas": self.replicas,
            "config": dict(self.config),
            "desired": str(self.desired),
            "options": dict(self.options),
            "created_at": self.created_at,
            "generation": self.generation,
            "autoscale": dict(self.autoscale) if self.autoscale else None,
            "last_scaled": dict(self.last_scaled) if self.last_scaled else None,
        }

    def bounds(self) -> AutoscaleBounds | None:
        """The autoscaling bounds, or None when the replicas are fixed."""
        if not self.autoscale:
            return None
        return AutoscaleBounds.from_dict(self.autoscale, MAX_REPLICAS)


def validate_name(value: Any) -> str:
    """A function name: letters, digits, '_', '.', '-'; no '/' or other path characters."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise SpecInvalid(
            f"invalid function name {value!r}: use 1-64 letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit"
        )
    return value


def validate_topic(value: Any, what: str) -> str:
    """A Pulsar topic name."""
    if not isinstance(value, str) or not TOPIC_RE.fullmatch(value):
        raise SpecInvalid(
            f"invalid {what} topic {value!r}: use a name like 'example-input' or "
            f"'persistent://tenant/namespace/topic'"
        )
    return value


def validate_create_args(args: dict[str, Any]) -> dict[str, Any]:
    """Check a create request's fields (except the module); return them normalised."""
    name = validate_name(args.get("name"))
    try:
        options = FunctionOptions.from_dict(args.get("options"))
    except OptionError as exc:
        raise SpecInvalid(str(exc)) from None
    inputs = args.get("inputs") or []
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or (not inputs and not options.input_pattern):
        raise SpecInvalid("at least one input topic (-i TOPIC) or an --input-pattern is required")
    if inputs and options.input_pattern:
        raise SpecInvalid("give input topics (-i) or an --input-pattern, not both")
    inputs = [validate_topic(t, "input") for t in inputs]
    output = args.get("output")
    if output is not None:
        output = validate_topic(output, "output")
        if output in inputs:
            raise SpecInvalid(f"output topic {output!r} is also an input: the function would loop")
    replicas = args.get("replicas", 1)
    if (
        not isinstance(replicas, int)
        or isinstance(replicas, bool)
        or not (1 <= replicas <= MAX_REPLICAS)
    ):
        raise SpecInvalid(f"replicas must be an integer from 1 to {MAX_REPLICAS}, got {replicas!r}")
    config = validate_config(args.get("config") or {})
    autoscale = None
    if args.get("autoscale") is not None:
        bounds = validate_autoscale(args["autoscale"])
        autoscale = bounds.to_dict()
        # An explicit -r inside the bounds is where it starts; otherwise at the minimum.
        replicas = bounds.clamp(replicas if "replicas" in args else bounds.min_replicas)
    max_replicas = autoscale["max_replicas"] if autoscale is not None else 1
    check_one_replica(name, options.guarantee, replicas, max_replicas)
    return {
        "name": name,
        "inputs": inputs,
        "output": output,
        "replicas": replicas,
        "config": config,
        "options": options.to_dict(),
        "autoscale": autoscale,
    }


def check_one_replica(name: str, guarantee: Any, replicas: int, max_replicas: int) -> None:
    """effectively-once runs one replica: its output producer's name is fixed per input
    topic, and a Failover switch between two live replicas leaves it with the one that was
    active (docs/guarantees.md); raises SpecInvalid otherwise."""
    if guarantee == Guarantee.EFFECTIVELY_ONCE and max(replicas, max_replicas) > 1:
        raise SpecInvalid(
            f"function '{name}' is effectively-once, which runs one replica (asked for "
            f"{max(replicas, max_replicas)}): a Failover switch between live replicas would "
            f"leave the output producer with the old one; use -r 1 (fsd restarts a dead replica "
            f"within about a second), or --guarantee at-least-once to scale out"
        )


def validate_autoscale(raw: Any) -> AutoscaleBounds:
    """Autoscaling bounds from a request (SpecInvalid naming the flag)."""
    try:
        return AutoscaleBounds.from_dict(raw, MAX_REPLICAS)
    except AutoscaleInvalid as exc:
        raise SpecInvalid(str(exc)) from None


def validate_config(config: Any) -> dict[str, str]:
    """A function's config: a map of strings to strings."""
    if not isinstance(config, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in config.items()
    ):
        raise SpecInvalid("config must map strings to strings (--config key=value)")
    return config

"""create's and update's autoscaling flags, and how status shows autoscaling.

Bounds are checked by fsd (fsd/autoscale.py): fsctl only sends what was given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click


def autoscale_options(update: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The flags; update also takes --no-autoscale, and keeps bounds that are not given."""
    keep = " update: the others keep their values." if update else ""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        opts = [
            click.option("--min-replicas", type=int,
                         help="Autoscale: never fewer replicas (with --max-replicas)." + keep),
            click.option("--max-replicas", type=int,
                         help="Autoscale: never more replicas (with --min-replicas)."),
            click.option("--target-lag", type=float,
                         help="Autoscale: seconds the backlog may take to drain [10]."),
            click.option("--scale-down-delay", type=float,
                         help="Autoscale: seconds of low lag before one replica is removed [60]."),
        ]  # fmt: skip
        if update:
            opts.append(
                click.option(
                    "--no-autoscale",
                    is_flag=True,
                    help="Stop autoscaling; the replica count stays as it is now.",
                )
            )
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return decorate


def autoscale_args(flags: dict[str, Any]) -> dict[str, Any]:
    """The request fields for the flags given (none: nothing)."""
    bounds = {
        key: flags.pop(key)
        for key in ("min_replicas", "max_replicas", "target_lag", "scale_down_delay")
    }
    given = {key: value for key, value in bounds.items() if value is not None}
    args: dict[str, Any] = {}
    if flags.pop("no_autoscale", False):
        args["autoscale_off"] = True
    if given:
        args["autoscale"] = given
    return args


def status_lines(name: str, autoscale: dict[str, Any] | None) -> list[str]:
    """'NAME: autoscale 1..4, target lag 10 s; last change ...; now: ...' for fsctl status."""
    if not autoscale:
        return []
    lines = [
        f"{name}: autoscale {autoscale['min_replicas']}..{autoscale['max_replicas']} replicas, "
        f"target lag {autoscale['target_lag']:g} s, scale-down delay "
        f"{autoscale['scale_down_delay']:g} s"
    ]
    scaled = autoscale.get("last_scaled")
    if scaled:
        ago = max(0.0, time.time() - scaled["time"])
        lines.append(f"{name}: last scaled {ago:.0f} s ago: {scaled['reason']}")
    decision = autoscale.get("decision")
    if decision:
        lines.append(f"{name}: autoscaler {decision['action']}: {decision['reason']}")
    elif autoscale.get("decided_by"):
        lines.append(f"{name}: decided by the cluster's leader, {autoscale['decided_by']}")
    return lines

"""The ``dlq`` control command: list, show, replay and purge a function's dead letters.

The broker work (fsd/dead_letter_box.py) blocks for up to a few seconds, so it
runs on a small thread pool and the handler returns a ``Deferred`` that the
main loop polls: fsd keeps answering other requests meanwhile. The handler
reads the function's spec on the loop (any cluster member has the registry, so
any member answers) and hands the thread only plain values.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from fscommon.function_options import FunctionOptions
from fscommon.protocol import DLQ_DEFAULT_LIMIT, DlqOp, ErrorCode
from fsd.control_server import Deferred, Handler, HandlerError
from fsd.function_spec import SpecInvalid, validate_name

if TYPE_CHECKING:
    from fsd.daemon import Daemon
    from fsd.function_spec import FunctionSpec

# A list or replay scans each topic for up to a few seconds; this bounds the wait.
DLQ_TIMEOUT = 120.0
DEFAULT_NAMESPACE = "persistent://public/default/"

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fsd-dlq")
    return _pool


def shutdown() -> None:
    """Stop the pool (fsd's exit): work in flight is abandoned, its replies already moot."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def dead_letter_topics(spec: FunctionSpec) -> list[str]:
    """Where the function's workers dead-letter (fsworker/pulsar_io.py), full names."""
    from fsworker.pulsar_io import dead_letter_topic

    custom = spec.options.get("dead_letter_topic")
    if not custom and spec.options.get("input_pattern"):
        raise HandlerError(
            ErrorCode.INVALID_ARGUMENT,
            f"function '{spec.name}' reads an --input-pattern, so its dead-letter topics are "
            f"not known in advance; give it a --dead-letter-topic to use fsctl dlq",
        )
    options = FunctionOptions(dead_letter_topic=custom or None)
    topics = [dead_letter_topic(options, spec.name, _full(t)) for t in spec.inputs]
    return list(dict.fromkeys(_full(t) for t in topics))


def _full(topic: str) -> str:
    return topic if "://" in topic else DEFAULT_NAMESPACE + topic


def make_dead_letter_handler(daemon: Daemon) -> Handler:
    """The ``dlq`` command's handler, bound to the daemon."""

    def dlq(args: dict[str, Any]) -> Deferred:
        try:
            name = validate_name(args.get("name"))
        except SpecInvalid as exc:
            raise HandlerError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
        topics = dead_letter_topics(daemon.functions.get(name))
        # fsd/request_validation.py checked op, limit, id, ids, all and dry_run.
        work = _executor().submit(run_op, daemon.pulsar_url, name, topics, args)
        return Deferred(
            poll=lambda: _outcome(work, name),
            deadline=time.monotonic() + DLQ_TIMEOUT,
            on_timeout=lambda: _timed_out(name),
        )

    return dlq


def run_op(url: str, name: str, topics: list[str], args: dict[str, Any]) -> dict[str, Any]:
    """Do one dlq operation against the broker (blocking: runs on the pool)."""
    from fsd.dead_letter_box import DeadLetterBox, describe

    op = DlqOp(args["op"])
    with DeadLetterBox(url, topics) as box:
        if op is DlqOp.LIST:
            held, more = box.scan(args.get("limit") or DLQ_DEFAULT_LIMIT)
            messages = [describe(h.msg, h.topic) for h in held]
            return {"function": name, "topics": topics, "messages": messages, "more": more}
        if op is DlqOp.SHOW:
            (item,) = box.find([args["id"]])
            shown = describe(item.msg, item.topic)
            shown.update(data=item.msg.data(), properties=dict(item.msg.properties()))
            return {"function": name, "message": shown}
        if op is DlqOp.REPLAY:
            chosen = box.scan()[0] if args.get("all") else box.find(list(args["ids"]))
            if args.get("dry_run"):
                return {
                    "function": name,
                    "dry_run": True,
                    "replayed": [
                        {**describe(h.msg, h.topic), "replayed_to": _target(h.msg)} for h in chosen
                    ],
                }
            return {"function": name, "dry_run": False, "replayed": box.replay(chosen)}
        purged, more = box.purge()
        return {"function": name, "purged": purged, "more": more}


def _target(msg: Any) -> str | None:
    return msg.properties().get("fs-original-topic")


def _outcome(work: Future[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The reply once the pool is done; its errors as error replies."""
    from fsd.dead_letter_box import DeadLetterError, UnknownDeadLetters

    if not work.done():
        return None
    try:
        return work.result()
    except UnknownDeadLetters as exc:
        raise HandlerError(
            ErrorCode.NOT_FOUND,
            f"unknown dead-letter id(s) for function '{name}': {', '.join(exc.ids[:20])}; "
            f"'fsctl dlq list -n {name}' shows the ids",
        ) from None
    except DeadLetterError as exc:
        raise HandlerError(ErrorCode.UNAVAILABLE, str(exc)) from None


def _timed_out(name: str) -> dict[str, Any]:
    raise HandlerError(
        ErrorCode.UNAVAILABLE,
        f"dead letters of '{name}': the broker did not answer within {DLQ_TIMEOUT:.0f}s; "
        f"check that Pulsar is up (fsctl info)",
    )

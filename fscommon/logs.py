"""structlog setup: readable on a terminal, JSON lines otherwise (systemd, log files).

Every line is one event: ``timestamp``, ``level``, ``event`` (the message) and
its fields. A worker's lines all carry ``function`` and ``replica``; guest log
lines (the host API's ``fs.log``) add ``source: "guest"``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog


def stderr_is_journal() -> bool:
    """True when stderr is systemd's journal stream (systemd sets JOURNAL_STREAM=dev:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    dev, sep, inode = stream.partition(":")
    if not sep:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return f"{st.st_dev}:{st.st_ino}" == f"{dev}:{inode}"


def wants_json() -> bool:
    """JSON lines under systemd and whenever stderr is not a terminal (files, pipes)."""
    return stderr_is_journal() or not sys.stderr.isatty()


def configure(level: str = "info", json: bool | None = None, **bind: object) -> None:
    """Configure structlog (and stdlib logging) for this process.

    ``bind`` adds fields to every line of the process, from every thread
    (a worker binds function and replica); ``json`` None picks by
    ``wants_json()``.
    """
    if json is None:
        json = wants_json()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    fixed = dict(bind)

    def add_fixed(_logger: object, _name: str, event: MutableMapping[str, Any]) -> Any:
        # Process-wide, not contextvars: threads (watchdogs, client callbacks) get them too.
        for key, value in fixed.items():
            event.setdefault(key, value)
        return event

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_fixed,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    # Libraries that use stdlib logging come out in the same format, same fields.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric_level, logging.WARNING))


def silent_pulsar_logger() -> object:
    """A logger for short-lived Pulsar clients whose failures we report ourselves.

    The C++ client otherwise prints an ERROR line for every failed lookup while
    a broker is still starting. It is the client's native file logger aimed at
    /dev/null, not a Python logger: a Python logger is called back from the
    client's threads and aborts the process ("terminate called without an
    active exception") when they log during interpreter shutdown.
    """
    import pulsar

    return pulsar.FileLogger(pulsar.LoggerLevel.Error, os.devnull)

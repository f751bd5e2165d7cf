"""structlog setup: readable on a terminal, JSON lines otherwise (systemd, log files)."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(level: str = "info", json: bool | None = None, **bind: object) -> None:
    """Configure structlog for this process; ``bind`` adds fields to every line."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    if bind:
        structlog.contextvars.bind_contextvars(**bind)


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

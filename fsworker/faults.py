"""Fault injection for supervision tests: FSWORKER_FAULT=<function>:<fault>.

Only the named function's workers are affected, so one fsd can run healthy
and faulty functions side by side. Faults:

* ``exit-at-start``: exit with CRASH before loading the module (a worker that
  dies at start, like one whose dependencies are broken).
* ``never-ready``: load and subscribe but never report ready (a stuck start).
"""

from __future__ import annotations

import os


def fault_for(function: str) -> str | None:
    """The fault injected into this function's workers, if any."""
    raw = os.environ.get("FSWORKER_FAULT", "")
    for item in raw.split(","):
        name, sep, fault = item.partition(":")
        if sep and name == function:
            return fault
    return None

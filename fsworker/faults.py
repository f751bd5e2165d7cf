"""Fault injection for supervision tests: FSWORKER_FAULT=<function>:<fault>.

Only the named function's workers are affected, so one fsd can run healthy
and faulty functions side by side. Faults:

* ``exit-at-start``: exit with CRASH before loading the module (a worker that
  dies at start, like one whose dependencies are broken).
* ``never-ready``: load and subscribe but never report ready (a stuck start).
* ``crash-after-publish[:MARKER]``: exit after the first batch's outputs are confirmed by
  the broker but before its inputs are acknowledged (the window that makes
  at-least-once duplicate, and that effectively-once must cover). With a
  MARKER path the fault fires once: only while that file does not exist yet.
"""

from __future__ import annotations

import os


def fault_for(function: str) -> str | None:
    """The fault injected into this function's workers, if any."""
    raw = os.environ.get("FSWORKER_FAULT", "")
    for item in raw.split(","):
        name, sep, fault = item.partition(":")
        if sep and name == function:
            fault, _, marker = fault.partition(":")
            if marker:
                if os.path.exists(marker):
                    return None
                open(marker, "w").close()
            return fault
    return None

"""The cost of the attempt ledger (fsworker/attempts.py) per batch, against the guest call.

In-process, no broker: for batches of 1, 10, 100 and 1000 messages, what the
processing loop adds per batch with a ledger (serializing the message ids,
``known()`` — the check for dead workers and new suspects — and the ``begin()``
write before the guest call), for at-least-once and for at-most-once (which
keeps 5 s of rows), next to the baseline measured in the same run: the guest
call of examples/basic (C, ``process_batch``) on the same batch. Two ledgers
share the file, as two replicas on one host do. Prints figures; asserts nothing.

    python perf/bench_ledger.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulsar

from fsworker import module_cache
from fsworker.attempts import AttemptLedger
from fsworker.engine import new_engine
from fsworker.guest import open_guest
from fsworker.module_check import classify
from perf.harness import best_of

REPO = Path(__file__).resolve().parent.parent
BASIC = REPO / "examples" / "basic" / "c" / "basic.wasm"
SIZES = (1, 10, 100, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fs-bench-ledger-"))
    engine = new_engine()
    module = module_cache.load(engine, BASIC, tmp / "cache")
    guest = open_guest(engine, module, classify(module), tmp / "scratch")
    results = []
    for size in SIZES:
        payloads = [b'{"name":"m-%d","money":%d}' % (i, i) for i in range(size)]
        row: dict[str, float | int] = {"batch": size}
        row["guest_call_us"] = best_of(lambda p=payloads: guest.call_batch(p)) * 1e6
        for mode, keep in (("at_least_once", False), ("at_most_once", True)):
            path = tmp / f"{mode}-{size}.sqlite3"
            ledger = AttemptLedger(path, 0, keep_taken=keep)
            AttemptLedger(path, 1, token="1:a-sibling-that-never-writes")  # a second replica

            ids = [pulsar.MessageId(0, 7, i, -1) for i in range(size)]

            def one_batch(ledger: AttemptLedger = ledger, ids: list = ids) -> None:
                mids = [m.serialize() for m in ids]
                known = ledger.known()
                ledger.begin([(mid, 1) for mid in mids if mid not in known])

            row[f"{mode}_us"] = best_of(one_batch, repeat=50) * 1e6
        results.append(row)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("per batch, in-process, best of 15 (guest) / 50 (ledger) runs, microseconds")
    print(f"{'batch':>6} {'guest call':>11} {'ledger ALO':>11} {'ratio':>6} "
          f"{'ledger AMO':>11} {'ratio':>6} {'ALO per msg':>12}")  # fmt: skip
    for r in results:
        g, a, m = r["guest_call_us"], r["at_least_once_us"], r["at_most_once_us"]
        print(f"{r['batch']:>6} {g:>11.1f} {a:>11.1f} {a / g:>6.2f} {m:>11.1f} {m / g:>6.2f} "
              f"{a / r['batch']:>12.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

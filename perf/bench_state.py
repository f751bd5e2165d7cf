"""The cost of state on the hot path: a state get + put per message, against no state.

Runs the guest in-process (no broker): the same process_batch call of 100
messages, once where each message reads and writes its own committed key
(fs.state_get + fs.state_put) and once where it touches no state — the
baseline measured in the same run. Then the SQLite commit the loop makes per
batch before acknowledging it. Prints figures; asserts nothing.

    python perf/bench_state.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fsworker import module_cache
from fsworker.engine import new_engine
from fsworker.guest import open_guest
from fsworker.host_context import HostContext
from fsworker.module_check import classify
from fsworker.state_store import SqliteStateStore
from perf.harness import best_of
from tests import wasm_fixtures as fx

BATCH = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fs-bench-state-"))
    engine = new_engine()
    module = module_cache.load(engine, fx.write(tmp, "cost", fx.HOST_COST), tmp / "cache")
    store = SqliteStateStore(tmp / "state.sqlite3")
    host = HostContext({}, store)
    guest = open_guest(engine, module, classify(module), tmp / "scratch", host=host)
    assert host.transaction is not None
    keys = [b"+key-%05d" % i for i in range(BATCH)]  # '+': read and write this key
    plain = [b"=" + key[1:] for key in keys]  # '=': no state at all
    for key in keys:
        host.transaction.put(key, b"12345678")
    host.transaction.commit()

    def with_state() -> None:
        guest.call_batch(keys)
        host.transaction.rollback()

    def without_state() -> None:
        guest.call_batch(plain)

    def with_commit() -> None:
        guest.call_batch(keys)
        host.transaction.commit()

    base = best_of(without_state) / BATCH
    stateful = best_of(with_state) / BATCH
    committed = best_of(with_commit) / BATCH
    result = {
        "batch": BATCH,
        "baseline_us_per_message": base * 1e6,
        "state_get_put_us_per_message": stateful * 1e6,
        "state_cost_us_per_message": (stateful - base) * 1e6,
        "with_commit_us_per_message": committed * 1e6,
        "commit_ms_per_batch": (committed - stateful) * BATCH * 1e3,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"process_batch of {BATCH} messages, in-process, best of 15 runs")
    print(f"  baseline (no state)              {result['baseline_us_per_message']:7.2f} us/msg")
    print(f"  state_get + state_put per msg    {result['state_get_put_us_per_message']:7.2f} us/msg"
          f"  (+{result['state_cost_us_per_message']:.2f} us over the baseline)")  # fmt: skip
    print(f"  ... plus the commit before ack   {result['with_commit_us_per_message']:7.2f} us/msg"
          f"  ({result['commit_ms_per_batch']:.2f} ms per batch of {BATCH})")  # fmt: skip


if __name__ == "__main__":
    main()

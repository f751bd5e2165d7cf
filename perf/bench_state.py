"""The cost of state on the hot path: a state get + put per message, against no state,
for the SQLite store and the PostgreSQL store in the same run.

Runs the guest in-process (no broker): the same process_batch call of 100
messages, once where each message reads and writes its own committed key
(fs.state_get + fs.state_put) and once where it touches no state — the
baseline measured in the same run. Then the commit the loop makes per batch
before acknowledging it, the exactly-once marks on top of that commit
(fsworker/done_marks.py: one lookup per batch, a key per message), and a batch
with a single state_add (the fixed cost of
a batch's transaction: lock, write, commit). PostgreSQL is measured when a URL
is given (--postgres-url, else FS_TEST_POSTGRES_URL), else on a server started
for the run from Debian's package (tests/postgres.py). Prints figures; asserts
nothing.

    python perf/bench_state.py [--json] [--postgres-url URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fsworker import module_cache
from fsworker.done_marks import DoneMarks
from fsworker.engine import new_engine
from fsworker.guest import open_guest
from fsworker.host_context import HostContext
from fsworker.module_check import classify
from fsworker.state_store import SqliteStateStore, StateStore, StateTransaction
from perf.harness import best_of
from tests import wasm_fixtures as fx

BATCH = 100


def measure(store: StateStore, tmp: Path) -> dict[str, float]:
    """Per-message and per-batch costs of state on one store."""
    tmp.mkdir(parents=True, exist_ok=True)
    engine = new_engine()
    module = module_cache.load(engine, fx.write(tmp, "cost", fx.HOST_COST), tmp / "cache")
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

    marks = DoneMarks(host.transaction)
    mids = [b"mid-%05d" % i for i in range(BATCH)]

    def with_commit_and_marks() -> None:
        # What a batch that writes state costs with exactly-once marks: the lookup of
        # its ids before the guest call, and a mark per message in the commit.
        marks.already_done(mids)
        guest.call_batch(keys)
        marks.mark(mids)
        host.transaction.commit()

    one = StateTransaction(store)

    def one_add() -> None:
        for _ in range(20):
            one.add(b"counter", 1)
            one.commit()

    base = best_of(without_state) / BATCH
    stateful = best_of(with_state) / BATCH
    committed = best_of(with_commit) / BATCH
    marked = best_of(with_commit_and_marks) / BATCH
    single = best_of(one_add, repeat=5) / 20
    return {
        "baseline_us_per_message": base * 1e6,
        "state_get_put_us_per_message": stateful * 1e6,
        "state_cost_us_per_message": (stateful - base) * 1e6,
        "with_commit_us_per_message": committed * 1e6,
        "commit_ms_per_batch": (committed - stateful) * BATCH * 1e3,
        "marks_us_per_message": (marked - committed) * 1e6,
        "one_add_batch_ms": single * 1e3,
    }


def _postgres_url(args: argparse.Namespace, tmp: Path) -> tuple[str | None, Any]:
    """(url, server to stop or None)."""
    if args.no_postgres:
        return None, None
    url = args.postgres_url or os.environ.get("FS_TEST_POSTGRES_URL")
    if url:
        return url, None
    from tests.postgres import LocalPostgres

    server = LocalPostgres(tmp / "pg")
    return server.start(), server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--postgres-url", help="a PostgreSQL to measure (its fs_state table)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fs-bench-state-", dir="/tmp"))
    results: dict[str, Any] = {"batch": BATCH}
    server = None
    try:
        sqlite = SqliteStateStore(tmp / "state.sqlite3")
        results["sqlite"] = measure(sqlite, tmp / "sqlite")
        sqlite.close()
        url, server = _postgres_url(args, tmp)
        if url:
            from fsworker.state_postgres import PostgresStateStore

            function = f"bench-{uuid.uuid4().hex[:8]}"
            postgres = PostgresStateStore(url, function)
            try:
                results["postgresql"] = measure(postgres, tmp / "postgresql")
            finally:
                postgres.purge()
                postgres.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"process_batch of {BATCH} messages, in-process, best of 15 runs")
    for backend in ("sqlite", "postgresql"):
        if backend not in results:
            continue
        r = results[backend]
        print(f"{backend}:")
        print(f"  baseline (no state)              {r['baseline_us_per_message']:7.2f} us/msg")
        print(f"  state_get + state_put per msg    {r['state_get_put_us_per_message']:7.2f} us/msg"
              f"  (+{r['state_cost_us_per_message']:.2f} us over the baseline)")  # fmt: skip
        print(f"  ... plus the commit before ack   {r['with_commit_us_per_message']:7.2f} us/msg"
              f"  ({r['commit_ms_per_batch']:.2f} ms per batch of {BATCH})")  # fmt: skip
        print(f"  ... plus exactly-once marks      {r['marks_us_per_message']:+7.2f} us/msg"
              "  (id lookup per batch, a mark per message)")  # fmt: skip
        print(f"  a batch with one state_add       {r['one_add_batch_ms']:7.2f} ms"
              "  (lock, write, commit)")  # fmt: skip


if __name__ == "__main__":
    main()

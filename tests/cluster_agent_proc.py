"""Run one ClusterAgent in this process and print its view as JSON lines (for tests).

    python -m tests.cluster_agent_proc --pulsar-url URL --members-topic T1 \
        --assignments-topic T2 --member-id m1 --functions '[["f", 3, true]]'

Prints a line each time the view changes (leader, members, assignment, mine).
Reads replacement function lists as JSON lines on stdin (the registry
changing). SIGTERM stops the agent cleanly (tombstone) and exits 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

import pulsar

from fscommon import logs
from fscommon.logs import silent_pulsar_logger
from fsd.cluster.agent import ClusterAgent
from fsd.cluster.scheduler import ClusterFunction


def parse_functions(text: str) -> list[ClusterFunction]:
    """[[name, replicas, running], ...] -> ClusterFunction list."""
    return [ClusterFunction(str(n), int(r), bool(run)) for n, r, run in json.loads(text)]


def summary(view: Any) -> dict[str, Any]:
    """The parts of a view a test looks at (no CPU figures, which change every tick)."""
    public = view.to_public()
    return {
        "member_id": public["member_id"],
        "leader_id": public["leader_id"],
        "is_leader": public["is_leader"],
        "epoch": public["epoch"],
        "live": sorted(public["members"]),
        "assignment": public["assignment"],
        "mine": public["mine"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pulsar-url", required=True)
    parser.add_argument("--members-topic", required=True)
    parser.add_argument("--assignments-topic", required=True)
    parser.add_argument("--member-id", required=True)
    parser.add_argument("--functions", default="[]")
    parser.add_argument("--member-timeout", type=float, default=3.0)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    args = parser.parse_args()
    logs.configure(json=True, member=args.member_id)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    functions = parse_functions(args.functions)
    lock = threading.Lock()

    def read_stdin() -> None:
        nonlocal functions
        for line in sys.stdin:
            if line.strip():
                with lock:
                    functions = parse_functions(line)

    threading.Thread(target=read_stdin, daemon=True).start()
    client = pulsar.Client(args.pulsar_url, logger=silent_pulsar_logger())
    agent = ClusterAgent(
        client,
        args.members_topic,
        args.assignments_topic,
        args.member_id,
        f"ipc:///tmp/{args.member_id}.sock",
        member_timeout=args.member_timeout,
        heartbeat_interval=args.heartbeat,
    )
    agent.start()
    last: dict[str, Any] | None = None
    while not stop.is_set():
        view = agent.snapshot()
        status = [
            {"function": name, "replica": index, "state": "RUNNING"}
            for name, indices in sorted(view.mine.items())
            for index in sorted(indices)
        ]
        with lock:
            agent.update(functions, status)
        current = summary(view)
        if current != last:
            print(json.dumps({"t": time.monotonic(), **current}), flush=True)
            last = current
        stop.wait(0.05)
    agent.stop()
    print(json.dumps({"t": time.monotonic(), "stopped": True}), flush=True)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

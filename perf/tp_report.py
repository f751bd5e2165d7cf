"""The data-path benchmark's text report (perf/bench_throughput.py)."""

from __future__ import annotations

from typing import Any

LATENCY_RATE = 1000  # msg/s
LATENCY_WARMUP_S = 2.0
RAW = "raw pass-through"
# The hand-written loop doing examples/basic's job in Python (perf/tp_raw.py, job "basic").
HAND = "hand-written loop, basic in Python"


def _num(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def _med(results: dict[str, dict[str, Any]], key: str) -> float | None:
    return results.get(key, {}).get("median")


def _range(st: dict[str, Any], fmt: str = "{:,.0f}") -> str:
    if not st or st.get("median") is None:
        return "-"
    if st["n"] == 1:
        return _num(st["median"], fmt)
    return f"{_num(st['median'], fmt)} ({_num(st['min'], fmt)}-{_num(st['max'], fmt)})"


def print_report(doc: dict[str, Any]) -> None:
    m = doc["machine"]
    print(
        f"Function Stream data-path benchmark: N = {doc['messages']:,} messages per drain, "
        f"{doc['runs']} run(s) per path (median, min-max)"
    )
    print(
        f"machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, Pulsar {m['pulsar']} "
        f"standalone, pulsar-client {m['pulsar_client']}, wasmtime {m['wasmtime']}"
    )
    print(
        f"load average: {m['loadavg_start']} at start, {m.get('loadavg_end', '?')} at end; "
        f"CPU busy with the broker and fsd idle: {m['busy_before_pct']:.0f} % before, "
        f"{m['busy_after_pct']:.0f} % after"
    )
    if max(m["busy_before_pct"], m["busy_after_pct"]) > 10:
        print("WARNING: something else keeps this machine busy; the figures below suffer from it")
    if doc["broker_conf"]:
        print(f"broker settings added to fsd's embedded standalone.conf: {doc['broker_conf']}")
    lim = doc.get("broker_limit")
    print()
    if lim:
        print("Broker limit (pulsar-perf 4.0.8, Java client, 100 B messages, unthrottled):")
        print(
            f"  produce: {_num(lim['produce: broker msg/s (10-90 %)'])} msg/s "
            f"({lim['produce: messages']:,} messages; pulsar-perf's aggregated line: "
            f"{_num(lim['produce: pulsar-perf aggregated msg/s'])} msg/s)"
        )
        print(
            f"  consume that backlog: {_num(lim['consume: broker msg/s (10-90 %)'])} msg/s "
            f"(pulsar-perf's aggregated line: "
            f"{_num(lim['consume: pulsar-perf aggregated msg/s'])} msg/s)"
        )
        print(
            "  (the broker's own in/out counters between 10 % and 90 % of the messages; "
            "pulsar-perf's rates\n   also count its JVM's client setup)"
        )
        print()
    tp = doc["throughput"]
    if tp:
        _print_throughput(doc)
    if doc["latency"]:
        _print_latency(doc)


def _print_throughput(doc: dict[str, Any]) -> None:
    tp = doc["throughput"]
    print(
        "Throughput: drain N pre-filled messages; counted on the output topic "
        "(10-90 % of N: steady state)"
    )
    header = (
        f"  {'path':<44} {'msg/s 10-90 %':>26} {'% ceiling':>9} {'start->N msg/s':>15} "
        f"{'1st out s':>9} {'CPU us/msg':>10} {'broker':>7} {'total':>6} {'rest':>5} "
        f"{'busy %':>6} {'msg/entry':>9}"
    )
    print(header)
    for label, res in tp.items():
        ceiling = doc["ceilings"].get(label)
        steady = _med(res, "msg/s (10-90 %)")
        pct = "" if ceiling is None or steady is None else f"{100 * steady / ceiling:.0f} %"
        if label.startswith(RAW):
            pct = "ceiling"
        print(
            f"  {label:<44} {_range(res.get('msg/s (10-90 %)', {})):>26} {pct:>9} "
            f"{_num(_med(res, 'msg/s (start to N)')):>15} "
            f"{_num(_med(res, 'start to first output (s)'), '{:.2f}'):>9} "
            f"{_num(_med(res, 'CPU us/msg: measured processes'), '{:.1f}'):>10} "
            f"{_num(_med(res, 'CPU us/msg: broker'), '{:.1f}'):>7} "
            f"{_num(_med(res, 'CPU us/msg: total'), '{:.1f}'):>6} "
            f"{_num(_med(res, 'CPU us/msg: everything else'), '{:.1f}'):>5} "
            f"{_num(_med(res, 'machine CPU busy (%)'), '{:.0f}'):>6} "
            f"{_num(_med(res, 'output messages per entry'), '{:.0f}'):>9}"
        )
    for label, res in tp.items():
        if label.startswith(RAW):
            print(
                f"  ({label}: mean batch {_num(_med(res, 'batch size (mean)'))} messages, "
                f"{_num(_med(res, 'time in flush (%)'))} % of its time waiting in flush(); its "
                f"own first-receive-to-last-ack rate "
                f"{_num(_med(res, 'msg/s (own: first receive to last ack)'))} msg/s; pre-fill "
                f"{_num(_med(res, 'pre-fill msg/s'))} msg/s)"
            )
    _print_same_job(doc)
    print(
        "  (CPU us/msg: the measured process(es), i.e. the pass-through process or all replicas; "
        "broker: the Pulsar JVM;\n   total: the two together; rest: everything else on the "
        "machine, this script and fsd included;\n   busy %: all CPUs; all over the 10-90 % "
        "window; msg/entry: output messages per entry the broker wrote (its producer batches))"
    )
    print()


def _print_same_job(doc: dict[str, Any]) -> None:
    """FS basic against the hand-written loop that does the same job (issue 15's comparison)."""
    tp = doc["throughput"]
    hand = _med(tp.get(f"{HAND}, JSON", {}), "msg/s (10-90 %)")
    if hand is None:
        return
    for label, res in tp.items():
        steady = _med(res, "msg/s (10-90 %)")
        if label.startswith("FS basic JSON") and steady is not None:
            print(
                f"  ({label}: {100 * steady / hand:.0f} % of the {HAND} "
                f"(parse, money + 1, serialize, same client settings))"
            )


def _print_latency(doc: dict[str, Any]) -> None:
    lat = doc["latency"]
    print(
        f"Latency at {LATENCY_RATE:,} msg/s for {doc['latency_seconds']:.0f} s "
        f"(after {LATENCY_WARMUP_S:.0f} s warm-up), JSON records, send -> output received:"
    )
    print(
        f"  {'path':<48} {'ops/s':>7} {'failed ops/s':>12} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7}  p99 of each round"
    )
    for label, r in lat.items():
        each = " ".join(f"{v:.2f}" for v in r.get("p99 ms rounds", []))
        print(
            f"  {label:<48} {_num(r['ops/s'], '{:.1f}'):>7} {_num(r['failed ops/s'], '{:.1f}'):>12}"
            f" {_num(r['p50 ms'], '{:.2f}'):>7} {_num(r['p95 ms'], '{:.2f}'):>7} "
            f"{_num(r['p99 ms'], '{:.2f}'):>7} {_num(r['max ms'], '{:.2f}'):>7}  {each}"
        )
    if any(len(r.get("p99 ms rounds", [])) > 1 for r in lat.values()):
        print("  (medians over the rounds; the paths alternate within each round)")

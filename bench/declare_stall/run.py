#!/usr/bin/env python3
"""Publish latency while another connection declares durable queues, for two warren binaries.

Each run starts a fresh broker on an empty data dir, runs warren-perf against it (one producer,
one consumer, publisher confirms, a fixed rate, through `amq.direct` so every publish routes
through the vhost's queue map), after --lead seconds runs declare.py (1,000 durable
queue.declares, sequential, one connection; --declarers N splits them over N connections
declaring in parallel), and stops warren-perf (SIGINT: it prints its
summary) as soon as the declares are done, so the latencies are those of the declaring window
(plus the lead). The binaries alternate, and so does which one goes first, run after run.
Prints every run and a table of medians; raw JSON goes to --out.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def start_broker(binary, data_dir):
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--management-listen", "127.0.0.1:0",
         "--prometheus-listen", "127.0.0.1:0",
         "--data-dir", data_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("warren: listening on "):
            # Keep draining stdout so the broker never blocks writing to it.
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, line.split()[-1]
    raise RuntimeError(f"{binary} exited before listening")


def one_run(binary, args, scenario, out_dir, tag):
    data_dir = tempfile.mkdtemp(prefix="declare-stall-")
    broker, addr = start_broker(binary, data_dir)
    try:
        host, port = addr.rsplit(":", 1)
        perf_cmd = [
            args.perf, "--uri", f"amqp://guest:guest@{addr}/%2f",
            "-x", "1", "-y", "1", "-e", "amq.direct", "-u", "stall-target",
            "-r", str(args.rate), "-c", "100", "-z", "120", "--json", "--quiet",
        ]
        if scenario == "persistent":
            perf_cmd += ["--durable", "-f"]
        perf = subprocess.Popen(perf_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        time.sleep(args.lead)
        start = time.perf_counter()
        declarers = [
            subprocess.Popen(
                [sys.executable, os.path.join(HERE, "declare.py"), "--host", host, "--port",
                 port, "--count", str(args.count // args.declarers), "--prefix", f"d{i}-"],
                stdout=subprocess.PIPE, text=True,
            )
            for i in range(args.declarers)
        ]
        declared = [json.loads(d.communicate()[0]) for d in declarers]
        declare_seconds = time.perf_counter() - start
        perf.send_signal(signal.SIGINT)
        perf_out, _ = perf.communicate(timeout=30)
        result = {
            "perf": json.loads(perf_out),
            "declare": {"seconds": declare_seconds, "declarers": declared},
        }
        with open(os.path.join(out_dir, f"{tag}.json"), "w") as f:
            json.dump(result, f, indent=1)
        return result
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


def row(r):
    p, c = r["perf"], r["perf"]["confirm_latency"]
    return {
        "confirm_p50": c["p50_ms"],
        "confirm_p95": c["p95_ms"],
        "confirm_p99": c["p99_ms"],
        "confirm_max": c["max_ms"],
        "e2e_p99": p["latency"]["p99_ms"],
        "msg_s": p["confirm_rate"],
        "declare_s": r["declare"]["seconds"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="warren binary before the change")
    ap.add_argument("--after", required=True, help="warren binary after the change")
    ap.add_argument("--perf", default="target/release/warren-perf")
    ap.add_argument("--runs", type=int, default=5, help="runs per binary and scenario")
    ap.add_argument("--scenarios", default="transient,persistent")
    ap.add_argument("--rate", type=int, default=4000, help="publishes per second")
    ap.add_argument("--declarers", type=int, default=1,
                    help="declaring connections in parallel, sharing --count between them")
    ap.add_argument("--lead", type=float, default=0.1,
                    help="seconds between starting warren-perf and starting to declare")
    ap.add_argument("--count", type=int, default=1000, help="durable queues declared")
    ap.add_argument("--out", default=None, help="where raw JSON goes (default: a new temp dir)")
    args = ap.parse_args()
    out_dir = args.out or tempfile.mkdtemp(prefix="declare-stall-out-")
    os.makedirs(out_dir, exist_ok=True)
    binaries = {"before": args.before, "after": args.after}
    rows = {}
    for run in range(args.runs):
        for scenario in args.scenarios.split(","):
            order = ["before", "after"] if run % 2 == 0 else ["after", "before"]
            for which in order:
                r = row(one_run(binaries[which], args, scenario, out_dir,
                                f"{scenario}-{which}-{run}"))
                rows.setdefault((scenario, which), []).append(r)
                print(f"run {run} {scenario:10} {which:6} " +
                      " ".join(f"{k} {v:.3f}" for k, v in r.items()), flush=True)
    print(f"\nmedians of {args.runs} runs (ms unless noted); raw JSON in {out_dir}\n")
    keys = ["confirm_p50", "confirm_p95", "confirm_p99", "confirm_max", "e2e_p99", "msg_s", "declare_s"]
    print("| scenario | build | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for (scenario, which), rs in rows.items():
        meds = [statistics.median(r[k] for r in rs) for k in keys]
        print(f"| {scenario} | {which} | " + " | ".join(f"{m:.3f}" for m in meds) + " |")


if __name__ == "__main__":
    main()

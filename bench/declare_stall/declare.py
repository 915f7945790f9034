#!/usr/bin/env python3
"""Declares N durable queues one after another, as fast as one connection can (pika, blocking):
the load that stalled publishers when a declare committed its definition under the vhost's map
lock. Prints one JSON line: {"queues": N, "seconds": ..., "per_declare_ms": ...}."""

import argparse
import json
import time

import pika


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5672)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--prefix", default="declare-stall-")
    args = ap.parse_args()
    params = pika.ConnectionParameters(host=args.host, port=args.port)
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    start = time.perf_counter()
    for i in range(args.count):
        ch.queue_declare(queue=f"{args.prefix}{i}", durable=True)
    seconds = time.perf_counter() - start
    conn.close()
    print(json.dumps({
        "queues": args.count,
        "seconds": round(seconds, 4),
        "per_declare_ms": round(seconds * 1000 / args.count, 4),
    }))


if __name__ == "__main__":
    main()

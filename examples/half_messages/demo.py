"""Runs the order service's three cases against a broker (AMQP_URL, default localhost) and
prints what reached `order.events`. Exits non-zero if an event is missing or extra.

    python3 demo.py            # checks after 1 s (CHECK_AFTER_MS to change)
"""
import multiprocessing
import os
import sys
import tempfile
import time
import uuid

import order_service as svc

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
CHECK_AFTER_MS = int(os.environ.get("CHECK_AFTER_MS", "1000"))


def service_process(db_path, order_id, item, die_at):
    conn = svc.connect(URL)
    svc.create_order(conn.channel(), svc.open_db(db_path), order_id, item, CHECK_AFTER_MS, die_at)
    conn.close()


def run(db_path):
    conn = svc.connect(URL)
    ch = conn.channel()
    svc.declare(ch)
    ch.queue_purge(svc.EVENTS_QUEUE)
    ch.queue_purge(svc.CHECKS_QUEUE)
    cases = {
        "normal": (f"ok-{uuid.uuid4().hex[:8]}", None, True),
        "killed after the database commit": (f"late-{uuid.uuid4().hex[:8]}", "after-commit", True),
        "killed before the database commit": (f"gone-{uuid.uuid4().hex[:8]}", "before-commit", False),
    }
    for name, (order_id, die_at, _) in cases.items():
        p = multiprocessing.Process(target=service_process, args=(db_path, order_id, name, die_at))
        p.start()
        p.join()
        print(f"{name}: order {order_id}, service exit code {p.exitcode}")
    # The service comes back: its check consumer answers warren's checks for the two crashes.
    answers = svc.answer_checks(ch, svc.open_db(db_path), max_checks=2,
                                timeout=CHECK_AFTER_MS / 1000 * 5)
    print(f"checks answered: {answers}")
    time.sleep(0.5)
    events = []
    while True:
        method, props, body = ch.basic_get(svc.EVENTS_QUEUE, auto_ack=True)
        if method is None:
            break
        events.append(props.message_id)
    conn.close()
    expected = sorted(order_id for order_id, _, published in cases.values() if published)
    print(f"order.created events: {sorted(events)}")
    return sorted(events) == expected


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        ok = run(os.path.join(tmp, "orders.db"))
    print("exactly the committed orders were published" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)

"""An order service that publishes `order.created` exactly when its order row commits, with
warren's half messages (two-phase publish) and pika. SQLite stands in for "the database".

    1. publish the event as a *half* message (x-half: true, message_id = the order id): warren
       stores and confirms it but routes nothing yet;
    2. commit the order row to the database;
    3. publish x-half-commit with the same message_id: warren routes the event now.

If the service dies between 2 and 3, nobody commits the half message. After
`x-half-check-after` ms warren publishes a *check* (the event itself, header x-half-check) to
the service's check queue (the half message's reply_to); whichever instance of the service
consumes it looks the order up and answers commit (the row exists) or rollback (it does not).
If the service dies before 2, the check finds no row and rolls the event back.

Run `python3 demo.py` for the three cases (normal, killed between 2 and 3, killed before 2).
"""
import os
import sqlite3

import pika

EXCHANGE = "orders"
EVENTS_QUEUE = "order.events"
CHECKS_QUEUE = "order-service.checks"


def connect(url):
    return pika.BlockingConnection(pika.URLParameters(url))


def declare(ch):
    ch.exchange_declare(EXCHANGE, "topic", durable=True)
    ch.queue_declare(EVENTS_QUEUE, durable=True)
    ch.queue_bind(EVENTS_QUEUE, EXCHANGE, "order.*")
    ch.queue_declare(CHECKS_QUEUE, durable=True)


def open_db(path):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, item TEXT)")
    return db


def settle(ch, order_id, commit):
    """Tells warren the outcome of the local transaction for `order_id`."""
    key = "x-half-commit" if commit else "x-half-rollback"
    ch.basic_publish("", "", b"", pika.BasicProperties(message_id=order_id, headers={key: True}))


def create_order(ch, db, order_id, item, check_after_ms=60000, die_at=None):
    """The three steps. `die_at` ("before-commit" or "after-commit") kills the process there,
    as a crash would: no cleanup, no settle."""
    ch.confirm_delivery()
    ch.basic_publish(EXCHANGE, "order.created", item.encode(), pika.BasicProperties(
        message_id=order_id, delivery_mode=2, reply_to=CHECKS_QUEUE,
        headers={"x-half": True, "x-half-check-after": check_after_ms}))  # step 1, confirmed
    if die_at == "before-commit":
        os._exit(1)
    with db:                                                           # step 2
        db.execute("INSERT INTO orders VALUES (?, ?)", (order_id, item))
    if die_at == "after-commit":
        os._exit(1)
    settle(ch, order_id, commit=True)                                  # step 3


def answer_checks(ch, db, max_checks=None, timeout=10.0):
    """Answers warren's checks: commit if the order row exists, else roll back. Returns the
    answers given, as (order id, committed)."""
    answers = []
    for method, props, _body in ch.consume(CHECKS_QUEUE, inactivity_timeout=timeout):
        if method is None:
            break
        order_id = props.message_id
        exists = db.execute("SELECT 1 FROM orders WHERE id = ?", (order_id,)).fetchone()
        settle(ch, order_id, commit=exists is not None)
        ch.basic_ack(method.delivery_tag)
        answers.append((order_id, exists is not None))
        if max_checks is not None and len(answers) >= max_checks:
            break
    ch.cancel()
    return answers

#!/usr/bin/env python3
"""Records RabbitMQ's answers to calls.json into rabbitmq.json, for the shape comparison in
rabbitmq_shapes.rs. Run against a fresh reference broker (nothing declared yet):

    ../shared/tools/rabbitmq-local start /tmp/rec 5690     # management on 15690
    tests/broker/management/record_rabbitmq.py http://127.0.0.1:15690 5690

Each answer keeps the status code, the WWW-Authenticate header and the body (JSON, or the
text when it is not JSON)."""
import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSWORDS = {"guest": "guest", "rec-u": "rec-p"}


def call(base, amqp_port, c):
    user = c.get("user", "guest")
    password = c.get("password", PASSWORDS.get(user, ""))
    body = c.get("raw_body")
    if body is None and "body" in c:
        body = json.dumps(c["body"])
    request = urllib.request.Request(
        base + c["path"].replace("{amqp_port}", str(amqp_port)),
        data=None if body is None else body.encode(),
        method=c["method"])
    if body is not None:
        request.add_header("content-type", "application/json")
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("authorization", "Basic " + token)
    try:
        response = urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as e:
        response = e
    text = response.read().decode()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = {"not json": text}
    return {
        "status": response.status,
        "www_authenticate": response.headers.get("www-authenticate"),
        "body": parsed,
    }


def main():
    base, amqp_port = sys.argv[1], int(sys.argv[2])
    calls = json.loads((HERE / "calls.json").read_text())["calls"]
    answers = {c["name"]: call(base, amqp_port, c) for c in calls}
    out = {"recorded_from": "RabbitMQ 3.10 (Debian rabbitmq-server), management plugin",
           "amqp_port": amqp_port, "answers": answers}
    (HERE / "rabbitmq.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    for name, a in answers.items():
        print(a["status"], name)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Records RabbitMQ's answers to calls.json into rabbitmq.json, for the shape comparison in
rabbitmq_shapes.rs. Run against a fresh reference broker (nothing declared yet):

    ../shared/tools/rabbitmq-local start /tmp/rec 5690     # management on 15690
    tests/broker/management/record_rabbitmq.py http://127.0.0.1:15690 5690

Each answer keeps the status code, the WWW-Authenticate header and the body (JSON, or the
text when it is not JSON)."""
import base64
import json
import socket
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSWORDS = {"guest": "guest", "rec-u": "rec-p"}


def shortstr(s):
    b = s.encode()
    return struct.pack("B", len(b)) + b


def longstr(b):
    return struct.pack(">I", len(b)) + b


def table(items):
    """A field table of (key, kind, value): kind 't' bool, 'S' long string, 'F' table."""
    out = b""
    for key, kind, value in items:
        out += shortstr(key) + kind.encode()
        if kind == "t":
            out += struct.pack("B", 1 if value else 0)
        elif kind == "S":
            out += longstr(value.encode())
        else:
            out += table(value)
    return struct.pack(">I", len(out)) + out


def method(sock, channel, class_id, method_id, args):
    payload = struct.pack(">HH", class_id, method_id) + args
    sock.sendall(struct.pack(">BHI", 1, channel, len(payload)) + payload + b"\xce")


def read_method(sock):
    """The next method frame's (channel, class, method, arguments), skipping others."""
    while True:
        header = recv_exactly(sock, 7)
        kind, channel, size = struct.unpack(">BHI", header)
        payload = recv_exactly(sock, size + 1)[:-1]
        if kind == 1:
            class_id, method_id = struct.unpack(">HH", payload[:4])
            return channel, class_id, method_id, payload[4:]


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def expect(sock, class_id, method_id):
    got = read_method(sock)
    if got[1:3] != (class_id, method_id):
        raise RuntimeError(f"expected {class_id}.{method_id}, got {got[1:3]}")
    return got[3]


def open_amqp(port, queue, publish):
    """A connection as the test suite's raw client makes it (the same client properties),
    channel 1 with basic.qos 10, a consumer (tag rec-ctag) on `queue`, and `publish`
    messages published to `queue` through the default exchange on that channel."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"AMQP\x00\x00\x09\x01")
    expect(sock, 10, 10)
    caps = [("authentication_failure_close", "t", True), ("basic.nack", "t", True),
            ("connection.blocked", "t", True), ("consumer_cancel_notify", "t", True),
            ("publisher_confirms", "t", True)]
    props = table([("product", "S", "warren-tests"), ("capabilities", "F", caps)])
    method(sock, 0, 10, 11, props + shortstr("PLAIN") + longstr(b"\0guest\0guest")
           + shortstr("en_US"))
    tune = expect(sock, 10, 30)
    channel_max, frame_max, _ = struct.unpack(">HIH", tune[:8])
    method(sock, 0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0))
    method(sock, 0, 10, 40, shortstr("/") + shortstr("") + b"\x00")
    expect(sock, 10, 41)
    method(sock, 1, 20, 10, shortstr(""))
    expect(sock, 20, 11)
    method(sock, 1, 60, 10, struct.pack(">IHB", 0, 10, 0))
    expect(sock, 60, 11)
    method(sock, 1, 60, 20, struct.pack(">H", 0) + shortstr(queue) + shortstr("rec-ctag")
           + b"\x00" + table([]))
    expect(sock, 60, 21)
    body = b"rec"
    for _ in range(publish):
        method(sock, 1, 60, 40, struct.pack(">H", 0) + shortstr("") + shortstr(queue) + b"\x00")
        header = struct.pack(">HHQH", 60, 0, len(body), 0)
        sock.sendall(struct.pack(">BHI", 2, 1, len(header)) + header + b"\xce")
        sock.sendall(struct.pack(">BHI", 3, 1, len(body)) + body + b"\xce")
    for _ in range(publish):
        expect(sock, 60, 60)  # basic.deliver (read_method skips the content frames)
    return sock


def call(base, amqp_port, c, names):
    user = c.get("user", "guest")
    password = c.get("password", PASSWORDS.get(user, ""))
    body = c.get("raw_body")
    if body is None and "body" in c:
        body = json.dumps(c["body"])
    path = c["path"].replace("{amqp_port}", str(amqp_port))
    for key, value in names.items():
        path = path.replace("{" + key + "}", urllib.parse.quote(value, safe=""))
    request = urllib.request.Request(
        base + path,
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
    answers, names, clients = {}, {}, []
    for c in calls:
        if "amqp_consumer_on" in c:
            clients.append(open_amqp(amqp_port, c["amqp_consumer_on"], c.get("amqp_publish", 0)))
            time.sleep(6)  # the management database sees it at its next stats emission
            continue
        answers[c["name"]] = call(base, amqp_port, c, names)
        # The first connection's name, for the calls that name it.
        if c["path"] == "/api/connections" and answers[c["name"]]["body"]:
            names["connection"] = answers[c["name"]]["body"][0]["name"]
            names["channel"] = names["connection"] + " (1)"
    out = {"recorded_from": "RabbitMQ 3.10 (Debian rabbitmq-server), management plugin",
           "amqp_port": amqp_port, "answers": answers}
    (HERE / "rabbitmq.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    for name, a in answers.items():
        print(a["status"], name)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Debian's rabbitmqadmin (shipped with rabbitmq-server), unmodified, against a broker's
management API: every command an operator's script uses, one test each, checked by what the
next command shows. Also the definitions round trip: a definitions file exported from
RabbitMQ 3.10 imports into the broker under test, and one exported from warren imports too
(both files are in tests/broker/management/definitions/, written by `suite.py fixture`).

    suite.py                  run against MANAGEMENT_PORT (and AMQP_PORT); last line is
                              "summary: passed=N failed=M skipped=K"
    suite.py fixture OUT.json  make the objects the fixtures hold on a fresh broker, then
                              export them to OUT.json with rabbitmqadmin
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests/broker/management/definitions"
ADMIN = os.environ.get("RABBITMQADMIN", "rabbitmqadmin")
PORT = os.environ.get("MANAGEMENT_PORT", "15672")


def admin(*args, check=True):
    """rabbitmqadmin's stdout; raises with its output if it fails and `check`."""
    cmd = [ADMIN, "-H", "127.0.0.1", "-P", PORT, "-u", "guest", "-p", "guest", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): "
                             f"{done.stdout}{done.stderr}")
    return done.stdout


def listed(kind, *columns, vhost=None):
    """`list KIND` as JSON rows (rabbitmqadmin -f raw_json)."""
    args = ["-f", "raw_json"] + (["-V", vhost] if vhost else []) + ["list", kind, *columns]
    return json.loads(admin(*args) or "[]")


def eventually(check, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def names(rows):
    return sorted(r["name"] for r in rows)


# ----------------------------------------------------------------- tests ----

def test_declare_list_and_delete_a_queue():
    assert "queue declared" in admin("declare", "queue", "name=ra-q1", "durable=true")
    rows = [r for r in listed("queues") if r["name"] == "ra-q1"]
    assert rows and rows[0]["durable"] is True, rows
    assert "queue deleted" in admin("delete", "queue", "name=ra-q1")
    assert "ra-q1" not in names(listed("queues"))


def test_declare_an_exchange_and_a_binding_then_delete_them():
    admin("declare", "exchange", "name=ra-x", "type=topic", "durable=true")
    admin("declare", "queue", "name=ra-q2", "durable=false")
    admin("declare", "binding", "source=ra-x", "destination=ra-q2", "routing_key=a.*")
    exchange = [r for r in listed("exchanges") if r["name"] == "ra-x"]
    assert exchange and exchange[0]["type"] == "topic", exchange
    bindings = [b for b in listed("bindings") if b["source"] == "ra-x"]
    assert [(b["destination"], b["routing_key"]) for b in bindings] == [("ra-q2", "a.*")], bindings
    admin("delete", "binding", "source=ra-x", "destination_type=queue", "destination=ra-q2",
          f"properties_key={bindings[0]['properties_key']}")
    assert not [b for b in listed("bindings") if b["source"] == "ra-x"]
    admin("delete", "exchange", "name=ra-x")
    admin("delete", "queue", "name=ra-q2")
    assert "ra-x" not in names(listed("exchanges"))


def test_publish_get_and_purge():
    admin("declare", "queue", "name=ra-q3", "durable=true")
    for payload in ("first", "second"):
        assert "Message published" in admin("publish", "exchange=amq.default",
                                             "routing_key=ra-q3", f"payload={payload}")
    eventually(lambda: _assert_messages("ra-q3", 2))
    got = json.loads(admin("-f", "raw_json", "get", "queue=ra-q3", "ackmode=ack_requeue_false"))
    assert [m["payload"] for m in got] == ["first"], got
    got = json.loads(admin("-f", "raw_json", "get", "queue=ra-q3", "ackmode=ack_requeue_true"))
    assert [m["payload"] for m in got] == ["second"], got
    assert "queue purged" in admin("purge", "queue", "name=ra-q3")
    eventually(lambda: _assert_messages("ra-q3", 0))
    admin("delete", "queue", "name=ra-q3")


def _assert_messages(queue, count):
    got = admin("-f", "raw_json", "get", f"queue={queue}", "ackmode=ack_requeue_true",
                f"count={count + 1}")
    assert len(json.loads(got or "[]")) == count, got


def test_vhosts_users_and_permissions():
    admin("declare", "vhost", "name=ra-v")
    admin("declare", "user", "name=ra-u", "password=ra-p", "tags=management")
    admin("declare", "permission", "vhost=ra-v", "user=ra-u", "configure=.*", "write=.*",
          "read=.*")
    assert "ra-v" in names(listed("vhosts"))
    users = [u for u in listed("users") if u["name"] == "ra-u"]
    assert users and users[0]["tags"] in (["management"], "management"), users
    perms = [p for p in listed("permissions") if p["user"] == "ra-u"]
    assert [(p["vhost"], p["configure"]) for p in perms] == [("ra-v", ".*")], perms
    admin("delete", "permission", "vhost=ra-v", "user=ra-u")
    admin("delete", "user", "name=ra-u")
    admin("delete", "vhost", "name=ra-v")
    assert "ra-v" not in names(listed("vhosts"))
    assert "ra-u" not in names(listed("users"))


def test_declare_list_and_delete_policies():
    admin("declare", "policy", "name=ra-pol", "pattern=^ra-pq$", "apply-to=queues", "priority=1",
          'definition={"max-length": 2}')
    admin("declare", "operator_policy", "name=ra-op", "pattern=^ra-pq$",
          'definition={"message-ttl": 600000}')
    rows = [p for p in listed("policies") if p["name"] == "ra-pol"]
    assert rows and rows[0]["definition"] == {"max-length": 2}, rows
    assert rows[0]["apply-to"] == "queues" and rows[0]["priority"] == 1, rows
    assert "ra-op" in names(listed("operator_policies"))
    admin("declare", "queue", "name=ra-pq")
    for i in range(4):
        admin("publish", "routing_key=ra-pq", f"payload=m{i}")
    # RabbitMQ's queue listing shows counts from its 5-second statistics.
    eventually(lambda: _assert_messages("ra-pq", 2), timeout=12)

    def shows_both_policies():
        row = [q for q in listed("queues") if q["name"] == "ra-pq"][0]
        assert (row.get("policy"), row.get("operator_policy")) == ("ra-pol", "ra-op"), row
        assert row["effective_policy_definition"] == {"max-length": 2, "message-ttl": 600000}
    eventually(shows_both_policies, timeout=12)
    assert "policy deleted" in admin("delete", "policy", "name=ra-pol")
    admin("delete", "operator_policy", "name=ra-op")
    assert "ra-pol" not in names(listed("policies"))
    admin("delete", "queue", "name=ra-pq")


def test_overview_nodes_connections_channels_consumers_list():
    overview = json.loads(admin("-f", "raw_json", "show", "overview"))
    # The amq.* exchanges and the default (RabbitMQ also has amq.rabbitmq.trace).
    assert overview[0]["object_totals"]["exchanges"] >= 6, overview
    assert len(listed("nodes")) == 1
    for kind in ("connections", "channels", "consumers"):
        assert isinstance(listed(kind), list)


def test_export_and_import_round_trip():
    admin("declare", "queue", "name=ra-q4", "durable=true", 'arguments={"x-max-length": 5}')
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "defs.json"
        assert "Exported definitions" in admin("export", str(path))
        exported = json.loads(path.read_text())
        queue = [q for q in exported["queues"] if q["name"] == "ra-q4"]
        assert queue and queue[0]["arguments"] == {"x-max-length": 5}, queue
        admin("delete", "queue", "name=ra-q4")
        assert "Uploaded definitions" in admin("import", str(path))
    assert "ra-q4" in names(listed("queues"))
    admin("delete", "queue", "name=ra-q4")


def _import_fixture(name):
    assert "Uploaded definitions" in admin("import", str(FIXTURES / name))
    defs = json.loads((FIXTURES / name).read_text())
    assert set(names(listed("vhosts"))) >= {v["name"] for v in defs["vhosts"]}
    users = {u["name"]: u for u in listed("users")}
    for user in defs["users"]:
        assert user["name"] in users, user
    for queue in defs["queues"]:
        rows = [q for q in listed("queues", vhost=queue["vhost"]) if q["name"] == queue["name"]]
        assert rows and rows[0]["durable"] == queue["durable"], (queue, rows)
        assert rows[0]["arguments"] == queue["arguments"], (queue, rows)
    for exchange in defs["exchanges"]:
        rows = [x for x in listed("exchanges", vhost=exchange["vhost"])
                if x["name"] == exchange["name"]]
        assert rows and rows[0]["type"] == exchange["type"], (exchange, rows)
    for binding in defs["bindings"]:
        rows = [b for b in listed("bindings", vhost=binding["vhost"])
                if (b["source"], b["destination"], b["routing_key"])
                == (binding["source"], binding["destination"], binding["routing_key"])]
        assert rows and rows[0]["arguments"] == binding["arguments"], (binding, rows)
    for policy in defs["policies"]:
        rows = [p for p in listed("policies", vhost=policy["vhost"]) if p["name"] == policy["name"]]
        assert rows and all(rows[0][k] == policy[k]
                            for k in ("pattern", "definition", "apply-to", "priority")), (policy, rows)
    perms = {(p["user"], p["vhost"]): p for p in listed("permissions")}
    for p in defs["permissions"]:
        got = perms.get((p["user"], p["vhost"]))
        assert got and (got["configure"], got["write"], got["read"]) == (
            p["configure"], p["write"], p["read"]), (p, got)
    # Clean up what the fixture made (its vhosts take their topology along).
    for vhost in defs["vhosts"]:
        if vhost["name"] != "/":
            admin("delete", "vhost", f"name={vhost['name']}")
    for user in defs["users"]:
        if user["name"] != "guest":
            admin("delete", "user", f"name={user['name']}")


def test_a_rabbitmq_3_10_export_imports():
    _import_fixture("rabbitmq-3.10-export.json")


def test_a_warren_export_imports():
    _import_fixture("warren-export.json")


# ---------------------------------------------------------------- fixture ---

def make_fixture(out):
    """The objects both fixtures hold, made on a fresh broker, then exported."""
    admin("declare", "vhost", "name=fx-v")
    admin("declare", "user", "name=fx-u", "password=fx-p", "tags=monitoring")
    admin("declare", "permission", "vhost=fx-v", "user=fx-u", "configure=^fx", "write=.*",
          "read=.*")
    admin("-V", "fx-v", "declare", "queue", "name=fx-q", "durable=true",
          'arguments={"x-max-length": 10, "x-queue-mode": "lazy"}')
    admin("-V", "fx-v", "declare", "queue", "name=fx-dlq", "durable=true")
    admin("-V", "fx-v", "declare", "exchange", "name=fx-x", "type=topic", "durable=true")
    admin("-V", "fx-v", "declare", "exchange", "name=fx-h", "type=headers", "durable=true",
          'arguments={"alternate-exchange": "fx-x"}')
    admin("-V", "fx-v", "declare", "binding", "source=fx-x", "destination=fx-q",
          "routing_key=a.#")
    admin("-V", "fx-v", "declare", "binding", "source=fx-h", "destination=fx-dlq",
          'arguments={"x-match": "any", "k": "v"}')
    admin("-V", "fx-v", "declare", "binding", "source=fx-x", "destination_type=exchange",
          "destination=fx-h", "routing_key=b")
    admin("-V", "fx-v", "declare", "policy", "name=fx-pol", "pattern=^fx-", "apply-to=queues",
          "priority=2", 'definition={"message-ttl": 60000, "dead-letter-exchange": "fx-x"}')
    admin("export", out)


# ------------------------------------------------------------------- main ---

def main():
    if len(sys.argv) == 3 and sys.argv[1] == "fixture":
        make_fixture(sys.argv[2])
        return 0
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, test in tests:
        try:
            test()
            passed += 1
            print(f"ok     {name}")
        except Exception:  # noqa: BLE001 - a failed test is reported, the rest run
            failed += 1
            print(f"FAILED {name}")
            traceback.print_exc(file=sys.stdout)
    print(f"summary: passed={passed} failed={failed} skipped=0")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared fixtures for the pika interop suite.

The broker under test is given by the AMQP_URL environment variable, e.g.
amqp://guest:guest@127.0.0.1:5672/%2F . Every test uses uniquely named
queues/exchanges so that all tests can share one broker instance.
"""
import os
import signal

import pika
import pytest

import helpers

# A broker that never answers an RPC would block pika forever: give every test
# (setup, call and teardown) a hard time limit.
TEST_TIMEOUT = int(os.environ.get("INTEROP_TEST_TIMEOUT", "30"))


class InteropTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    signal.alarm(5)  # bound the teardown that follows as well
    raise InteropTimeout("test exceeded %d s (broker not answering?)" % TEST_TIMEOUT)


@pytest.fixture(autouse=True)
def _time_limit():
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def amqp_url():
    return os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


@pytest.fixture
def params(amqp_url):
    """Factory: fresh pika.URLParameters for AMQP_URL, with optional overrides."""

    def make(**overrides):
        return helpers.make_params(amqp_url, **overrides)

    return make


@pytest.fixture
def connect(params):
    """Factory: open a BlockingConnection (closed again at teardown)."""
    opened = []

    def make(**overrides):
        c = pika.BlockingConnection(params(**overrides))
        opened.append(c)
        return c

    yield make
    for c in opened:
        try:
            if c.is_open:
                c.close()
        except Exception:
            pass


@pytest.fixture
def conn(connect):
    return connect()


@pytest.fixture
def ch(conn):
    return conn.channel()


@pytest.fixture
def name():
    """Factory for unique resource names: name('q') -> 'interop-q-<hex>'."""
    return helpers.unique


@pytest.fixture
def vhost(amqp_url):
    return helpers.make_params(amqp_url).virtual_host


@pytest.fixture
def username(amqp_url):
    return helpers.make_params(amqp_url).credentials.username


# ---------------------------------------------------------------- tenancy ----
@pytest.fixture(scope="session")
def tenant_broker(amqp_url):
    """A broker with tenancy_definitions.json loaded (see tenancy.py): the
    reference RabbitMQ itself, or a second warren started for the session."""
    import tenancy

    broker, stop = tenancy.start(amqp_url)
    try:
        yield broker
    finally:
        stop()


@pytest.fixture
def tconnect(tenant_broker):
    """Factory: tconnect(user, vhost, password=None, **overrides) opens a
    BlockingConnection to the tenant broker (closed again at teardown)."""
    opened = []

    def make(user, vhost, password=None, **overrides):
        c = pika.BlockingConnection(
            tenant_broker.params(user, vhost, password, **overrides))
        opened.append(c)
        return c

    yield make
    for c in opened:
        try:
            if c.is_open:
                c.close()
        except Exception:
            pass

"""Real ActiveMQ brokers for integration tests, built on `simulator.broker`.

Two kinds: `running_broker(tmp_path)` gives a test (or module) a broker of its own, for tests
that stop or restart it; `shared_broker_address()` names one broker for every test that only
sends and receives (each such test uses destinations of its own). The shared one is the broker
named by `HES_SIM_TEST_BROKER=host:stomp_port` when set (`.ci/run` starts it with
`hes-sim broker`), else one this pytest session starts on first use.

When the `activemq` package is missing, tests skip with the reason; under CI (`CI` set to a true
value) the package is part of the CI install, so its absence is a failure, not a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulator.broker import Broker, Runtime, find_runtime, free_port, stomp_ready
from simulator.errors import SimulatorError

__all__ = ["Broker", "BrokerAddress", "free_port", "require_activemq", "running_broker", "shared_broker_address",
           "stomp_ready"]

ENV_VAR = "HES_SIM_TEST_BROKER"
# Tests need far less than a user's broker: a small heap and a JIT that starts fast.
TEST_JVM_OPTS = "-Xms32m -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"


@dataclass(frozen=True)
class BrokerAddress:
    """Where a shared broker's STOMP connector answers; no handle to stop it, on purpose."""

    host: str
    stomp_port: int


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_activemq() -> Runtime:
    """The launcher and java, or skip the test; under CI a missing broker fails it instead."""
    try:
        return find_runtime()
    except SimulatorError as exc:
        if _ci():
            pytest.fail(f"CI is set but {exc}", pytrace=False)
        pytest.skip(str(exc))


@contextmanager
def running_broker(tmp_path: Path) -> Iterator[Broker]:
    """A started broker of its own under `tmp_path` (skips without ActiveMQ); stopped on exit, whatever happens."""
    broker = Broker(Path(tmp_path), jvm_opts=TEST_JVM_OPTS, runtime=require_activemq())
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


def broker_from_env() -> BrokerAddress | None:
    """The broker `HES_SIM_TEST_BROKER=host:port` names; a wrong value or a silent broker fails the test."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        pytest.fail(f"{ENV_VAR}={value!r}: expected host:stomp_port, e.g. 127.0.0.1:61613", pytrace=False)
    address = BrokerAddress(host.strip("[]"), int(port))
    if not stomp_ready(address.host, address.stomp_port, timeout=5.0):
        pytest.fail(f"{ENV_VAR}={value}: no STOMP broker answers there", pytrace=False)
    return address


@contextmanager
def shared_broker_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerAddress]:
    """The broker of `HES_SIM_TEST_BROKER`, else one started here and stopped on exit."""
    from_env = broker_from_env()
    if from_env is not None:
        yield from_env
        return
    with running_broker(tmp_path_factory.mktemp("shared-activemq")) as broker:
        yield BrokerAddress(broker.connect_host, broker.stomp_port)

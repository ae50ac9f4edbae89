"""Fixtures for tests against real servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.broker import BrokerAddress, shared_broker_address
from tests.integration.jms_harness import Client


@pytest.fixture(scope="session")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerAddress]:
    """One ActiveMQ for every test that neither stops nor restarts it (`.host`, `.stomp_port`):
    `HES_SIM_TEST_BROKER=host:port` when set (CI starts it), else one started for this session."""
    with shared_broker_address(tmp_path_factory) as address:
        yield address


@pytest.fixture
def broker_port(shared_broker: BrokerAddress) -> int:
    """The shared broker's STOMP port (every JMS test uses destinations of its own)."""
    return int(shared_broker.stomp_port)


@pytest.fixture
def client(broker_port: int) -> Iterator[Client]:
    """An MDMS-side JMS client on the shared broker, closed after the test."""
    c = Client(broker_port)
    yield c
    c.close()

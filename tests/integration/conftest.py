"""Fixtures for tests against real servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.broker import BrokerAddress, shared_broker_address


@pytest.fixture(scope="session")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerAddress]:
    """One ActiveMQ for every test that neither stops nor restarts it (`.host`, `.stomp_port`):
    `HES_SIM_TEST_BROKER=host:port` when set (CI starts it), else one started for this session."""
    with shared_broker_address(tmp_path_factory) as address:
        yield address

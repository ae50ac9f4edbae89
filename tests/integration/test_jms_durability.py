"""The outbox delivers to JMS through a broker restart: stop the broker, make events, start it, all arrive.

This test has a broker of its own (it stops it). The MDMS listens on the event topic with a
durable subscription, as a JMS MDMS that must not miss events does; the simulator keeps the
events in its outbox while the broker is down and delivers them when it is back. Its request
consumer comes back by itself as well.
"""

from __future__ import annotations

import asyncio
import json
import queue
from pathlib import Path

import aiohttp
import pytest

from simulator.transports.jms import JmsConnection, JmsMessage
from tests.headend.requests import get_profile, typed_get

from .broker import running_broker
from .jms_harness import DAY, REG, Client, Names, jms_simulator, seen

pytestmark = pytest.mark.integration


async def test_events_made_while_the_broker_is_down_all_arrive_after_it_restarts(tmp_path: Path) -> None:
    names = Names()
    topic = names.events_topic("EndDeviceEvents")
    with running_broker(tmp_path / "broker") as broker:
        arrived: queue.Queue[JmsMessage] = queue.Queue()
        mdms = JmsConnection("127.0.0.1", broker.stomp_port, client_id=f"{names.prefix}-mdms",
                             reconnect_initial_s=0.1, reconnect_max_s=0.5)

        def on_event(msg: JmsMessage) -> None:
            arrived.put(msg)
            mdms.ack(msg)

        mdms.subscribe(topic, on_event, headers={"activemq.subscriptionName": "events"})
        client = Client(broker.stomp_port)
        replies = names.queue("replies")
        client.listen(replies)
        try:
            async with jms_simulator(tmp_path, broker.stomp_port, names) as served:
                await asyncio.to_thread(broker.stop)
                async with aiohttp.ClientSession() as http:
                    for group in ("FEEDER-01", "FEEDER-02"):
                        async with http.post(f"{served.base_url}/control", data=json.dumps(
                                {"action": "storm", "group": group, "within_s": 1})) as resp:
                            assert (await resp.json())["ok"]
                outbox = served.delivery.outbox
                for _ in range(200):  # the sender has tried and failed: the events wait in the outbox
                    if outbox.pending() >= 2 and outbox.stats()["retried"] > 0:
                        break
                    await asyncio.sleep(0.05)
                assert outbox.pending() >= 2 and outbox.stats()["retried"] > 0 and arrived.empty()
                await asyncio.to_thread(broker.start)
                # Delivery is at least once: right after a restart ActiveMQ 5.17 now and then hands a
                # durable subscriber the same message twice (same JMSMessageID, not flagged as
                # redelivered). So messages count once per broker message ID.
                by_id: dict[str, list[tuple[str, str]]] = {}
                while sum(len(e) for e in by_id.values()) < 100:
                    try:
                        msg = await asyncio.to_thread(arrived.get, timeout=30)
                    except queue.Empty:
                        got = sum(len(e) for e in by_id.values())
                        raise AssertionError(f"only {got} of 100 events arrived after the restart") from None
                    by_id.setdefault(msg.message_id, list(seen(msg.body).events))
                events = [e for found in by_id.values() for e in found]
                for _ in range(100):
                    if outbox.pending() == 0:
                        break
                    await asyncio.sleep(0.05)
                assert outbox.pending() == 0
                assert outbox.stats()["delivered"] == len(by_id)  # each message sent to the broker once
                # The request queue's consumer re-subscribed by itself.
                profile = get_profile(groups=["FEEDER-03"], reading_types=[REG], period=DAY)
                await client.send(names.requests, typed_get(profile, correlation_id="after").encode(), reply_to=replies)
                answer = seen((await client.get(replies, timeout=30)).body)
                meters = {m for g in ("FEEDER-01", "FEEDER-02")
                          for m in served.sim.fleet.mrids(served.sim.fleet.group_members(
                              served.sim.fleet.group_by_name(g)))}
        finally:
            client.close()
            mdms.close()
    assert sorted(m for m, _ in events) == sorted(meters)  # every event once, none lost
    assert {t for _, t in events} == {"3.12.43.257"}
    assert answer.result == "OK" and answer.correlation_id == "after"

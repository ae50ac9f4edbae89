"""SOAP and JMS carry the same payloads: one scenario, one seed, both transports, documents compared.

The same scenario runs twice in this process with the same seed (and the same run id, so that
transaction IDs and event mRIDs match too): once served over SOAP with an HTTP capture server as
the MDMS, once over JMS with a broker. The MDMS side makes the same requests in the same order:
a typed sync read, a generic sync read, an async read in parts with some meters failing, and a
GetEndDeviceEvents; the timeline makes a storm and a disconnect, whose events are unsolicited.
Every document is compared without its Header (message IDs and wall-clock timestamps differ by
design); everything else, Reply codes, IDs, readings and events, must be byte-identical after
canonicalisation.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from lxml import etree

from simulator.app import Simulator, start_server
from simulator.cim import soap as soapenv
from simulator.scenario import load_scenario
from tests.headend.requests import generic_get, get_events, get_profile, soap, typed_get

from .jms_harness import DAY, INTERVAL, REG, SCENARIO, Client, Names, jms_simulator

pytestmark = pytest.mark.integration

RUN_ID = "parity"
OVERRIDES = (
    "comms.classes={wired: {latency: {kind: fixed, value_s: 1.0}, success: 0.9, retries: 0}}",
    "comms.attempt_timeout_s=5",
    "replies.part_size=20",
    "timeline=[{at_s: 0, action: storm, group: FEEDER-03, within_s: 1},"
    " {at_s: 0, action: disconnect, group: FEEDER-04}]",
)
ASYNC_PROFILE = get_profile(groups=["FEEDER-02"], reading_types=[INTERVAL], period=DAY)
EVENTS_PERIOD = ("2026-03-10T11:00:00Z", "2026-03-10T13:00:00Z")
# FEEDER-03's storm (50 events in one message) and FEEDER-04's disconnect (its events, batched by second).
EVENT_MESSAGES_AT_LEAST = 2
QUIET_S = 1.0  # 20 sim seconds: everything the timeline started is over


def without_header(body: bytes) -> bytes:
    root = etree.fromstring(body)
    for child in list(root):
        if etree.QName(child).localname == "Header":
            root.remove(child)
    return etree.tostring(root, method="c14n", exclusive=True)  # no namespaces inherited from a SOAP envelope


@asynccontextmanager
async def capture_server() -> AsyncIterator[tuple[str, list[tuple[str, bytes]]]]:
    """An MDMS that keeps every SOAP body it gets and acknowledges it."""
    got: list[tuple[str, bytes]] = []
    ok = soap('<msg:ResponseMessage xmlns:msg="http://iec.ch/TC57/2011/schema/message"><msg:Header>'
              "<msg:Verb>reply</msg:Verb><msg:Noun>Any</msg:Noun></msg:Header>"
              "<msg:Reply><msg:Result>OK</msg:Result></msg:Reply></msg:ResponseMessage>")

    async def post(request: web.Request) -> web.Response:
        _, root = soapenv.unwrap(await request.read(), request.content_type)
        got.append((request.path, etree.tostring(root)))
        return web.Response(body=ok, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/{tail:.*}", post)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", got
    finally:
        await runner.cleanup()


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_quiet(count: Callable[[], int], timeout: float = 20.0) -> None:
    """Until nothing new arrived for QUIET_S."""
    last, since = count(), asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - since < QUIET_S:
        await asyncio.sleep(0.05)
        if count() != last:
            last, since = count(), asyncio.get_running_loop().time()


async def over_soap(tmp_path: Path) -> dict[str, list[bytes]]:
    async with capture_server() as (mdms, got):
        tmp_path.mkdir(parents=True, exist_ok=True)
        path = tmp_path / "parity.yaml"
        path.write_text(SCENARIO)
        scenario = load_scenario(path, [*OVERRIDES, f"destinations.events=[{mdms}/events]",
                                        f"outbox.path={tmp_path / 'soap.sqlite3'}"])
        served = await start_server(Simulator(scenario, run_id=RUN_ID), "127.0.0.1", 0)
        base = served.base_url
        try:
            async with aiohttp.ClientSession() as http:
                async def call(service: str, body: str) -> bytes:
                    async with http.post(f"{base}/{service}", data=soap(body),
                                         headers={"Content-Type": "text/xml"}) as resp:
                        return etree.tostring(soapenv.unwrap(await resp.read(), "text/xml")[1])

                await wait_until(lambda: sum(p == "/events" for p, _ in got) >= EVENT_MESSAGES_AT_LEAST, "events")
                sync_typed = await call("GetMeterReadings", typed_get(
                    get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY), correlation_id="p-1"))
                sync_generic = await call("Message", generic_get(
                    get_profile(groups=["FEEDER-01"], reading_types=[INTERVAL], period=DAY), correlation_id="p-2"))
                accepted = await call("GetMeterReadings", typed_get(
                    ASYNC_PROFILE, correlation_id="p-3", reply_address=f"{mdms}/results"))
                await wait_until(lambda: sum(p == "/results" for p, _ in got) >= 3, "async parts")
                events = await call("GetEndDeviceEvents", get_events(period=EVENTS_PERIOD))
                await wait_quiet(lambda: len(got))
        finally:
            await served.close()
    return {
        "unsolicited": sorted(without_header(b) for p, b in got if p == "/events"),
        "answers": [without_header(b) for b in (sync_typed, sync_generic, accepted, events)],
        "parts": [without_header(b) for p, b in got if p == "/results"],
    }


async def over_jms(tmp_path: Path, port: int, client: Client) -> dict[str, list[bytes]]:
    names = Names()
    replies, results, topic = names.queue("replies"), names.queue("results"), names.events_topic("EndDeviceEvents")
    for destination in (replies, results, topic):
        client.listen(destination)
    unsolicited: list[bytes] = []
    async with jms_simulator(tmp_path, port, names, *OVERRIDES, run_id=RUN_ID):
        await wait_until(lambda: client.inboxes[topic].qsize() >= EVENT_MESSAGES_AT_LEAST, "events")

        async def call(body: str) -> bytes:
            await client.send(names.requests, body.encode(), reply_to=replies)
            return (await client.get(replies)).body

        sync_typed = await call(typed_get(
            get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY), correlation_id="p-1"))
        sync_generic = await call(generic_get(
            get_profile(groups=["FEEDER-01"], reading_types=[INTERVAL], period=DAY), correlation_id="p-2"))
        accepted = await call(typed_get(ASYNC_PROFILE, correlation_id="p-3", reply_address=results))
        parts = [m.body for m in await client.get_n(results, 3)]
        events = await call(get_events(period=EVENTS_PERIOD))
        while not await client.nothing_on(topic, QUIET_S):
            pass
        unsolicited += [m.body for m in client.drain(topic)]
    return {
        "unsolicited": sorted(without_header(b) for b in unsolicited),
        "answers": [without_header(b) for b in (sync_typed, sync_generic, accepted, events)],
        "parts": [without_header(b) for b in parts],
    }


async def test_the_same_scenario_gives_the_same_payloads_over_soap_and_jms(
        tmp_path: Path, broker_port: int, client: Client) -> None:
    by_soap = await over_soap(tmp_path / "soap")
    by_jms = await over_jms(tmp_path / "jms", broker_port, client)
    # The comparison means something only if the run did what the scenario says.
    types = Counter(t.get("ref") for b in by_soap["unsolicited"]
                    for t in etree.fromstring(b).iter("{*}EndDeviceEventType"))
    assert types["3.12.43.257"] == 50 and 0 < types["3.31.0.68"] <= 50 and len(types) == 2  # storm, disconnect
    parts = [etree.fromstring(p) for p in by_soap["parts"]]
    indexes = [Counter(e.text for e in p.iter("{*}code")) for p in parts]
    assert indexes[0]["0.1"] == indexes[1]["0.1"] == 1 and indexes[2]["0.0"] == 1  # 3 parts, the last final
    assert sum(c["5.3"] for c in indexes) > 0  # some meters failed (seeded): partial results compared too
    answers = [etree.fromstring(p) for p in by_soap["answers"]]
    assert [a.findtext("{*}Reply/{*}Result") for a in answers] == ["PARTIAL", "PARTIAL", "OK", "OK"]
    for kind in ("unsolicited", "answers", "parts"):
        assert len(by_soap[kind]) == len(by_jms[kind]), kind
        for n, (a, b) in enumerate(zip(by_soap[kind], by_jms[kind], strict=True)):
            assert a == b, f"{kind}[{n}] differs between SOAP and JMS"

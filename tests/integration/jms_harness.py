"""An in-process simulator serving JMS (and SOAP) against a real broker, and a JMS client to talk to it.

Every harness uses destinations of its own (a random prefix), so tests can share one broker.
The client's blocking waits run in a thread (`asyncio.to_thread`), so the simulator's event loop
keeps running while a test waits for an answer.
"""

from __future__ import annotations

import asyncio
import queue
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from simulator.app import Served, Simulator, start_server
from simulator.cim import schemas
from simulator.cim.ns import METER_READINGS, MSG
from simulator.scenario import load_scenario
from simulator.transports.jms import JmsConnection, JmsMessage

WAIT_S = 20.0
START = "2026-03-10T12:00:00Z"
REG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
INTERVAL = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
DAY = ("2026-03-09T00:00:00Z", "2026-03-10T00:00:00Z")

# A quiet fleet: nothing happens unless a test makes it happen; every meter answers after 1 s.
SCENARIO = f"""
name: jms-test
seed: 11
fleet: {{meters: 200, feeders: 4, meters_per_collector: 50}}
clock: {{start: {START}, speed: 20}}
comms:
  classes: {{wired: {{latency: {{kind: fixed, value_s: 1.0}}, success: 1.0, retries: 0}}}}
relay: {{failure_probability: 0.0, customer_closes_probability: 0.0}}
outbox: {{retry_initial_s: 0.1, retry_max_s: 0.5}}
"""


@dataclass
class Names:
    """Destinations of one harness."""

    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")

    def queue(self, name: str) -> str:
        return f"queue://{self.prefix}.{name}"

    def topic(self, name: str) -> str:
        return f"topic://{self.prefix}.{name}"

    @property
    def requests(self) -> str:
        return self.queue("requests")

    @property
    def dead_letters(self) -> str:
        return self.queue("DLQ")

    def events_topic(self, noun: str) -> str:
        return self.topic(f"events.{noun}")


class Client:
    """The MDMS side: sends requests and collects what arrives, per destination."""

    def __init__(self, port: int) -> None:
        self.conn = JmsConnection("127.0.0.1", port, connect_timeout_s=5.0, receipt_timeout_s=10.0,
                                  reconnect_initial_s=0.1, reconnect_max_s=0.5)
        self.inboxes: dict[str, queue.Queue[JmsMessage]] = {}

    def listen(self, destination: str) -> queue.Queue[JmsMessage]:
        inbox: queue.Queue[JmsMessage] = queue.Queue()
        self.inboxes[destination] = inbox

        def handler(msg: JmsMessage) -> None:
            inbox.put(msg)
            self.conn.ack(msg)

        self.conn.subscribe(destination, handler)
        return inbox

    async def send(self, destination: str, body: bytes, correlation_id: str | None = None,
                   reply_to: str | None = None, properties: dict[str, str] | None = None) -> None:
        await asyncio.to_thread(self.conn.send, destination, body, correlation_id, reply_to, properties)

    async def get(self, destination: str, timeout: float = WAIT_S) -> JmsMessage:
        try:
            return await asyncio.to_thread(self.inboxes[destination].get, timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing arrived on {destination} within {timeout} s") from None

    async def get_n(self, destination: str, n: int, timeout: float = WAIT_S) -> list[JmsMessage]:
        return [await self.get(destination, timeout) for _ in range(n)]

    async def nothing_on(self, destination: str, wait_s: float = 1.0) -> bool:
        """True when nothing new arrives within `wait_s` (anything that does stays in the inbox)."""
        before = self.inboxes[destination].qsize()
        await asyncio.sleep(wait_s)
        return self.inboxes[destination].qsize() == before

    def drain(self, destination: str) -> list[JmsMessage]:
        inbox, out = self.inboxes[destination], []
        while not inbox.empty():
            out.append(inbox.get_nowait())
        return out

    def close(self) -> None:
        self.conn.close()


@asynccontextmanager
async def jms_simulator(tmp_path: Path, port: int, names: Names, *overrides: str,
                        scenario_text: str = SCENARIO, run_id: str | None = None) -> AsyncIterator[Served]:
    """A started simulator taking requests from `names.requests`; closed on exit."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{names.prefix}.yaml"
    path.write_text(scenario_text)
    scenario = load_scenario(path, [
        "jms.enabled=true", f"jms.port={port}", f"jms.request_queue={names.requests}",
        f"jms.dead_letter_queue={names.dead_letters}",
        f"jms.event_topic={names.topic('events')}.{{noun}}",
        f"outbox.path={tmp_path / (names.prefix + '.sqlite3')}", *overrides])
    sim = Simulator(scenario, source=str(path), run_id=run_id)
    served = await start_server(sim, "127.0.0.1", 0)
    try:
        yield served
    finally:
        await served.close()


_METERS = etree.XPath(
    "//mr:Meter/mr:mRID/text() | //mr:Meter[not(mr:mRID)]/mr:Names/mr:name/text()",
    namespaces={"mr": METER_READINGS})
_EVENT = "{http://iec.ch/TC57/2011/EndDeviceEvents#}EndDeviceEvent"


@dataclass(frozen=True)
class Seen:
    """What a test checks of one 61968 message received."""

    root: str  # local name
    verb: str | None
    noun: str | None
    correlation_id: str | None
    message_index: str | None
    result: str | None
    codes: tuple[str, ...]
    meters: tuple[str, ...]
    events: tuple[tuple[str, str], ...]  # (meter mRID, event type)


def seen(body: bytes) -> Seen:
    root = etree.fromstring(body)
    header = next((c for c in root if etree.QName(c).localname == "Header"), None)
    reply = next((c for c in root if etree.QName(c).localname == "Reply"), None)

    def text(parent: etree._Element | None, name: str) -> str | None:
        return None if parent is None else parent.findtext(f"{{{MSG}}}{name}")

    index = None
    if header is not None:
        for prop in header.iterfind(f"{{{MSG}}}Property"):
            if prop.findtext(f"{{{MSG}}}Name") == "MessageIndex":
                index = prop.findtext(f"{{{MSG}}}Value")
    events = tuple(
        (ev.findtext("{*}Assets/{*}mRID") or "", (ev.find("{*}EndDeviceEventType").get("ref") or ""))
        for ev in root.iter(_EVENT))
    return Seen(
        root=etree.QName(root).localname, verb=text(header, "Verb"), noun=text(header, "Noun"),
        correlation_id=text(header, "CorrelationID"), message_index=index, result=text(reply, "Result"),
        codes=tuple(e.findtext(f"{{{MSG}}}code") or "" for e in (reply.iterfind(f"{{{MSG}}}Error")
                                                                  if reply is not None else ())),
        meters=tuple(str(m).strip() for m in _METERS(root)), events=events)


def problems(body: bytes) -> list[str]:
    """Schema errors against our profile for the root's namespace (empty: valid)."""
    namespace = etree.QName(etree.fromstring(body)).namespace or ""
    return schemas.validate(body, "Message" if namespace == MSG else namespace.rsplit("/", 1)[-1])

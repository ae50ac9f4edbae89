"""A process that owns an outbox, for the SIGKILL test: `fill` it while the MDMS is down, then `deliver`.

    python outbox_worker.py fill DB DESTINATION CORRELATIONS PARTS
        puts the first half of every correlation's parts in one put_many, starts delivering (every
        attempt fails: nothing listens at DESTINATION), waits for a failed attempt, puts the other
        half one put() at a time, prints "ready", and keeps retrying until it is killed.
    python outbox_worker.py deliver DB TIMEOUT
        reopens the outbox, prints "pending N", delivers, and prints the stats as JSON.

Messages are real `created MeterReadings` events asking for an acknowledgement, part k of n
marked with Header/Property MessageIndex "k/n", so the receiver validates and journals them.
"""

from __future__ import annotations

import asyncio
import json
import sys

from simulator.cim import soap
from simulator.cim.messages import OutHeader, build_event, typed_root
from simulator.cim.meterreadings import MeterReadingData, ReadingData, build_meter_readings
from simulator.cim.ns import MSG
from simulator.headend.outbox import OutboundItem, Outbox, OutboxDeliverer, RetryPolicy
from simulator.transports.soap_client import SoapSender

ACTION = "http://iec.ch/TC57/2011/MeterReadings/CreatedMeterReadings"
RETRY = RetryPolicy(initial_s=0.05, factor=2.0, max_s=0.5)


def message(correlation: str, part: int, parts: int) -> bytes:
    payload = build_meter_readings(
        MeterReadingData(meter_mrid=f"{correlation}-meter-{part}-{i}",
                         readings=[ReadingData("0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0", "2026-01-01T00:00:00Z", i, 3)])
        for i in range(3)
    )
    header = OutHeader("created", "MeterReadings", message_id=f"{correlation}/{part}", correlation_id=correlation,
                       ack_required=True, properties=(("MessageIndex", f"{part}/{parts}"),))
    return build_event(typed_root("Created", "MeterReadings"), header, payload)


def acknowledged(answer: bytes) -> bool:
    """The head-end's kind of check: a ResponseMessage with Result OK and code 0.3."""
    _, root = soap.unwrap(answer, None)
    results = root.xpath("*[local-name()='Reply']/msg:Result/text()", namespaces={"msg": MSG})
    codes = root.xpath("*[local-name()='Reply']/msg:Error/msg:code/text()", namespaces={"msg": MSG})
    return results == ["OK"] and "0.3" in codes


def item(destination: str, correlation: str, part: int, parts: int) -> OutboundItem:
    return OutboundItem(destination, ACTION, message(correlation, part, parts), correlation, True, "event")


async def fill(db: str, destination: str, correlations: int, parts: int) -> None:
    outbox = Outbox(db, RETRY)
    names = [f"job-{c}" for c in range(correlations)]
    half = parts // 2
    outbox.put_many([item(destination, name, k, parts) for name in names for k in range(1, half + 1)])
    failed = asyncio.Event()
    deliverer = OutboxDeliverer(outbox, SoapSender(timeout_s=2, ack_check=acknowledged), concurrency=4,
                                on_delivery=lambda _m, result: None if result.ok else failed.set())
    deliverer.start()
    await asyncio.wait_for(failed.wait(), 20)
    for name in names:
        for k in range(half + 1, parts + 1):
            outbox.put(*item(destination, name, k, parts))
    print("ready", flush=True)
    await asyncio.sleep(3600)  # retrying until SIGKILL


async def deliver(db: str, timeout: float) -> int:
    outbox = Outbox(db, RETRY)
    print(f"pending {outbox.pending()}", flush=True)
    sender = SoapSender(timeout_s=10, ack_check=acknowledged)
    deliverer = OutboxDeliverer(outbox, sender, concurrency=4)
    deliverer.start()
    drained = await deliverer.drain(timeout)
    await deliverer.stop()
    await sender.close()
    print(json.dumps(outbox.stats()), flush=True)
    outbox.close()
    return 0 if drained else 3


def main(argv: list[str]) -> int:
    if argv[0] == "fill":
        asyncio.run(fill(argv[1], argv[2], int(argv[3]), int(argv[4])))
        return 0
    if argv[0] == "deliver":
        return asyncio.run(deliver(argv[1], float(argv[2])))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Outbox and outbound delivery figures: put, put_many, and deliveries per second to the MDMS receiver.

    /work/venv/bin/python bench/bench_outbox.py [--messages 2000] [--meters 10] [--concurrency 8]

The receiver runs as `python -m simulator.mdms` in its own process (the machine has 2 cores:
the head-end side and the MDMS side each get one), once validating every message and once not.
Messages are `created MeterReadings` events with --meters meters of one register reading each,
asking for an acknowledgement that the sender checks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator.cim.messages import OutHeader, build_event, typed_root
from simulator.cim.meterreadings import MeterReadingData, ReadingData, build_meter_readings
from simulator.headend.outbox import OutboundItem, Outbox, OutboxDeliverer
from simulator.transports.soap_client import SoapSender

ACTION = "http://iec.ch/TC57/2011/MeterReadings/CreatedMeterReadings"


def message(i: int, meters: int) -> bytes:
    payload = build_meter_readings(
        MeterReadingData(meter_mrid=f"meter-{i}-{m}",
                         readings=[ReadingData("0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0", "2026-01-01T00:00:00Z", m, 3)])
        for m in range(meters)
    )
    header = OutHeader("created", "MeterReadings", message_id=f"m-{i}", correlation_id=f"c-{i % 50}",
                       ack_required=True)
    return build_event(typed_root("Created", "MeterReadings"), header, payload)


def start_mdms(validate: bool) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "simulator.mdms", "--host", "127.0.0.1", "--port", "0"]
    if not validate:
        args.append("--no-validate")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("listening on "):
            return proc, line.split()[2]
    raise RuntimeError("mdms did not start")


async def deliver_all(db: Path, url: str, bodies: list[bytes], concurrency: int) -> float:
    outbox = Outbox(db)
    outbox.put_many([OutboundItem(url, ACTION, b, f"c-{i % 50}", True, "event") for i, b in enumerate(bodies)])
    sender = SoapSender(ack_check=lambda answer: b"<msg:code>0.3</msg:code>" in answer)
    deliverer = OutboxDeliverer(outbox, sender, concurrency=concurrency)
    started = time.perf_counter()
    deliverer.start()
    if not await deliverer.drain(timeout=600):
        raise RuntimeError(f"not drained: {outbox.stats()}")
    elapsed = time.perf_counter() - started
    await deliverer.stop()
    await sender.close()
    stats = outbox.stats()
    outbox.close()
    assert stats["delivered"] == len(bodies) and stats["retried"] == 0, stats
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--meters", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    bodies = [message(i, args.meters) for i in range(args.messages)]
    size = sum(map(len, bodies)) / len(bodies)
    print(f"{args.messages} messages of {size:,.0f} bytes ({args.meters} meters each), concurrency {args.concurrency}")

    with tempfile.TemporaryDirectory() as tmp:
        for sync in ("NORMAL", "FULL"):
            box = Outbox(Path(tmp) / f"put-{sync}.sqlite", synchronous=sync)  # type: ignore[arg-type]
            started = time.perf_counter()
            for i, b in enumerate(bodies):
                box.put("http://x", ACTION, b, f"c-{i % 50}", True, "event")
            put_s = time.perf_counter() - started
            box.close()
            box = Outbox(Path(tmp) / f"many-{sync}.sqlite", synchronous=sync)  # type: ignore[arg-type]
            started = time.perf_counter()
            for start in range(0, len(bodies), 1000):
                box.put_many([("http://x", ACTION, b, f"c-{i % 50}", True, "event")
                              for i, b in enumerate(bodies[start:start + 1000], start)])
            many_s = time.perf_counter() - started
            started = time.perf_counter()
            while due := box.due(limit=100):
                for msg in due:
                    box.delivered(msg.id)
            done_s = time.perf_counter() - started
            assert box.stats()["delivered"] == len(bodies)
            box.close()
            print(f"synchronous={sync}: put {len(bodies) / put_s:,.0f}/s ({put_s / len(bodies) * 1e6:.0f} us), "
                  f"put_many (1,000 per call) {len(bodies) / many_s:,.0f}/s, "
                  f"due+delivered {len(bodies) / done_s:,.0f}/s")

        for validate in (False, True):
            proc, base = start_mdms(validate)
            try:
                elapsed = asyncio.run(deliver_all(Path(tmp) / f"deliver-{validate}.sqlite", base + "/Reply",
                                                  bodies, args.concurrency))
            finally:
                proc.terminate()
                proc.wait(timeout=15)
            print(f"delivered to the MDMS receiver (validation {'on' if validate else 'off'}): "
                  f"{len(bodies) / elapsed:,.0f} messages/s ({elapsed:.2f} s, acks checked)")


if __name__ == "__main__":
    main()

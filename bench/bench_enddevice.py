"""How fast the codec writes EndDeviceEvents storms and reads EndDeviceControls requests.

A group disconnect or a mass outage turns into one EndDeviceEvent per meter at once, so the
figure that matters is events per second into bytes. The events are built before timing (as the
head-end hands them over): distinct meters, uuids and usage points, a shared control's issuer
fields and details, which is the shape of a group disconnect's outcome. Also times XSD
validation of the typed `CreatedEndDeviceEvents` and reading a request of `--controls` controls.
Figures are the best of `--repeat` runs.

    python bench/bench_enddevice.py [--events 100000] [--controls 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from lxml import etree

from simulator.cim import schemas
from simulator.cim.enddevicecontrols import ControlItem, build_end_device_controls_request, controls_from_message
from simulator.cim.enddeviceevents import EventOut, build_end_device_events
from simulator.cim.envelope import OutHeader, build_event, read_request, typed_root
from simulator.cim.getmeterreadings import ObjRef
from simulator.cim.xml import parse_xml
from simulator.ids import derive_uuid
from simulator.timeutil import format_datetime

START = 1_773_100_800  # 2026-03-10T00:00:00Z


def make_events(n: int) -> list[EventOut]:
    return [
        EventOut(
            mrid=str(derive_uuid(1, "event", i)),
            created=format_datetime(START + i // 500),
            event_type="3.31.0.68" if i % 50 else "3.31.0.84",
            meter_mrid=f"9f5a3c1e-0000-4000-8000-{i:012d}",
            meter_name=f"SIM{i:08d}",
            usage_point_mrid=f"UP-{i:08d}",
            issuer_id="MDMS",
            issuer_tracking_id="track-42",
            details=(("CorrelationID", "c0ffee00-1111-4222-8333-444455556666"), ("controlType", "3.31.0.23")),
        )
        for i in range(n)
    ]


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--controls", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print("command:", "python bench/bench_enddevice.py " + " ".join(argv if argv is not None else sys.argv[1:]))

    events = make_events(args.events)
    build_s = best_of(args.repeat, lambda: build_end_device_events(events))
    payload = build_end_device_events(events)
    mb = len(payload) / 1e6
    print(
        f"build_end_device_events: {args.events:,} events in {build_s * 1e3:.0f} ms = "
        f"{args.events / build_s:,.0f} events/s, {len(payload) / args.events:.0f} B/event, {mb:.1f} MB"
    )

    header = OutHeader("created", "EndDeviceEvents", message_id="m-1", correlation_id="c-1")
    message = build_event(typed_root("Created", "EndDeviceEvents"), header, payload)
    schemas.validator("EndDeviceEventsMessage")
    whole = etree.fromstring(message)
    validate_s = best_of(max(1, args.repeat // 2), lambda: schemas.validate(whole, "EndDeviceEventsMessage"))
    assert not schemas.validate(whole, "EndDeviceEventsMessage")
    print(f"XSD validation of the typed CreatedEndDeviceEvents: {validate_s * 1e3:.0f} ms ({mb / validate_s:.0f} MB/s)")

    items = tuple(
        ControlItem(
            index=i,
            mrid=f"ctl-{i}",
            control_type="3.31.0.23",
            issuer_id="MDMS",
            issuer_tracking_id=f"t-{i}",
            reason=None,
            end_devices=(ObjRef(f"9f5a3c1e-0000-4000-8000-{i:012d}"),),
            end_device_groups=(),
            usage_points=(),
            usage_point_groups=(),
            start_time=START,
            end_time=None,
            duration_s=None,
        )
        for i in range(args.controls)
    )
    request = build_end_device_controls_request(items, OutHeader("create", "EndDeviceControls"))
    read_s = best_of(args.repeat, lambda: controls_from_message(read_request(parse_xml(request))))
    kb = len(request) / 1e3
    print(f"read a {args.controls}-control CreateEndDeviceControls ({kb:.0f} KB): {read_s * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

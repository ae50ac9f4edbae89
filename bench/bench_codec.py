"""How fast the codec builds and checks MeterReadings answers.

Builds one GetMeterReadings answer of `--meters` meters x `--intervals` 15-minute readings
(plus one register read per meter) with the string-template fast path and with the lxml
reference builder, then times lxml XSD validation of the payload and of the whole typed
response, and reading a typed request. Figures are the best of `--repeat` runs, in interval
readings per second; the data (values 0..2000 Wh printed with 3 decimals) is built before
timing, as the head-end hands it over.

    python bench/bench_codec.py [--meters 1000] [--intervals 96] [--repeat 5] [--negative]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
from lxml import etree

from simulator.cim import schemas, soap
from simulator.cim.envelope import OutHeader, Reply, build_response, read_request
from simulator.cim.getmeterreadings import (
    MeterReadingsQuery,
    ObjRef,
    build_get_meter_readings_request,
    query_from_message,
)
from simulator.cim.meterreadings import (
    IntervalBlockData,
    MeterReadingData,
    ReadingData,
    build_meter_readings,
    build_meter_readings_slow,
)
from simulator.cim.ns import GET_METER_READINGS_MSG
from simulator.timeutil import format_datetime

RT_INTERVAL = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
RT_REGISTER = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
START = 1_773_100_800  # 2026-03-10T00:00:00Z


def make_meters(meters: int, intervals: int, negative: bool) -> list[MeterReadingData]:
    rng = np.random.default_rng(1)
    stamps = tuple(format_datetime(START + 900 * (i + 1)) for i in range(intervals))
    low = -50 if negative else 0
    return [
        MeterReadingData(
            meter_mrid=f"9f5a3c1e-0000-4000-8000-{m:012d}",
            meter_name=f"SIM{m:08d}",
            usage_point_mrid=f"UP-{m:08d}",
            values_interval=(format_datetime(START), stamps[-1]),
            readings=[ReadingData(RT_REGISTER, stamps[-1], 48_211_000 + m, 3)],
            interval_blocks=[IntervalBlockData(RT_INTERVAL, stamps, rng.integers(low, 2000, intervals), 3)],
        )
        for m in range(meters)
    ]


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--intervals", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--negative", action="store_true", help="include negative values (divmod path)")
    args = parser.parse_args(argv)

    print("command:", "python bench/bench_codec.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    readings = args.meters * args.intervals
    print(f"payload: {args.meters} meters x {args.intervals} intervals = {readings:,} interval readings")
    meters = make_meters(args.meters, args.intervals, args.negative)

    fast_s = best_of(args.repeat, lambda: build_meter_readings(meters))
    slow_s = best_of(max(1, args.repeat // 2), lambda: build_meter_readings_slow(meters))
    payload = build_meter_readings(meters)
    same = etree.tostring(etree.fromstring(payload), method="c14n") == etree.tostring(
        etree.fromstring(build_meter_readings_slow(meters)), method="c14n"
    )
    mb = len(payload) / 1e6
    fast_rate, slow_rate = readings / fast_s / 1e6, readings / slow_s / 1e6
    print(f"fast builder (templates): {fast_s * 1e3:8.1f} ms  {fast_rate:6.2f} M readings/s  {mb:.1f} MB")
    print(f"slow builder (lxml tree): {slow_s * 1e3:8.1f} ms  {slow_rate:6.2f} M readings/s")
    print(f"speed-up: {slow_s / fast_s:.1f}x   canonical XML identical: {same}")

    header = OutHeader("reply", "MeterReadings", message_id="m-2", correlation_id="c-1")
    wrapper = f"{{{GET_METER_READINGS_MSG}}}MeterReadingsResponseMessage"
    envelope_s = best_of(
        args.repeat, lambda: soap.wrap(build_response(wrapper, header, Reply("OK"), payload), "1.1")
    )
    print(f"typed response + SOAP around the payload: {envelope_s * 1e3:.2f} ms")

    response = build_response(wrapper, header, Reply("OK"), payload)
    schemas.validator("MeterReadings")
    schemas.validator("GetMeterReadingsMessage")
    parse_s = best_of(args.repeat, lambda: etree.fromstring(response))
    doc = etree.fromstring(payload)
    whole = etree.fromstring(response)
    v_payload = best_of(args.repeat, lambda: schemas.validate(doc, "MeterReadings"))
    v_whole = best_of(args.repeat, lambda: schemas.validate(whole, "GetMeterReadingsMessage"))
    assert not schemas.validate(whole, "GetMeterReadingsMessage")
    rmb = len(response) / 1e6
    print(f"lxml parse of the response:          {parse_s * 1e3:8.1f} ms  {rmb / parse_s:6.0f} MB/s")
    print(f"lxml XSD validation, payload:        {v_payload * 1e3:8.1f} ms  {mb / v_payload:6.0f} MB/s")
    print(f"lxml XSD validation, typed response: {v_whole * 1e3:8.1f} ms  {rmb / v_whole:6.0f} MB/s")

    query = MeterReadingsQuery(
        end_devices=tuple(ObjRef(f"9f5a3c1e-0000-4000-8000-{m:012d}") for m in range(args.meters)),
        reading_types=(RT_INTERVAL,),
        reading_periods=((START, START + 86_400),),
    )
    request = soap.wrap(build_get_meter_readings_request(query, OutHeader("get", "MeterReadings")), "1.1")

    def read() -> object:
        return query_from_message(read_request(soap.unwrap(request, "text/xml")[1]))

    read_s = best_of(args.repeat, read)
    print(f"unwrap + read + parse a {args.meters}-meter request: {read_s * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

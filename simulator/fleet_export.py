"""`hes-sim fleet`: every meter of the fleet as CSV or JSON, streamed, for MDMS provisioning."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any, TextIO

from .model.fleet import Fleet

COLUMNS = (
    "mrid", "serial", "usage_point_mrid", "usage_point_name", "meter_class",
    "groups", "reading_types", "customer_name", "customer_address",
)


def fleet_rows(fleet: Fleet, customers: bool = True) -> Iterator[dict[str, Any]]:
    for i in range(fleet.size):
        cust = fleet.customer(i) if customers else {"name": "", "address": ""}
        yield {
            "mrid": fleet.mrid(i),
            "serial": fleet.serial(i),
            "usage_point_mrid": fleet.usage_point_mrid(i),
            "usage_point_name": fleet.usage_point_name(i),
            "meter_class": fleet.meter_class(i),
            "groups": [g.name for g in fleet.groups_of(i)],
            "reading_types": list(fleet.reading_types(i)),
            "customer_name": cust["name"],
            "customer_address": cust["address"],
        }


def write_fleet(fleet: Fleet, fmt: str, out: TextIO, customers: bool = True) -> None:
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in fleet_rows(fleet, customers):
            row["groups"] = ";".join(row["groups"])
            row["reading_types"] = " ".join(row["reading_types"])
            writer.writerow([row[c] for c in COLUMNS])
    elif fmt == "json":
        # A JSON array written row by row, so a million meters never sit in memory at once.
        out.write("[")
        for n, row in enumerate(fleet_rows(fleet, customers)):
            out.write(",\n" if n else "\n")
            out.write(json.dumps(row, ensure_ascii=False))
        out.write("\n]\n")
    else:
        raise ValueError(f"unknown format {fmt!r}")

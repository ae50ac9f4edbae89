"""The README's first example must keep working exactly as written."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from lxml import etree
from pydantic import BaseModel

from simulator.app import Simulator
from simulator.scenario import load_scenario
from tests.conformance.refschemas import assert_valid_both

REPO = Path(__file__).resolve().parents[1]


def test_readme_curl_example_returns_a_day_of_readings_for_the_named_meter() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    body = re.search(r"--data-binary @- <<'EOF'\n(.*?)\nEOF\n", readme, re.S).group(1)
    action = re.search(r"-H 'SOAPAction: (.*?)'", readme).group(1)
    sim = Simulator(load_scenario(REPO / "scenarios" / "demo.yaml"))
    answer = asyncio.run(sim.soap.handle("GetMeterReadings", action, "text/xml; charset=utf-8", body.encode()))
    assert answer.status == 200, answer.body[:600]
    root = etree.fromstring(answer.body).find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]
    assert_valid_both(root, "GetMeterReadingsMessage", "GetMeterReadingsMessage")
    m = "{http://iec.ch/TC57/2011/schema/message}"
    assert root.findtext(f"{{*}}Reply/{m}Result") == "OK"
    assert root.findtext(f"{{*}}Header/{m}CorrelationID") == "readme-1"
    assert root.findtext(".//{*}Meter/{*}Names/{*}name") == "HES55949865"
    assert len(root.findall(".//{*}IntervalReadings")) == 96
    # The README says this is the first meter of the demo fleet.
    assert sim.fleet.serial(0) == "HES55949865"


def test_readme_scenario_reference_lists_every_key_with_its_default() -> None:
    from simulator.scenario import Scenario

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    defaults = Scenario()
    for section in ("fleet", "clock", "headend", "server", "replies", "outbox", "comms", "relay"):
        for key in type(getattr(defaults, section)).model_fields:
            value = getattr(getattr(defaults, section), key)
            if isinstance(value, dict | list | BaseModel):
                # Structured defaults are described in words, possibly per sub-key (`replies.faults.KIND`).
                assert re.search(rf"^\| `{section}\.{key}[.`]", readme, re.M), f"README lacks {section}.{key}"
                continue
            row = re.search(rf"^\| `{section}\.{key}` \| `?([^|`]*)`? \|", readme, re.M)
            assert row, f"README lacks {section}.{key}"
            if isinstance(value, bool):
                shown = str(value).lower()
            elif value is None:
                shown = "null"
            elif isinstance(value, int | float):
                assert float(row.group(1)) == value, f"{section}.{key}: README says {row.group(1)!r}, default {value}"
                continue
            else:
                shown = str(value)
            assert row.group(1).strip() == shown, f"{section}.{key}: README says {row.group(1)!r}, default {shown!r}"
    for key in ("name", "description", "seed"):
        assert re.search(rf"^\| `{key}` \|", readme, re.M), f"README lacks {key}"

"""Disconnect and reconnect a feeder of 100 meters over SOAP, results to the built-in MDMS receiver.

Real processes: `hes-sim run` and `hes-sim mdms`; a zeep client generated from our served
ExecuteEndDeviceControls and GetEndDeviceEvents WSDLs, as an MDMS would build one.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import zeep

from simulator.app import Simulator
from simulator.scenario import load_scenario
from simulator.timeutil import format_datetime

from .server import DEMO, INSTANT_COMMS, read_journal, running, running_simulator, wait_for

pytestmark = pytest.mark.integration

START = "2026-03-10T12:00:00Z"
KWH_15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"






def test_feeder_disconnect_reconnect_cycle_over_soap(tmp_path: Path) -> None:
    log = tmp_path / "mdms.jsonl"
    fleet = Simulator(load_scenario(DEMO, ["seed=5"])).fleet
    members = fleet.group_members(fleet.group_by_name("FEEDER-01"))
    assert len(members) == 100
    args = ("--seed", "5", "--speed", "600", "--set", f"clock.start={START}", "--set", INSTANT_COMMS,
            "--set", "relay.failure_probability=0", "--set", f"outbox.path={tmp_path / 'outbox.sqlite3'}")
    with running("mdms", "--port", "0", "--journal", str(log)) as (mdms, _), \
            running_simulator(*args) as (base, _):
        controls = zeep.Client(f"{base}/ExecuteEndDeviceControls?wsdl").service
        header = {"Verb": "create", "Noun": "EndDeviceControls", "AsyncReplyFlag": True,
                  "ReplyAddress": f"{mdms}/SendEndDeviceEvents", "CorrelationID": "cycle-off"}

        def control(code: str, tracking: str) -> dict:
            return {"EndDeviceControls": {"EndDeviceControl": [{
                "issuerTrackingID": tracking, "EndDeviceControlType": {"ref": code},
                "EndDeviceGroups": [{"Names": [{"name": "FEEDER-01"}]}]}]}}

        accepted = controls.CreateEndDeviceControls(Header=header, Payload=control("3.31.0.23", "OFF-1"))
        assert accepted.Reply.Result == "OK" and accepted.Reply.ID
        wait_for(lambda: any(e["noun"] == "EndDeviceControls" and e["correlation_id"] == "cycle-off"
                             for e in read_journal(log)), 30, "the disconnect's final reply")
        got = [e for e in read_journal(log) if e["correlation_id"] == "cycle-off"]
        assert all(e["valid"] for e in got), [e["validation_errors"] for e in got]
        assert got[-1]["result"] == "OK"

        events = zeep.Client(f"{base}/GetEndDeviceEvents?wsdl").service
        res = events.GetEndDeviceEvents(
            Header={"Verb": "get", "Noun": "EndDeviceEvents"},
            Request={"GetEndDeviceEvents": {"EndDeviceGroup": [{"Names": [{"name": "FEEDER-01"}]}],
                                            "EndDeviceEventType": [{"mRID": "3.31.0.68"}]}})
        found = res.Payload.EndDeviceEvents.EndDeviceEvent
        assert len(found) == 100 and {e.issuerTrackingID for e in found} == {"OFF-1"}
        assert sorted(e.Assets.mRID for e in found) == sorted(fleet.mrids(members))
        off_at = max(e.createdDateTime for e in found)

        # Readings of a disconnected meter: the intervals after the disconnect are zero.
        reads = zeep.Client(f"{base}/GetMeterReadings?wsdl").service
        first = (int(off_at.timestamp()) // 900 + 1) * 900

        def after_disconnect() -> list[Decimal]:
            r = reads.GetMeterReadings(
                Header={"Verb": "get", "Noun": "MeterReadings"},
                Request={"GetMeterReadings": {"EndDevice": [{"mRID": fleet.mrid(int(members[0]))}],
                                              "Reading": [{"timePeriod": {"start": format_datetime(first),
                                                                          "end": format_datetime(first + 1800)}}],
                                              "ReadingType": [{"mRID": KWH_15}]}})
            if r.Payload is None:  # the range is still in the future
                return []
            block = r.Payload.MeterReadings.MeterReading[0].IntervalBlocks[0]
            return [Decimal(iv.value) for iv in block.IntervalReadings]

        wait_for(lambda: len(after_disconnect()) == 2, 30, "two intervals after the disconnect to complete")
        assert after_disconnect() == [0, 0]

        header["CorrelationID"] = "cycle-on"
        controls.CreateEndDeviceControls(Header=header, Payload=control("3.31.0.18", "ON-1"))
        wait_for(lambda: any(e["noun"] == "EndDeviceControls" and e["correlation_id"] == "cycle-on"
                             for e in read_journal(log)), 30, "the reconnect's final reply")
        res = events.GetEndDeviceEvents(
            Header={"Verb": "get", "Noun": "EndDeviceEvents"},
            Request={"GetEndDeviceEvents": {"EndDeviceGroup": [{"Names": [{"name": "FEEDER-01"}]}],
                                            "EndDeviceEventType": [{"mRID": "3.31.0.42"}]}})
        assert len(res.Payload.EndDeviceEvents.EndDeviceEvent) == 100

"""Real sockets, real clients: zeep and Node's `soap` call a running `hes-sim run`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import zeep
from lxml import etree
from zeep.plugins import HistoryPlugin

from simulator.app import Simulator
from simulator.scenario import load_scenario
from tests.conformance.refschemas import assert_valid_both

from .server import DEMO, INSTANT_COMMS, REPO, running_simulator

pytestmark = pytest.mark.integration

START = "2026-03-10T12:00:00Z"
ARGS = ("--meters", "300", "--seed", "5", "--set", f"clock.start={START}", "--speed", "20", "--set", INSTANT_COMMS)
SHARED = REPO.parent / "shared"
REFERENCE_WSDL = SHARED / "reference" / "61968-9-2013" / "connexo" / "meterreadings" / "GetMeterReadings.wsdl"
NODE_DIR = Path(__file__).parent / "node"
KWH_15 = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with running_simulator(*ARGS) as running:
        yield running


@pytest.fixture(scope="module")
def fleet():  # the same fleet the server runs, built in-process to know its meters
    scenario = load_scenario(DEMO, ["fleet.meters=300", "seed=5", f"clock.start={START}"])
    return Simulator(scenario).fleet


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_served_wsdl_points_at_the_server_and_its_schemas_resolve(server) -> None:
    base, _ = server
    status, wsdl = _get(f"{base}/GetMeterReadings?wsdl")
    assert status == 200
    tree = etree.fromstring(wsdl)
    address = tree.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
    assert address == f"{base}/GetMeterReadings"
    for loc in {el.get("schemaLocation") for el in tree.iter("{http://www.w3.org/2001/XMLSchema}import")}:
        code, xsd = _get(f"{base}/{loc}")
        assert code == 200 and b"<xs:schema" in xsd
    assert _get(f"{base}/xsd/..%2F..%2Fpyproject.toml")[0] == 404
    assert _get(f"{base}/Nowhere?wsdl")[0] == 404


def test_zeep_client_from_our_wsdl(server, fleet) -> None:
    base, _ = server
    history = HistoryPlugin()
    client = zeep.Client(f"{base}/GetMeterReadings?wsdl", plugins=[history])
    mrid = fleet.mrid(7)
    res = client.service.GetMeterReadings(
        Header={"Verb": "get", "Noun": "MeterReadings", "CorrelationID": "zeep-1"},
        Request={"GetMeterReadings": {
            "EndDevice": [{"mRID": mrid}, {"mRID": "00000000-0000-4000-8000-000000000000"}],
            "Reading": [{"timePeriod": {"start": "2026-03-09T00:00:00Z", "end": "2026-03-10T00:00:00Z"}}],
            "ReadingType": [{"mRID": KWH_15}],
        }},
    )
    assert res.Header.Verb == "reply" and res.Header.CorrelationID == "zeep-1"
    assert res.Reply.Result == "PARTIAL"
    assert [(e.code, e.ID._value_1, e.ID.objectType) for e in res.Reply.Error] == \
        [("2.4", "00000000-0000-4000-8000-000000000000", "EndDevice")]
    (reading,) = res.Payload.MeterReadings.MeterReading
    assert reading.Meter.mRID == mrid
    (block,) = reading.IntervalBlocks
    assert block.ReadingType.ref == KWH_15 and len(block.IntervalReadings) == 96
    body = history.last_received["envelope"].find(".//{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]
    assert_valid_both(body, "GetMeterReadingsMessage", "GetMeterReadingsMessage")


@pytest.mark.skipif(not REFERENCE_WSDL.exists(), reason="../shared/reference is not beside the repository")
def test_client_generated_from_the_public_wsdl_works_unchanged(server, fleet) -> None:
    base, _ = server
    client = zeep.Client(str(REFERENCE_WSDL))
    service = client.create_service("{http://iec.ch/TC57/2011/GetMeterReadings}GetMeterReadings_Binding",
                                    f"{base}/GetMeterReadings")
    res = service.GetMeterReadings(
        Header={"Verb": "get", "Noun": "MeterReadings", "CorrelationID": "pub-1"},
        Request={"GetMeterReadings": {"EndDeviceGroup": [{"Names": [{"name": "FEEDER-02"}]}],
                                      "ReadingType": [{"mRID": "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"}]}},
    )
    assert res.Reply.Result == "OK"
    meters = res.Payload.MeterReadings.MeterReading
    feeder = fleet.group_members(fleet.group_by_name("FEEDER-02"))
    assert [m.Meter.mRID for m in meters] == fleet.mrids(feeder)
    assert all(len(m.Readings) == 1 and float(m.Readings[0].value) > 0 for m in meters)
    with pytest.raises(zeep.exceptions.Fault) as info:
        service.GetMeterReadings(Header={"Verb": "get", "Noun": "MeterReadings"}, Request={"GetMeterReadings": {}})
    detail = info.value.detail[0]
    assert detail.tag == "{http://iec.ch/TC57/2011/GetMeterReadingsMessage}MeterReadingsFaultMessage"
    assert detail.findtext(".//{http://iec.ch/TC57/2011/schema/message}code") == "5.8"


def _node_available() -> bool:
    return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "soap").is_dir()


@pytest.mark.skipif(not _node_available() and not os.environ.get("CI"),
                    reason="Node soap client not installed: run `npm ci` in tests/integration/node")
def test_node_soap_client_from_our_wsdl(server, fleet) -> None:
    base, _ = server
    mrid = fleet.mrid(3)
    args = {"Header": {"Verb": "get", "Noun": "MeterReadings", "CorrelationID": "node-1"},
            "Request": {"GetMeterReadings": {
                "EndDevice": [{"mRID": mrid}],
                "Reading": [{"timePeriod": {"end": "2026-03-09T01:00:00Z", "start": "2026-03-09T00:00:00Z"}}],
                "ReadingType": [{"mRID": KWH_15}]}}}
    out = subprocess.run(["node", str(NODE_DIR / "call.js"), f"{base}/GetMeterReadings?wsdl", "GetMeterReadings",
                          json.dumps(args)], capture_output=True, text=True, timeout=60, check=True)
    answer = json.loads(out.stdout)
    assert answer["ok"], answer
    result = answer["result"]
    assert result["Header"]["CorrelationID"] == "node-1" and result["Reply"]["Result"] == "OK"
    reading = result["Payload"]["MeterReadings"]["MeterReading"][0]
    assert reading["Meter"]["mRID"] == mrid
    values = [iv["value"] for iv in reading["IntervalBlocks"][0]["IntervalReadings"]]
    assert len(values) == 4 and all(float(v) >= 0 for v in values)
    # A fault decodes as the typed fault message of the WSDL.
    bad = {"Header": {"Verb": "get", "Noun": "Weather"},
           "Request": {"GetMeterReadings": {"EndDevice": [{"mRID": "x"}]}}}
    out = subprocess.run(["node", str(NODE_DIR / "call.js"), f"{base}/GetMeterReadings?wsdl", "GetMeterReadings",
                          json.dumps(bad)], capture_output=True, text=True, timeout=60, check=True)
    answer = json.loads(out.stdout)
    assert not answer["ok"]
    fault = answer["fault"]["Envelope"]["Body"]["Fault"]
    assert fault["detail"]["MeterReadingsFaultMessage"]["Reply"]["Error"]["code"] == "2.5"


def test_garbage_over_http_gets_a_fault_not_a_dropped_connection(server) -> None:
    base, _ = server
    req = urllib.request.Request(f"{base}/Message", data=b"\x00\xff not xml", headers={"Content-Type": "text/xml"})
    status, body = 0, b""
    try:
        urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    assert status == 500
    root = etree.fromstring(body)
    assert root.findtext(".//{http://iec.ch/TC57/2011/schema/message}code") == "1.8"


def test_second_server_on_a_busy_port_is_a_one_line_error(server) -> None:
    base, _ = server
    port = base.rsplit(":", 1)[1]
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", "run", str(DEMO), "--port", port, *ARGS[:2]],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"hes-sim: error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in proc.stderr


def test_sigint_stops_the_server_cleanly() -> None:
    with running_simulator(*ARGS) as (base, proc):
        assert _get(f"{base}/health")[0] == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert "Traceback" not in proc.stderr.read()

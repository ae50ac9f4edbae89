"""Async reads end to end with real processes: hes-sim run -> outbox -> HTTP -> hes-sim mdms.

The second test is the issue's durability check: SIGKILL the simulator while the MDMS is down,
start the MDMS and the simulator again, and every result part arrives, in order.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import urllib.request
from pathlib import Path

import pytest
from lxml import etree

from simulator.app import Simulator
from simulator.scenario import load_scenario

from .server import DEMO, INSTANT_COMMS, read_journal, running, running_simulator, wait_for

pytestmark = pytest.mark.integration

START = "2026-03-10T12:00:00Z"
REG = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sim_args(outbox: Path) -> tuple[str, ...]:
    return ("--meters", "300", "--seed", "5", "--speed", "50", "--set", f"clock.start={START}",
            "--set", INSTANT_COMMS, "--set", "replies.part_size=10", "--set", f"outbox.path={outbox}",
            "--set", "outbox.retry_initial_s=0.2", "--set", "outbox.retry_max_s=1")


def async_request(base: str, reply_to: str, correlation: str) -> etree._Element:
    body = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        '<m:GetMeterReadings xmlns:m="http://iec.ch/TC57/2011/GetMeterReadingsMessage" '
        'xmlns:h="http://iec.ch/TC57/2011/schema/message"><m:Header><h:Verb>get</h:Verb><h:Noun>MeterReadings</h:Noun>'
        f"<h:AsyncReplyFlag>true</h:AsyncReplyFlag><h:ReplyAddress>{reply_to}</h:ReplyAddress>"
        f"<h:CorrelationID>{correlation}</h:CorrelationID></m:Header><m:Request>"
        '<q:GetMeterReadings xmlns:q="http://iec.ch/TC57/2011/GetMeterReadings#">'
        "<q:EndDeviceGroup><q:Names><q:name>FEEDER-01</q:name></q:Names></q:EndDeviceGroup>"
        f"<q:ReadingType><q:mRID>{REG}</q:mRID></q:ReadingType></q:GetMeterReadings>"
        "</m:Request></m:GetMeterReadings></soapenv:Body></soapenv:Envelope>"
    ).encode()
    req = urllib.request.Request(f"{base}/GetMeterReadings", data=body, headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return etree.fromstring(resp.read()).find("{*}Body")[0]


def feeder_mrids() -> list[str]:
    sim = Simulator(load_scenario(DEMO, ["fleet.meters=300", "seed=5"]))
    return sim.fleet.mrids(sim.fleet.group_members(sim.fleet.group_by_name("FEEDER-01")))






def pending(outbox: Path) -> int:
    with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0])


def check_parts(entries: list[dict], correlation: str) -> None:
    mine = [e for e in entries if e["correlation_id"] == correlation]
    assert all(e["valid"] for e in mine), [e["validation_errors"] for e in mine if not e["valid"]]
    firsts: list[str] = []
    for e in mine:
        if e["message_index"] not in firsts:
            firsts.append(e["message_index"])
    assert firsts == ["1/3", "2/3", "3/3"]  # every part, in order (retries may repeat one)
    meters = {m for e in mine for m in e["meters"]}
    assert sorted(meters) == sorted(feeder_mrids())
    last = next(e for e in mine if e["message_index"] == "3/3")
    assert last["result"] == "OK"


def test_async_results_reach_the_mdms_receiver(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with running("mdms", "--port", "0", "--journal", str(journal)) as (mdms, _), \
            running_simulator(*sim_args(tmp_path / "outbox.sqlite3")) as (base, _):
        accepted = async_request(base, f"{mdms}/ReplyMeterReadings", "e2e-1")
        m = "{http://iec.ch/TC57/2011/schema/message}"
        assert accepted.findtext(f"{{*}}Reply/{m}Result") == "OK"
        wait_for(lambda: len(read_journal(journal)) >= 3, 30, "three parts at the MDMS")
        check_parts(read_journal(journal), "e2e-1")


def test_sigkill_while_the_mdms_is_down_loses_nothing(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    journal = tmp_path / "journal.jsonl"
    port = free_port()  # the MDMS will live here; nothing listens yet
    reply_to = f"http://127.0.0.1:{port}/ReplyMeterReadings"
    with running_simulator(*sim_args(outbox)) as (base, proc):
        async_request(base, reply_to, "kill-1")
        wait_for(lambda: outbox.exists() and pending(outbox) == 3, 30, "three parts in the outbox")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert pending(outbox) == 3
    with running("mdms", "--port", str(port), "--journal", str(journal)), \
            running_simulator(*sim_args(outbox)) as (_, again):
        wait_for(lambda: pending(outbox) == 0, 30, "the restarted simulator to deliver everything")
        again.send_signal(signal.SIGINT)
        assert again.wait(timeout=15) == 0
    check_parts(read_journal(journal), "kill-1")

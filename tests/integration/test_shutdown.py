"""Stopping the server loses nothing it accepted, and does not keep callers waiting."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .server import running_simulator

pytestmark = pytest.mark.integration

SLOW = "comms.classes={slow: {latency: {kind: fixed, value_s: 500.0}, success: 1.0, retries: 0}}"


def _body(async_to: str | None = None) -> bytes:
    extra = (f"<h:AsyncReplyFlag>true</h:AsyncReplyFlag><h:ReplyAddress>{async_to}</h:ReplyAddress>"
             if async_to else "")
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        '<m:GetMeterReadings xmlns:m="http://iec.ch/TC57/2011/GetMeterReadingsMessage" '
        'xmlns:h="http://iec.ch/TC57/2011/schema/message"><m:Header><h:Verb>get</h:Verb><h:Noun>MeterReadings</h:Noun>'
        f"{extra}<h:CorrelationID>stop-1</h:CorrelationID></m:Header><m:Request>"
        '<q:GetMeterReadings xmlns:q="http://iec.ch/TC57/2011/GetMeterReadings#">'
        "<q:EndDeviceGroup><q:Names><q:name>FEEDER-01</q:name></q:Names></q:EndDeviceGroup>"
        "</q:GetMeterReadings></m:Request></m:GetMeterReadings></s:Body></s:Envelope>"
    ).encode()


def _post(base: str, body: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(f"{base}/GetMeterReadings", data=body, headers={"Content-Type": "text/xml"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_ctrl_c_answers_waiting_callers_and_keeps_accepted_async_results(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    args = ("--meters", "100", "--set", SLOW, "--set", "headend.sync_timeout_s=1000",
            "--set", f"outbox.path={outbox}")
    with running_simulator(*args) as (base, proc):
        accepted = _post(base, _body(async_to="http://127.0.0.1:9/nobody-listens"))
        assert accepted[0] == 200 and b">OK<" in accepted[1]
        waiting: dict[str, tuple[int, bytes]] = {}
        caller = threading.Thread(target=lambda: waiting.setdefault("answer", _post(base, _body())))
        caller.start()
        time.sleep(1.0)  # both jobs now wait for meters that answer after 500 sim seconds
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        caller.join(timeout=30)
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - started < 15
    status, body = waiting["answer"]
    assert status == 200 and b">4.1<" in body  # the synchronous caller got an answer: its meters timed out
    with sqlite3.connect(outbox) as db:
        stored = db.execute("SELECT count(*) FROM outbox WHERE state = 'pending' AND correlation_id = 'stop-1'")
        assert stored.fetchone()[0] == 1  # the accepted async request's result is kept for the next run

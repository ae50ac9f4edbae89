"""The built-in MDMS receiver: verdicts on real 61968 messages, acknowledgements, journal, misbehaviour.

Most tests call the receiver's logic directly (no sockets); the ones marked integration run it
over HTTP on 127.0.0.1, in-process and as the `mdms` command in a subprocess.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from simulator.cim import schemas, soap
from simulator.cim.messages import ErrorItem, OutHeader, Reply, build_event, build_response, meter_error, typed_root
from simulator.cim.meterreadings import IntervalBlockData, MeterReadingData, ReadingData, build_meter_readings
from simulator.cim.ns import METER_READINGS_MSG, MSG, SOAP11, SOAP12
from simulator.mdms import MdmsOptions, MdmsReceiver, start_receiver
from simulator.ports import HttpAnswer
from simulator.transports.soap_client import SoapSender
from tests.integration.server import start_listening

REPO = Path(__file__).resolve().parents[1]
ENERGY = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
REGISTER = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
ACTION = "http://iec.ch/TC57/2011/MeterReadings/CreatedMeterReadings"
CREATED = typed_root("Created", "MeterReadings")
RESPONSE = f"{{{METER_READINGS_MSG}}}MeterReadingsResponseMessage"
NSMAP = {"m": METER_READINGS_MSG, "msg": MSG}


def payload(meters: list[str], intervals: int = 4) -> bytes:
    stamps = [f"2026-01-01T{(i + 1) // 4:02d}:{(i + 1) % 4 * 15:02d}:00Z" for i in range(intervals)]
    return build_meter_readings(
        MeterReadingData(
            meter_mrid=mrid,
            readings=[ReadingData(REGISTER, "2026-01-01T01:00:00Z", 123_456, 3)],
            interval_blocks=[IntervalBlockData(ENERGY, stamps, list(range(intervals)), 3)],
        )
        for mrid in meters
    )


def created(correlation: str = "corr-1", ack: bool | None = True, index: str | None = "1/3",
            meters: tuple[str, ...] = ("m-1", "m-2")) -> bytes:
    header = OutHeader("created", "MeterReadings", message_id="msg-1", correlation_id=correlation,
                       ack_required=ack, properties=(("MessageIndex", index),) if index else ())
    return build_event(CREATED, header, payload(list(meters)))


async def deliver(receiver: MdmsReceiver, message: bytes, version: soap.SoapVersion = "1.1",
                  action: str | None = f'"{ACTION}"') -> HttpAnswer | None:
    return await receiver.handle("/ReplyMeterReadings", action, soap.content_type(version), soap.wrap(message, version))


def body_of(answer: HttpAnswer | None) -> etree._Element:
    assert answer is not None
    _version, root = soap.unwrap(answer.body, answer.content_type)
    return root


# ------------------------------------------------------------------------------------- verdicts


async def test_a_created_meter_readings_with_ack_required_is_acknowledged_with_0_3() -> None:
    receiver = MdmsReceiver(MdmsOptions(seed=3))
    answer = await deliver(receiver, created())
    assert answer is not None and answer.status == 200 and answer.content_type.startswith("text/xml")
    root = body_of(answer)
    assert root.tag == RESPONSE
    assert schemas.validate(root, "MeterReadingsMessage") == []
    assert root.findtext("m:Header/msg:Verb", namespaces=NSMAP) == "reply"
    assert root.findtext("m:Header/msg:Noun", namespaces=NSMAP) == "MeterReadings"
    assert root.findtext("m:Header/msg:CorrelationID", namespaces=NSMAP) == "corr-1"
    assert root.findtext("m:Reply/msg:Result", namespaces=NSMAP) == "OK"
    assert root.xpath("m:Reply/msg:Error/msg:code/text()", namespaces=NSMAP) == ["0.3"]


async def test_without_ack_required_the_answer_is_a_plain_ok() -> None:
    receiver = MdmsReceiver()
    root = body_of(await deliver(receiver, created(ack=None)))
    assert root.findtext("m:Reply/msg:Result", namespaces=NSMAP) == "OK"
    assert root.find("m:Reply/msg:Error", namespaces=NSMAP) is None
    assert receiver.journal[0]["ack_required"] is False


async def test_the_journal_says_what_arrived() -> None:
    receiver = MdmsReceiver()
    message = created(meters=("m-1", "m-2", "m-3"))
    await deliver(receiver, message)
    (entry,) = receiver.journal
    assert entry == entry | {
        "transport": "soap", "path": "/ReplyMeterReadings", "soap_action": ACTION, "root": CREATED, "verb": "created",
        "noun": "MeterReadings", "message_id": "msg-1", "correlation_id": "corr-1", "message_index": "1/3",
        "result": None, "error_codes": [], "meters": ["m-1", "m-2", "m-3"], "readings": 3 * (4 + 1),
        "valid": True, "validation_errors": [], "bytes": len(soap.wrap(message, "1.1")), "answered": "ok",
    }  # fmt: skip
    assert entry["received_at"].endswith("Z")


async def test_an_async_reply_in_response_style_is_read_with_its_result_and_errors() -> None:
    header = OutHeader("reply", "MeterReadings", correlation_id="job-9", properties=(("MessageIndex", "2/2"),))
    reply = Reply("PARTIAL", (ErrorItem("0.2"), meter_error("4.1", "m-9")))
    message = build_response(RESPONSE, header, reply, payload(["m-7", "m-8"]))
    receiver = MdmsReceiver()
    root = body_of(await deliver(receiver, message))
    assert root.tag == RESPONSE and root.findtext("m:Header/msg:CorrelationID", namespaces=NSMAP) == "job-9"
    entry = receiver.journal[0]
    assert (entry["verb"], entry["result"], entry["error_codes"]) == ("reply", "PARTIAL", ["0.2", "4.1"])
    assert (entry["message_index"], entry["meters"], entry["valid"]) == ("2/2", ["m-7", "m-8"], True)


async def test_a_generic_event_is_answered_with_a_generic_response_and_its_payload_is_checked() -> None:
    header = OutHeader("created", "MeterReadings", correlation_id="g-1", ack_required=True)
    good = build_event(None, header, payload(["m-1"]))
    receiver = MdmsReceiver()
    root = body_of(await deliver(receiver, good))
    assert root.tag == f"{{{MSG}}}ResponseMessage" and schemas.validate(root, "Message") == []
    assert root.xpath("msg:Reply/msg:Error/msg:code/text()", namespaces=NSMAP) == ["0.3"]
    # Message.xsd skips the payload; the receiver checks it against its own profile.
    bad = build_event(None, header, payload(["m-1"]).replace(b"<Meter>", b"<Meter><colour>red</colour>", 1))
    assert schemas.validate(bad, "Message") == []
    answer = await deliver(receiver, bad)
    assert answer is not None and answer.status == 500
    assert receiver.journal[1]["valid"] is False and "colour" in receiver.journal[1]["validation_errors"][0]


async def test_a_schema_invalid_message_gets_a_typed_1_8_fault() -> None:
    receiver = MdmsReceiver()
    bad = created().replace(b"<msg:Verb>created</msg:Verb>", b"<msg:Verb>made</msg:Verb>")
    answer = await deliver(receiver, bad)
    assert answer is not None and answer.status == 500
    envelope = etree.fromstring(answer.body)
    assert envelope.findtext(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault/faultcode") == "soapenv:Client"
    detail = envelope.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault/detail")
    assert detail is not None
    (fault_message,) = detail
    assert fault_message.tag == f"{{{METER_READINGS_MSG}}}MeterReadingsFaultMessage"
    assert fault_message.xpath("m:Reply/msg:Error/msg:code/text()", namespaces=NSMAP) == ["1.8"]
    entry = receiver.journal[0]
    assert entry["valid"] is False and entry["answered"] == "fault"
    assert entry["correlation_id"] == "corr-1"  # journalled even though it was rejected
    assert 1 <= len(entry["validation_errors"]) <= 3 and "made" in entry["validation_errors"][0]


async def test_not_xml_is_journalled_and_answered_with_a_fault() -> None:
    receiver = MdmsReceiver()
    answer = await receiver.handle("/x", None, "text/xml", b"this is not xml")
    assert answer is not None and answer.status == 500 and b"1.8" in answer.body
    entry = receiver.journal[0]
    assert (entry["root"], entry["valid"], entry["answered"], entry["bytes"]) == (None, False, "fault", 15)


async def test_unknown_namespaces_are_accepted_but_not_validated() -> None:
    receiver = MdmsReceiver()
    message = b'<x:Thing xmlns:x="urn:other"><x:Header/></x:Thing>'
    root = body_of(await deliver(receiver, message))
    assert root.tag == f"{{{MSG}}}ResponseMessage"
    assert receiver.journal[0]["valid"] is None and receiver.journal[0]["answered"] == "ok"


async def test_no_validate_accepts_invalid_messages() -> None:
    receiver = MdmsReceiver(MdmsOptions(validate=False))
    answer = await deliver(receiver, created().replace(b">created<", b">made<"))
    assert answer is not None and answer.status == 200
    assert receiver.journal[0]["valid"] is None


async def test_soap12_and_bare_messages_are_answered_in_kind() -> None:
    receiver = MdmsReceiver()
    answer12 = await deliver(receiver, created(), version="1.2")
    assert answer12 is not None and answer12.content_type.startswith("application/soap+xml")
    assert etree.fromstring(answer12.body).tag == f"{{{SOAP12}}}Envelope"
    bare = await deliver(receiver, created(), version=None)
    assert bare is not None and etree.fromstring(bare.body).tag == RESPONSE


async def test_answers_are_reproducible_from_the_seed() -> None:
    async def message_ids(seed: int) -> list[str | None]:
        receiver = MdmsReceiver(MdmsOptions(seed=seed))
        return [body_of(await deliver(receiver, created())).findtext("m:Header/msg:MessageID", namespaces=NSMAP)
                for _ in range(3)]

    first = await message_ids(5)
    assert first == await message_ids(5) and len(set(first)) == 3
    assert first != await message_ids(6)


# ------------------------------------------------------------------------------------- journal file


async def test_the_journal_file_has_one_json_line_per_message_and_is_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "mdms.jsonl"
    receiver = MdmsReceiver(MdmsOptions(journal_path=path))
    await deliver(receiver, created("a"))
    # Written and flushed per message: readable before the receiver closes.
    assert [json.loads(line) for line in path.read_text().splitlines()] == receiver.journal
    await deliver(receiver, b"<broken")
    receiver.close()
    again = MdmsReceiver(MdmsOptions(journal_path=path, memory_journal=False))
    await deliver(again, created("b"))
    again.close()
    assert again.journal == []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["correlation_id"] for e in lines] == ["a", None, "b"]
    assert [e["answered"] for e in lines] == ["ok", "fault", "ok"]


# ------------------------------------------------------------------------------------- misbehaviour


async def outcomes(options: MdmsOptions, n: int) -> list[str]:
    receiver = MdmsReceiver(options)
    message = created(ack=None, index=None)
    for _ in range(n):
        await deliver(receiver, message)
    return [e["answered"] for e in receiver.journal]


async def test_fail_and_drop_rates_are_seeded_and_hold() -> None:
    options = MdmsOptions(fail_rate=0.2, drop_rate=0.1, seed=11, validate=False)
    seen = await outcomes(options, 1000)
    assert seen == await outcomes(options, 1000)  # same seed, same traffic: same misbehaviour
    assert seen != await outcomes(MdmsOptions(fail_rate=0.2, drop_rate=0.1, seed=12, validate=False), 1000)
    dropped, failed = seen.count("dropped"), seen.count("failed")
    # drop 10 %; fail 20 % of the 90 % not dropped = 18 %. Binomial 1000: +-4 sigma.
    assert 100 - 40 <= dropped <= 100 + 40
    assert 180 - 50 <= failed <= 180 + 50
    assert seen.count("ok") == 1000 - dropped - failed


async def test_a_failure_is_an_http_500_server_fault_and_a_drop_is_no_answer() -> None:
    failing = MdmsReceiver(MdmsOptions(fail_rate=1.0))
    answer = await deliver(failing, created())
    assert answer is not None and answer.status == 500
    assert b"soapenv:Server" in answer.body and b"<msg:code>5.1</msg:code>" in answer.body
    dropping = MdmsReceiver(MdmsOptions(drop_rate=1.0))
    assert await deliver(dropping, created()) is None
    assert dropping.journal[0]["answered"] == "dropped" and dropping.journal[0]["valid"] is True


async def test_delay_answers_late() -> None:
    receiver = MdmsReceiver(MdmsOptions(delay_s=0.15))
    started = time.monotonic()
    assert await deliver(receiver, created()) is not None
    assert time.monotonic() - started >= 0.15


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        MdmsOptions(fail_rate=1.5)
    with pytest.raises(ValueError):
        MdmsOptions(delay_s=-1)


# ------------------------------------------------------------------------------------- over HTTP


@pytest.mark.integration
async def test_over_http_the_sender_gets_acks_and_a_drop_is_a_failed_delivery() -> None:
    receiver = await start_receiver("127.0.0.1", 0, seed=1)
    sender = SoapSender(timeout_s=5, ack_check=lambda body: b"<msg:code>0.3</msg:code>" in body)
    try:
        ok = await sender.send(receiver.base_url + "/ReplyMeterReadings", ACTION, created(), True)
        assert ok.ok and ok.status == 200
        assert receiver.journal[0]["path"] == "/ReplyMeterReadings" and receiver.journal[0]["soap_action"] == ACTION
    finally:
        await receiver.close()
        await sender.close()
    dropping = await start_receiver("127.0.0.1", 0, drop_rate=1.0)
    try:
        lost = await sender.send(dropping.base_url, ACTION, created(), True)
        assert not lost.ok and lost.status is None
    finally:
        await dropping.close()
        await sender.close()


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    return start_listening([sys.executable, "-m", "simulator.mdms", "--host", "127.0.0.1", "--port", "0", *args],
                           cwd=REPO)


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_mdms_command_serves_journals_and_stops_on_a_signal(tmp_path: Path, sig: int) -> None:
    journal = tmp_path / "journal.jsonl"
    proc, base = _start_cli("--journal", str(journal), "--seed", "4")
    try:
        request = urllib.request.Request(
            base + "/ReplyMeterReadings", data=soap.wrap(created(), "1.1"),
            headers={"Content-Type": soap.CONTENT_TYPE_SOAP11, "SOAPAction": f'"{ACTION}"'})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and b"<msg:code>0.3</msg:code>" in response.read()
        entries: list[dict[str, Any]] = [json.loads(line) for line in journal.read_text().splitlines()]
        assert [(e["correlation_id"], e["valid"], e["answered"]) for e in entries] == [("corr-1", True, "ok")]
    finally:
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "stopped after 1 messages" in out


@pytest.mark.integration
def test_the_mdms_command_refuses_bad_options_and_busy_ports() -> None:
    bad = subprocess.run([sys.executable, "-m", "simulator.mdms", "--fail-rate", "2"],
                         capture_output=True, text=True, timeout=30, cwd=REPO)
    assert bad.returncode == 2 and "between 0 and 1" in bad.stderr
    proc, base = _start_cli()
    try:
        port = base.rsplit(":", 1)[1]
        busy = subprocess.run([sys.executable, "-m", "simulator.mdms", "--host", "127.0.0.1", "--port", port],
                              capture_output=True, text=True, timeout=30, cwd=REPO)
        assert busy.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)


def test_register_adds_the_mdms_subcommand() -> None:
    import argparse

    from simulator.mdms import register, run_mdms

    parser = argparse.ArgumentParser(prog="hes-sim")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["mdms", "--port", "9000", "--drop-rate", "0.5", "--no-validate", "--delay", "1.5"])
    assert (args.port, args.drop_rate, args.no_validate, args.delay, args.func) == (9000, 0.5, True, 1.5, run_mdms)

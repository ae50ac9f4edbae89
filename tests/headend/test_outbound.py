"""Our side of AckRequired: which MDMS answers count as an acknowledgement."""

from __future__ import annotations

import asyncio

from simulator.headend.outbound import MemoryOutbound, is_positive_ack
from simulator.headend.readjob import OutboundPart
from simulator.mdms import MdmsOptions, MdmsReceiver
from tests.conftest import make_sim

from .requests import get_profile, soap, typed_get


def _part() -> OutboundPart:
    sim = make_sim(replies={"ack_required": True})
    out = MemoryOutbound()
    sim.headend.outbound = out
    body = soap(typed_get(get_profile(meters=[sim.fleet.mrid(0)]), reply_address="http://127.0.0.1:9/r"))
    asyncio.run(sim.soap.handle("GetMeterReadings", None, "text/xml", body))
    sim.env.run()
    (part,) = out.parts
    return part


def test_the_receivers_answers_are_judged_as_an_mdms_means_them() -> None:
    part = _part()
    ok = asyncio.run(MdmsReceiver(MdmsOptions()).handle("/r", part.soap_action, "text/xml", part.body))
    assert ok is not None and ok.status == 200 and is_positive_ack(ok.body)
    assert b"<msg:code>0.3</msg:code>" in ok.body or b":code>0.3<" in ok.body
    failing = MdmsReceiver(MdmsOptions(fail_rate=1.0))
    fault = asyncio.run(failing.handle("/r", part.soap_action, "text/xml", part.body))
    assert fault is not None and fault.status == 500 and not is_positive_ack(fault.body)


def test_answers_that_are_not_acknowledgements() -> None:
    env = b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>%s</s:Body></s:Envelope>'
    failed = (b'<r:X xmlns:r="urn:x" xmlns:m="http://iec.ch/TC57/2011/schema/message"><r:Reply>'
              b"<m:Result>FAILED</m:Result></r:Reply></r:X>")
    assert not is_positive_ack(b"")
    assert not is_positive_ack(b"OK")
    assert not is_positive_ack(env % b"<x/>")
    assert not is_positive_ack(env % failed)
    assert is_positive_ack(env % failed.replace(b"FAILED", b"OK"))

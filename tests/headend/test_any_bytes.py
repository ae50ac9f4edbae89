"""Whatever bytes arrive, the MDMS gets a well-formed SOAP answer: a reply or a fault, never a crash."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from simulator.app import Simulator
from tests.conftest import make_sim

from .requests import generic_get, get_profile, soap, typed_get

SIM: Simulator = make_sim(meters=50)
VALID = [
    soap(typed_get(get_profile(meters=[SIM.fleet.mrid(1)], period=("2026-03-09T00:00:00Z", "2026-03-09T06:00:00Z")))),
    soap(generic_get(get_profile(groups=["FEEDER-01"]))),
]
SOAP_ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"


def _answer(service: str, body: bytes, content_type: str = "text/xml") -> None:
    answer = asyncio.run(SIM.soap.handle(service, None, content_type, body))
    assert answer.status in (200, 500)
    env = etree.fromstring(answer.body)  # well-formed, or this raises
    assert env.tag in (f"{SOAP_ENV}Envelope", "{http://www.w3.org/2003/05/soap-envelope}Envelope")
    payload = env[-1][0]
    if answer.status == 500:
        assert payload.tag.endswith("Fault")
        code = payload.findtext(".//{http://iec.ch/TC57/2011/schema/message}code")
        assert code and code[0].isdigit(), etree.tostring(payload)[:300]
    else:
        assert payload.tag.endswith("ResponseMessage")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=400), service=st.sampled_from(["GetMeterReadings", "Message"]))
def test_random_bytes_get_a_fault(body: bytes, service: str) -> None:
    _answer(service, body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from([0, 1]),
    cut=st.integers(min_value=0, max_value=2000),
    insert=st.binary(min_size=0, max_size=12),
    drop=st.integers(min_value=0, max_value=40),
)
def test_mutated_valid_requests_get_a_reply_or_a_fault(which: int, cut: int, insert: bytes, drop: int) -> None:
    base = VALID[which]
    cut = min(cut, len(base))
    body = base[:cut] + insert + base[cut + drop:]
    _answer("GetMeterReadings" if which == 0 else "Message", body)

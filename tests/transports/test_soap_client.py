"""The outbound SOAP sender against a real aiohttp server on 127.0.0.1: every failure is a result.

The outbox retries whatever `send` reports as not ok, so these tests pin down that refused
connections, resets, timeouts, HTTP errors and missing acknowledgements all come back as
`ok=False` with a reason, and that only a 2xx (with an ack when one was asked for) is ok.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from lxml import etree

from simulator.cim.ns import SOAP11
from simulator.ports import DeliveryResult
from simulator.transports.soap_client import SoapSender

pytestmark = pytest.mark.integration

ACTION = "http://iec.ch/TC57/2011/MeterReadings/CreatedMeterReadings"
MESSAGE = b'<m:CreatedMeterReadings xmlns:m="urn:test"><m:Header/></m:CreatedMeterReadings>'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.handler: Handler = self.ok
        self.base_url = ""

    async def ok(self, request: web.Request) -> web.Response:
        return web.Response(body=b"<ack/>", content_type="text/xml")

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((dict(request.headers), await request.read()))
        return await self.handler(request)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_post("/{tail:.*}", srv.dispatch)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield srv
    await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def send(sender: SoapSender, url: str, ack_required: bool = False, body: bytes = MESSAGE) -> DeliveryResult:
    try:
        return await sender.send(url, ACTION, body, ack_required)
    finally:
        await sender.close()


async def test_200_is_ok_and_the_message_travels_in_a_soap11_envelope(server: Server) -> None:
    result = await send(SoapSender(), server.base_url + "/ReplyMeterReadings",
                        body=b'<?xml version="1.0" encoding="UTF-8"?>\n' + MESSAGE)
    assert result == DeliveryResult(True, 200, None, b"<ack/>")
    headers, body = server.requests[0]
    assert headers["Content-Type"] == "text/xml; charset=utf-8"
    assert headers["SOAPAction"] == f'"{ACTION}"'
    envelope = etree.fromstring(body)
    assert envelope.tag == f"{{{SOAP11}}}Envelope"
    (inner,) = envelope.find(f"{{{SOAP11}}}Body")
    assert inner.tag == "{urn:test}CreatedMeterReadings"
    assert MESSAGE in body and body.count(b"<?xml") == 1  # inner declaration dropped, message untouched


async def test_http_500_is_a_failure_with_its_status_and_body(server: Server) -> None:
    async def fail(_request: web.Request) -> web.Response:
        return web.Response(status=500, body=b"<soapenv:Fault>busy</soapenv:Fault>")

    server.handler = fail
    result = await send(SoapSender(), server.base_url)
    assert not result.ok and result.status == 500
    assert result.error is not None and "HTTP 500" in result.error and "busy" in result.error
    assert result.body == b"<soapenv:Fault>busy</soapenv:Fault>"


async def test_connection_refused_is_a_failure_not_an_exception() -> None:
    result = await send(SoapSender(timeout_s=5), f"http://127.0.0.1:{free_port()}/mdms")
    assert not result.ok and result.status is None and result.body is None
    assert result.error and "127.0.0.1" in result.error


async def test_a_server_that_closes_the_connection_is_a_failure(server: Server) -> None:
    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    server.handler = drop
    result = await send(SoapSender(), server.base_url)
    assert not result.ok and result.status is None
    assert result.error and "disconnected" in result.error.lower()


async def test_no_answer_within_the_timeout_is_a_failure(server: Server) -> None:
    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    server.handler = slow
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await send(SoapSender(timeout_s=0.2), server.base_url)
    assert loop.time() - started < 2
    assert not result.ok and result.status is None
    assert result.error and "0.2 s" in result.error


async def test_ack_check_decides_when_an_ack_was_asked_for(server: Server) -> None:
    seen: list[bytes] = []

    def check(body: bytes) -> bool:
        seen.append(body)
        return body == b"<ack-ok/>"

    result = await send(SoapSender(ack_check=check), server.base_url, ack_required=True)
    assert not result.ok and result.status == 200
    assert result.error and "acknowledgement" in result.error
    assert seen == [b"<ack/>"]
    # Without AckRequired the check is not consulted: 2xx is enough.
    assert (await send(SoapSender(ack_check=check), server.base_url, ack_required=False)).ok
    assert len(seen) == 1


async def test_an_ack_check_that_raises_is_a_failure(server: Server) -> None:
    def broken(_body: bytes) -> bool:
        raise ValueError("not XML")

    result = await send(SoapSender(ack_check=broken), server.base_url, ack_required=True)
    assert not result.ok and result.error and "not XML" in result.error


async def test_a_bad_url_is_a_failure() -> None:
    result = await send(SoapSender(), "not a url")
    assert not result.ok and result.error


async def test_one_session_serves_many_sends_and_close_is_idempotent(server: Server) -> None:
    sender = SoapSender()
    results = await asyncio.gather(*(sender.send(server.base_url, ACTION, MESSAGE, False) for _ in range(20)))
    assert all(r.ok for r in results) and len(server.requests) == 20
    await sender.close()
    await sender.close()
    assert (await send(sender, server.base_url)).ok  # a closed sender opens a new session
